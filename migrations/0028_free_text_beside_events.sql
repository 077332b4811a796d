SET LOCAL ROLE training_owner;

-- More free text that may name people moves out of the events (ADR 0020): why an engineer
-- skipped a module (LearningRecord.ModuleProgressed and the track's ProgressNoted, version
-- 2), why a cohort was cancelled (Cohort.Cancelled, version 2) and why a person was
-- withdrawn from one (Cohort.Withdrawn, version 2). The recorder writes them here in the
-- events' transaction; `training migrate` moves the text of events stored before.

-- What an engineer wrote with a progress report, by the learning record's version that
-- recorded it. member_id is the engineer: erasing them deletes their notes.
CREATE TABLE training.learning_notes (
    record_id uuid NOT NULL,
    version bigint NOT NULL,
    tenant_id uuid NOT NULL,
    member_id uuid NOT NULL,
    curriculum_id text NOT NULL,
    module_key text NOT NULL,
    note text NOT NULL,
    noted_at timestamptz NOT NULL,
    PRIMARY KEY (record_id, version)
);
CREATE INDEX learning_notes_by_member ON training.learning_notes (tenant_id, member_id);

-- Why a cohort's event at `version` withdrew people: one person's withdrawal (member_id,
-- erased with them) or the cohort's cancellation (member_id NULL; withdrawn lists whom it
-- withdrew). The cohorts view's queries read the reasons from here.
CREATE TABLE training.cohort_reasons (
    cohort_id uuid NOT NULL,
    version bigint NOT NULL,
    tenant_id uuid NOT NULL,
    member_id uuid,
    withdrawn uuid[] NOT NULL,
    reason text NOT NULL,
    given_at timestamptz NOT NULL,
    PRIMARY KEY (cohort_id, version)
);
CREATE INDEX cohort_reasons_by_member ON training.cohort_reasons (tenant_id, member_id)
    WHERE member_id IS NOT NULL;

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['learning_notes', 'cohort_reasons'] LOOP
        EXECUTE format('ALTER TABLE training.%I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE training.%I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON training.%I '
            'USING (tenant_id = training.current_tenant()) '
            'WITH CHECK (tenant_id = training.current_tenant())', name);
        EXECUTE format(
            'GRANT SELECT, INSERT, UPDATE, DELETE ON training.%I TO training_app', name);
    END LOOP;
END
$$;

-- The cohorts view no longer copies the reasons: its queries read them from cohort_reasons,
-- so an erasure has one place to delete or redact them.
ALTER TABLE training.cohorts DROP COLUMN cancel_reason;
ALTER TABLE training.cohort_enrolments DROP COLUMN withdrawn_reason;

-- Erasure (migration 0017) deletes the person's notes and withdrawal reasons too, and
-- redacts their name and email in everyone's notes and in every cohort reason.
CREATE OR REPLACE FUNCTION training.erase_member(erased uuid) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    erased_name text;
    erased_email text;
    needles text[];
    patterns text[];
BEGIN
    DELETE FROM training.people WHERE member_id = erased RETURNING display_name, email
        INTO erased_name, erased_email;
    DELETE FROM training.review_texts WHERE member_id = erased;
    DELETE FROM training.learning_notes WHERE member_id = erased;
    DELETE FROM training.cohort_reasons WHERE member_id = erased;
    DELETE FROM training.reports WHERE kind = 'individual' AND subject_id = erased;
    UPDATE training.reports SET status = 'queued', pdf = NULL, checksum = NULL,
            size_bytes = NULL, pages = NULL, rendered_at = NULL, claimed_until = NULL,
            attempts = 0, detail = NULL, named_members = '{}'
        WHERE erased = ANY(named_members);
    needles := array_remove(ARRAY[erased_name, erased_email], NULL);
    IF cardinality(needles) = 0 THEN
        RETURN;
    END IF;
    patterns := ARRAY(SELECT training.mention_pattern(n) FROM unnest(needles) n);
    UPDATE training.review_texts
        SET strengths = ARRAY(SELECT training.redact(s, patterns) FROM unnest(strengths) s),
            amendment_reasons = ARRAY(
                SELECT training.redact(r, patterns) FROM unnest(amendment_reasons) r),
            updated_at = now()
        WHERE EXISTS (
            SELECT 1 FROM unnest(strengths || amendment_reasons) t
            WHERE training.mentions(t, patterns));
    UPDATE training.people
        SET deactivation_reason = training.redact(deactivation_reason, patterns)
        WHERE training.mentions(deactivation_reason, patterns);
    UPDATE training.learning_notes
        SET note = training.redact(note, patterns)
        WHERE training.mentions(note, patterns);
    UPDATE training.cohort_reasons
        SET reason = training.redact(reason, patterns)
        WHERE training.mentions(reason, patterns);
    UPDATE training.member_imports
        SET content = NULL,
            status = CASE WHEN status IN ('queued', 'running') THEN 'failed' ELSE status END,
            detail = CASE WHEN status IN ('queued', 'running')
                THEN 'stopped: the file names a person whose personal data was erased'
                ELSE detail END,
            finished_at = coalesce(finished_at, now())
        WHERE content IS NOT NULL AND training.file_mentions(content, needles);
END
$$;
