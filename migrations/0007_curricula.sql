SET LOCAL ROLE training_owner;

CREATE TABLE training.curricula_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.curricula_tracking TO training_app;

-- One row per curriculum. tenant_id NULL: the platform catalogue, readable by every tenant.
CREATE TABLE training.curricula (
    curriculum_id uuid PRIMARY KEY,
    tenant_id uuid,
    title text NOT NULL,
    description text NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'retired')),
    latest_version integer,
    has_unpublished_changes boolean NOT NULL,
    forked_from uuid,
    forked_version integer,
    module_count integer NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX curricula_by_tenant ON training.curricula (tenant_id, created_at, curriculum_id);

-- Modules of the draft (version 0, changes with every edit) and of each published version
-- (1, 2, ...: written once, never changed). position is the published order, prerequisites
-- first; draft rows have none and are read in key order.
CREATE TABLE training.curriculum_modules (
    curriculum_id uuid NOT NULL,
    version integer NOT NULL CHECK (version >= 0),
    tenant_id uuid,
    key text NOT NULL,
    title text NOT NULL,
    description text NOT NULL,
    format text NOT NULL,
    duration_minutes integer NOT NULL,
    targets jsonb NOT NULL,
    target_skills text[] NOT NULL,
    prerequisites text[] NOT NULL,
    position integer,
    PRIMARY KEY (curriculum_id, version, key),
    CHECK ((version = 0) = (position IS NULL))
);
CREATE INDEX curriculum_modules_by_format ON training.curriculum_modules (tenant_id, format);
CREATE INDEX curriculum_modules_by_skill ON training.curriculum_modules USING gin (target_skills);
CREATE INDEX curriculum_modules_by_target ON training.curriculum_modules USING gin (targets);

-- A tenant reads its own rows and the catalogue's, but only while a tenant is set: the
-- service role with neither a tenant nor the platform set reads nothing. A tenant writes
-- only its own rows; the platform writes only the catalogue's.
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['curricula', 'curriculum_modules'] LOOP
        EXECUTE format('ALTER TABLE training.%I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE training.%I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format(
            'CREATE POLICY tenant_reads_catalogue ON training.%I FOR SELECT '
            'USING (tenant_id = training.current_tenant() '
            '       OR (tenant_id IS NULL AND training.current_tenant() IS NOT NULL))', name);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON training.%I FOR ALL '
            'USING (tenant_id = training.current_tenant()) '
            'WITH CHECK (tenant_id = training.current_tenant())', name);
        EXECUTE format(
            'CREATE POLICY platform_catalogue ON training.%I FOR ALL '
            'USING (training.is_platform() AND tenant_id IS NULL) '
            'WITH CHECK (training.is_platform() AND tenant_id IS NULL)', name);
        EXECUTE format(
            'GRANT SELECT, INSERT, UPDATE, DELETE ON training.%I TO training_app', name);
    END LOOP;
END
$$;
