SET LOCAL ROLE training_owner;

-- Personal data: the only place names and emails are kept. Written in the same transaction
-- as the member's events (see infra/recorder.py); erasure deletes the row.
CREATE TABLE training.people (
    member_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    display_name text NOT NULL,
    email text,
    updated_at timestamptz NOT NULL
);
CREATE INDEX people_tenant_email ON training.people (tenant_id, email);

-- The members read model. No personal data: queries join people, so an erased member
-- shows as erased everywhere without touching any view.
CREATE TABLE training.members_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.members_tracking TO training_app;

CREATE TABLE training.members (
    member_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    external_id text NOT NULL,
    roles text[] NOT NULL,
    manager_id uuid,
    team text,
    job_title text,
    status text NOT NULL,
    erased boolean NOT NULL DEFAULT false,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX members_by_manager ON training.members (tenant_id, manager_id);
CREATE INDEX members_by_team ON training.members (tenant_id, team, external_id);
CREATE INDEX members_by_status ON training.members (tenant_id, status, external_id);
CREATE INDEX members_by_roles ON training.members USING gin (roles);

-- Bulk imports run as jobs; the upload is kept so a restarted service resumes the job.
CREATE TABLE training.member_imports (
    import_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    format text NOT NULL,
    content bytea,
    requested_by text NOT NULL,
    request_id text NOT NULL,
    total_rows integer,
    processed_rows integer NOT NULL DEFAULT 0,
    created integer NOT NULL DEFAULT 0,
    updated integer NOT NULL DEFAULT 0,
    unchanged integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    errors jsonb NOT NULL DEFAULT '[]',
    detail text,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX member_imports_by_tenant ON training.member_imports (tenant_id, created_at, import_id);
CREATE INDEX member_imports_pending ON training.member_imports (status) WHERE status IN ('queued', 'running');

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['people', 'members', 'member_imports'] LOOP
        EXECUTE format('ALTER TABLE training.%I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE training.%I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON training.%I '
            'USING (tenant_id = training.current_tenant()) '
            'WITH CHECK (tenant_id = training.current_tenant())', name);
    END LOOP;
END
$$;

-- The import runner finds interrupted jobs of every tenant when the service starts.
CREATE POLICY platform_operator ON training.member_imports
    USING (training.is_platform()) WITH CHECK (training.is_platform());

GRANT SELECT, INSERT, UPDATE, DELETE ON training.people TO training_app;
GRANT SELECT, INSERT, UPDATE ON training.members TO training_app;
GRANT SELECT, INSERT, UPDATE ON training.member_imports TO training_app;
