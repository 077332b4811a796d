SET LOCAL ROLE training_owner;

CREATE TABLE training.skills_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.skills_tracking TO training_app;

-- Each tenant's skills: the default framework it started from plus its own changes.
CREATE TABLE training.skills (
    tenant_id uuid NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    category text NOT NULL,
    description text NOT NULL,
    levels jsonb NOT NULL,
    source text NOT NULL CHECK (source IN ('default', 'custom')),
    retired boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, code)
);
CREATE INDEX skills_by_category ON training.skills (tenant_id, category, code);

CREATE TABLE training.role_profiles (
    profile_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    key text NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    revision integer NOT NULL,
    retired boolean NOT NULL DEFAULT false,
    targets jsonb NOT NULL,
    version integer NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (tenant_id, key)
);

-- Every revision, so a plan or a review can say which revision it was measured against.
CREATE TABLE training.role_profile_revisions (
    profile_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    revision integer NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    targets jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    actor text NOT NULL,
    PRIMARY KEY (profile_id, revision)
);

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['skills', 'role_profiles', 'role_profile_revisions'] LOOP
        EXECUTE format('ALTER TABLE training.%I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE training.%I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON training.%I '
            'USING (tenant_id = training.current_tenant()) '
            'WITH CHECK (tenant_id = training.current_tenant())', name);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON training.%I TO training_app', name);
    END LOOP;
END
$$;
