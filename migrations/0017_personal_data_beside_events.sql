SET LOCAL ROLE training_owner;

-- What is held about a member beside the events grows by two values (ADR 0020): the
-- identity provider's subject of a member provisioned at sign-in (it may be an email, so it
-- is not an external id any more), and why the member was last deactivated (free text).
ALTER TABLE training.people ADD COLUMN sso_subject text;
ALTER TABLE training.people ADD COLUMN deactivation_reason text;
CREATE UNIQUE INDEX people_sso_subject ON training.people (tenant_id, sso_subject)
    WHERE sso_subject IS NOT NULL;

-- A review's free text (strengths, why a finalised review was amended) may name people, so
-- it lives here rather than in the review's events, written in the same transaction.
-- member_id is the person reviewed: erasing them deletes the row.
CREATE TABLE training.review_texts (
    review_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    member_id uuid NOT NULL,
    strengths text[] NOT NULL DEFAULT '{}',
    amendment_reasons text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL
);
CREATE INDEX review_texts_by_member ON training.review_texts (tenant_id, member_id);
ALTER TABLE training.review_texts ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.review_texts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON training.review_texts
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON training.review_texts TO training_app;

-- Erasure. The recorder calls training.erase_member in the transaction of the member's
-- Erased event, as the service role in the member's tenant (row-level security applies):
-- * the person's row in people goes (name, email, subject, deactivation reason);
-- * the free text of the reviews of the person goes;
-- * the person's individual reports go (file and row); a rendered report that prints their
--   name among others (a cohort roster) loses its file and is queued again, to be rendered
--   with "(erased)" in their place;
-- * free text about other people that mentions their name or email is redacted;
-- * an import whose file mentions them loses the file (and stops, if it had not finished).

-- A case-insensitive regular expression matching the text as a whole word where it starts
-- or ends with a word character (so a short name does not eat into longer words).
CREATE FUNCTION training.mention_pattern(needle text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT CASE WHEN needle ~ '^\w' THEN '\m' ELSE '' END
        || regexp_replace(needle, '([]\[.^$*+?(){}|\\/-])', '\\\1', 'g')
        || CASE WHEN needle ~ '\w$' THEN '\M' ELSE '' END
$$;

CREATE FUNCTION training.redact(body text, patterns text[]) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    AS $$
DECLARE
    pattern text;
BEGIN
    IF body IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH pattern IN ARRAY patterns LOOP
        body := regexp_replace(body, pattern, '(erased)', 'gi');
    END LOOP;
    RETURN body;
END
$$;

CREATE FUNCTION training.mentions(body text, patterns text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT body IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(patterns) p WHERE body ~* p) $$;

-- An uploaded file may not be UTF-8 (it is then refused by the import): compare bytes.
CREATE FUNCTION training.file_mentions(content bytea, needles text[]) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM unnest(needles) n
        WHERE position(lower(n) IN lower(convert_from(content, 'UTF8'))) > 0);
EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character THEN
    RETURN EXISTS (
        SELECT 1 FROM unnest(needles) n WHERE position(convert_to(n, 'UTF8') IN content) > 0);
END
$$;

CREATE FUNCTION training.erase_member(erased uuid) RETURNS void
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
