SET LOCAL ROLE training_owner;

CREATE TABLE training.tenancy_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.tenancy_tracking TO training_app;

CREATE TABLE training.tenants (
    tenant_id uuid PRIMARY KEY,
    slug text NOT NULL UNIQUE,
    name text NOT NULL,
    seat_limit integer NOT NULL,
    status text NOT NULL,
    suspended_reason text,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE training.api_clients (
    client_id text PRIMARY KEY,
    aggregate_id uuid NOT NULL UNIQUE,
    tenant_id uuid,
    name text NOT NULL,
    scopes text[] NOT NULL,
    status text NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX api_clients_tenant ON training.api_clients (tenant_id, created_at, client_id);

ALTER TABLE training.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON training.tenants
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
CREATE POLICY platform_operator ON training.tenants
    USING (training.is_platform())
    WITH CHECK (training.is_platform());

ALTER TABLE training.api_clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.api_clients FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON training.api_clients
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
CREATE POLICY platform_operator ON training.api_clients
    USING (training.is_platform())
    WITH CHECK (training.is_platform());

GRANT SELECT, INSERT, UPDATE ON training.tenants, training.api_clients TO training_app;
