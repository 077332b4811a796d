SET LOCAL ROLE training_owner;

CREATE TABLE training.audit_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.audit_tracking TO training_app;

-- Who did what: one row per event, built from the events themselves (actor, request id and
-- tenant are stamped on every event), so the log cannot disagree with history.
CREATE TABLE training.audit_log (
    notification_id bigint PRIMARY KEY,
    tenant_id uuid,
    recorded_at timestamptz NOT NULL,
    actor text NOT NULL,
    request_id text NOT NULL,
    event_type text NOT NULL,
    subject_type text NOT NULL,
    subject_id uuid NOT NULL,
    subject_version bigint NOT NULL
);
CREATE INDEX audit_log_by_time ON training.audit_log (tenant_id, recorded_at, notification_id);
CREATE INDEX audit_log_by_actor ON training.audit_log (tenant_id, actor, notification_id);
CREATE INDEX audit_log_by_type ON training.audit_log (tenant_id, event_type, notification_id);

ALTER TABLE training.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON training.audit_log
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
-- The platform's own actions (tenants, operator clients, the catalogue) are the operator's.
CREATE POLICY platform_operator ON training.audit_log
    USING (training.is_platform() AND tenant_id IS NULL)
    WITH CHECK (training.is_platform() AND tenant_id IS NULL);
GRANT SELECT, INSERT ON training.audit_log TO training_app;
