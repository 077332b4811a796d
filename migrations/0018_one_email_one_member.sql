SET LOCAL ROLE training_owner;

-- One email, one member of a tenant (ADR 0020). The check before a command gave no guarantee:
-- two concurrent registrations could both pass it. Now a unique constraint on the stored
-- emails decides, in the transaction of the events, so the command that loses writes nothing.
--
-- Earlier releases may have left two members of a tenant with one email. The migration does
-- not fail on them and loses nothing: the member who keeps the email is the one in force
-- (active, not erased), else the first registered; the others' email is cleared (it is still
-- the email of the member who kept it) and each is listed here, for the tenant's
-- administrators to set the right email again. The list holds ids only.
CREATE TABLE training.email_conflicts (
    member_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    kept_member_id uuid NOT NULL,
    found_at timestamptz NOT NULL DEFAULT now()
);

-- The owner reads every tenant's rows for this transaction only.
ALTER TABLE training.people NO FORCE ROW LEVEL SECURITY;
ALTER TABLE training.members NO FORCE ROW LEVEL SECURITY;

-- Emails are stored in lower case (every write normalises them); older rows too.
UPDATE training.people SET email = lower(email) WHERE email <> lower(email);

WITH ranked AS (
    SELECT p.member_id, p.tenant_id,
           first_value(p.member_id) OVER sharing AS kept,
           row_number() OVER sharing AS rank
    FROM training.people p
    LEFT JOIN training.members m ON m.member_id = p.member_id
    WHERE p.email IS NOT NULL
    WINDOW sharing AS (
        PARTITION BY p.tenant_id, p.email
        ORDER BY (m.status = 'active' AND NOT m.erased) DESC NULLS LAST,
                 m.created_at NULLS LAST, p.updated_at, p.member_id)
)
INSERT INTO training.email_conflicts (member_id, tenant_id, kept_member_id)
SELECT member_id, tenant_id, kept FROM ranked WHERE rank > 1;

UPDATE training.people p SET email = NULL, updated_at = now()
FROM training.email_conflicts c WHERE c.member_id = p.member_id;

ALTER TABLE training.people FORCE ROW LEVEL SECURITY;
ALTER TABLE training.members FORCE ROW LEVEL SECURITY;
ALTER TABLE training.email_conflicts ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.email_conflicts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON training.email_conflicts
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
GRANT SELECT, DELETE ON training.email_conflicts TO training_app;

-- The constraint's name is how the command bus recognises the conflict
-- (training.application.personal_data.EMAIL_IN_TENANT). Its index also serves lookups by
-- email, which the old index did.
ALTER TABLE training.people ADD CONSTRAINT people_email_in_tenant UNIQUE (tenant_id, email);
DROP INDEX training.people_tenant_email;
