SET LOCAL ROLE training_owner;

-- Keys that sign our access tokens. Private keys are encrypted with the service's secret key.
-- 'active' signs; 'previous' is still published in the JWKS during a rotation; 'retired'
-- is kept for the record only.
CREATE TABLE training.signing_keys (
    kid text PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('active', 'previous', 'retired')),
    public_jwk jsonb NOT NULL,
    private_jwk_encrypted bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX signing_keys_one_active ON training.signing_keys (state) WHERE state = 'active';
GRANT SELECT ON training.signing_keys TO training_app;

-- Responses to POST requests that carried an Idempotency-Key, so a retry gets the same answer.
-- status_code is NULL while the first request is still being processed.
CREATE TABLE training.idempotency_keys (
    tenant_id uuid,
    principal text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    status_code integer,
    response_headers jsonb,
    response_body bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_created_at ON training.idempotency_keys (created_at);

ALTER TABLE training.idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON training.idempotency_keys
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
CREATE POLICY platform_operator ON training.idempotency_keys
    USING (training.is_platform() AND tenant_id IS NULL)
    WITH CHECK (training.is_platform() AND tenant_id IS NULL);
GRANT SELECT, INSERT, UPDATE, DELETE ON training.idempotency_keys TO training_app;
