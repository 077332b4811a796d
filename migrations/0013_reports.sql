SET LOCAL ROLE training_owner;

-- PDF reports: the queue the report workers take from, each report's status and its file.
-- The Report aggregate's events (Requested, Rendered, Failed) are the audit trail; this
-- table holds the bytes and lets workers in several processes share the queue.
CREATE TABLE training.reports (
    report_id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('individual', 'cohort', 'effectiveness')),
    subject_id uuid,
    -- The automatic report of a re-plan names its plan version (the id derives from it, so
    -- one report per member and version); plan_version is the version a report shows.
    for_plan_version integer,
    plan_version integer,
    -- Whether the file prints the member's name: such a file is withheld once the member's
    -- personal data is erased (a report built after the erasure says "(erased)").
    names_subject boolean NOT NULL DEFAULT false,
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'rendered', 'failed')),
    priority smallint NOT NULL DEFAULT 0,
    requested_by text NOT NULL,
    request_id text NOT NULL DEFAULT '',
    trigger text NOT NULL,
    checksum text,
    size_bytes integer,
    pages integer,
    pdf bytea,
    detail text,
    attempts integer NOT NULL DEFAULT 0,
    claimed_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    rendered_at timestamptz,
    CHECK ((status = 'rendered') = (pdf IS NOT NULL AND checksum IS NOT NULL))
);
-- The bytes are read whole and never searched: keep them out of line, uncompressed (a PDF
-- is compressed already).
ALTER TABLE training.reports ALTER COLUMN pdf SET STORAGE EXTERNAL;
CREATE INDEX reports_by_subject ON training.reports (tenant_id, subject_id, created_at DESC, report_id DESC);
CREATE INDEX reports_queued ON training.reports (priority, created_at, report_id) WHERE status = 'queued';

ALTER TABLE training.reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE training.reports FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON training.reports
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
-- The workers claim queued reports of every tenant.
CREATE POLICY platform_operator ON training.reports
    USING (training.is_platform()) WITH CHECK (training.is_platform());
GRANT SELECT, INSERT, UPDATE, DELETE ON training.reports TO training_app;

-- Where the report trigger (a projection of the planning process's events) has got to.
CREATE TABLE training.report_triggers_tracking (
    application_name text PRIMARY KEY,
    notification_id bigint
);
GRANT SELECT, INSERT, UPDATE ON training.report_triggers_tracking TO training_app;

-- Reports start with this release: re-plans made before it get no automatic report.
INSERT INTO training.report_triggers_tracking (application_name, notification_id)
SELECT 'planning', max(notification_id) FROM training.planning_events
HAVING max(notification_id) IS NOT NULL;
