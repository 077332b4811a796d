-- The platform operator's sessions (app.platform = 'on') see only platform tables: tenants,
-- API clients, the platform catalogue, the platform's audit rows and the operator's own
-- idempotency records. Background work that must cross tenants logs in as training_worker,
-- a role of its own that no API connection can take (the API logs in as training_app, which
-- is not a member of it). It owns nothing and has no BYPASSRLS, and its policies and column
-- grants show it exactly what each job needs:
--   * the report workers: queued reports of every tenant (to claim one), never a file;
--   * the import runner: which jobs of every tenant are unfinished, never their content;
--   * the idempotency purge: expired records, to delete them, never their responses.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'training_worker') THEN
        CREATE ROLE training_worker LOGIN NOBYPASSRLS;
    END IF;
END
$$;

SET LOCAL ROLE training_owner;

GRANT USAGE ON SCHEMA training TO training_worker;

-- Reports: the operator no longer reads (or downloads) any tenant's reports.
DROP POLICY platform_operator ON training.reports;
CREATE POLICY worker_sees_the_queue ON training.reports FOR SELECT TO training_worker
    USING (status = 'queued');
CREATE POLICY worker_claims_queued ON training.reports FOR UPDATE TO training_worker
    USING (status = 'queued') WITH CHECK (status = 'queued');
GRANT SELECT (report_id, tenant_id, kind, subject_id, for_plan_version, priority, status,
              requested_by, request_id, trigger, attempts, claimed_until, created_at)
    ON training.reports TO training_worker;
GRANT UPDATE (claimed_until, attempts) ON training.reports TO training_worker;

-- Member imports: the runner resumes unfinished jobs of every tenant after a restart.
DROP POLICY platform_operator ON training.member_imports;
CREATE POLICY worker_finds_unfinished ON training.member_imports FOR SELECT TO training_worker
    USING (status IN ('queued', 'running'));
GRANT SELECT (import_id, tenant_id, status, created_at)
    ON training.member_imports TO training_worker;

-- Idempotency records are kept for the replay window only, and their response bodies are
-- sealed with the service's key. Records written before this release hold bodies in clear
-- (new API clients' secrets, calendar URLs): they are dropped (TRUNCATE, because row-level
-- security is forced on the owner too).
TRUNCATE training.idempotency_keys;
ALTER TABLE training.idempotency_keys ADD COLUMN expires_at timestamptz NOT NULL;
DROP INDEX training.idempotency_keys_created_at;
CREATE INDEX idempotency_keys_expiry ON training.idempotency_keys (expires_at);
CREATE POLICY worker_sees_expired ON training.idempotency_keys FOR SELECT TO training_worker
    USING (expires_at < now());
CREATE POLICY worker_purges_expired ON training.idempotency_keys FOR DELETE TO training_worker
    USING (expires_at < now());
GRANT SELECT (principal, key, expires_at), DELETE
    ON training.idempotency_keys TO training_worker;
