-- A report is withheld once the personal data of anyone whose name it prints is erased: an
-- individual report names its member, a cohort report its roster. The list replaces the
-- individual-only flag.
ALTER TABLE training.reports ADD COLUMN named_members uuid[] NOT NULL DEFAULT '{}';
UPDATE training.reports SET named_members = ARRAY[subject_id]
    WHERE names_subject AND subject_id IS NOT NULL;
ALTER TABLE training.reports DROP COLUMN names_subject;
