SET LOCAL ROLE training_owner;

-- An Idempotency-Key retry after a crash must neither act twice nor wait for a timeout.
--
-- * The claim names its process: owner is the key of the advisory lock that the claiming
--   process holds for its whole life on a session of its own. A retry that finds a claim
--   with no response tries that lock: if it gets it, the process is gone (PostgreSQL ends a
--   dead process's session at once) and the retry takes the claim over.
-- * Each command an idempotent request runs records its outcome here, in the transaction of
--   its events (the event store's recorder writes it), so "the events are stored" and "the
--   outcome is known" commit together. A retry replays the recorded outcomes instead of
--   running those commands again; the primary key refuses a second recording.
--   The outcome (the command's result, which may hold a new client's secret) is sealed with
--   the service's key and bound to its row; it expires with the request's record.
ALTER TABLE training.idempotency_keys ADD COLUMN owner integer;

CREATE TABLE training.command_outcomes (
    principal text NOT NULL,
    key text NOT NULL,
    -- The command's place in its request: the first command the request runs is 1.
    seq integer NOT NULL,
    tenant_id uuid,
    outcome bytea NOT NULL,
    -- The command's last event: its notification id is the position the command answered.
    last_event_id uuid NOT NULL,
    last_event_version integer NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (principal, key, seq)
);
CREATE INDEX command_outcomes_expiry ON training.command_outcomes (expires_at);

ALTER TABLE training.command_outcomes ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.command_outcomes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON training.command_outcomes
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
CREATE POLICY platform_operator ON training.command_outcomes
    USING (training.is_platform() AND tenant_id IS NULL)
    WITH CHECK (training.is_platform() AND tenant_id IS NULL);
GRANT SELECT, INSERT, DELETE ON training.command_outcomes TO training_app;

-- The purge (ADR 0022) deletes expired outcomes with the expired records.
CREATE POLICY worker_sees_expired ON training.command_outcomes FOR SELECT TO training_worker
    USING (expires_at < now());
CREATE POLICY worker_purges_expired ON training.command_outcomes FOR DELETE TO training_worker
    USING (expires_at < now());
GRANT SELECT (principal, key, seq, expires_at), DELETE
    ON training.command_outcomes TO training_worker;
