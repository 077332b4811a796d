SET LOCAL ROLE training_owner;

-- Events a view could not apply, and the events held back behind them (ADR 0026).
--
-- A view that cannot apply an event records its position with one row here, in one
-- transaction, and goes on with the other tenants. From then on the tenant's later events for
-- that view are parked here too, in order, until `training projections retry` applies them
-- after the data or the code is fixed. A (view, tenant) is degraded while it has rows that are
-- not resolved. Rows hold positions, topics, ids and the error's kind: never row values, which
-- may quote what a person typed.
CREATE TABLE training.projection_quarantine (
    view_name text NOT NULL,
    notification_id bigint NOT NULL,
    -- The application whose events the view follows (training or planning).
    upstream text NOT NULL,
    -- NULL: an event of the platform itself (the catalogue, operator clients).
    tenant_id uuid,
    topic text NOT NULL,
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    -- failed: applying it raised; parked: held back behind a failed event of its tenant.
    status text NOT NULL CHECK (status IN ('failed', 'parked')),
    error_type text,
    error_message text,
    attempts integer NOT NULL DEFAULT 0,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    resolved_at timestamptz,
    -- retried: applied by `projections retry`; rebuilt: replayed again by a rebuild.
    resolution text CHECK (resolution IN ('retried', 'rebuilt')),
    PRIMARY KEY (view_name, notification_id),
    CHECK ((status = 'failed') = (error_type IS NOT NULL)),
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
-- What a runner, a retry and /readyz look for: a view's unresolved events, per tenant, in order.
CREATE INDEX projection_quarantine_unresolved
    ON training.projection_quarantine (view_name, tenant_id, notification_id)
    WHERE resolved_at IS NULL;

-- Operator-only data: no tenant reads it, even its own rows. The projection runners, the
-- `projections` commands and /readyz work in a platform-scoped transaction.
ALTER TABLE training.projection_quarantine ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.projection_quarantine FORCE ROW LEVEL SECURITY;
CREATE POLICY platform_operator ON training.projection_quarantine
    USING (training.is_platform())
    WITH CHECK (training.is_platform());
GRANT SELECT, INSERT, UPDATE ON training.projection_quarantine TO training_app;
