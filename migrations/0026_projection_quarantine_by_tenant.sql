SET LOCAL ROLE training_owner;

-- A quarantined or parked event's row belongs to its tenant (ADR 0026, ADR 0023).
--
-- Migration 0023 let every platform-scoped session read and write the whole table, so an
-- operator's request could see which events of which tenant a view set aside. Platform
-- sessions see platform tables only (issue 11): a row is now written and read in a
-- transaction scoped to its tenant, as the view's own rows are (the runner records the event
-- there; a tenant's read-your-writes check reads its own rows there), and the platform's
-- own events' rows in platform-scoped transactions. What crosses tenants (the `projections`
-- commands and /readyz) logs in as training_worker, which sees the positions and ids
-- of what is still held and never an error's text.
DROP POLICY platform_operator ON training.projection_quarantine;
CREATE POLICY tenant_isolation ON training.projection_quarantine
    USING (tenant_id = training.current_tenant())
    WITH CHECK (tenant_id = training.current_tenant());
CREATE POLICY platform_operator ON training.projection_quarantine
    USING (training.is_platform() AND tenant_id IS NULL)
    WITH CHECK (training.is_platform() AND tenant_id IS NULL);

CREATE POLICY worker_sees_what_is_held ON training.projection_quarantine
    FOR SELECT TO training_worker
    USING (resolved_at IS NULL);
GRANT SELECT (view_name, notification_id, upstream, tenant_id, topic, originator_id,
              originator_version, status, quarantined_at, resolved_at)
    ON training.projection_quarantine TO training_worker;
