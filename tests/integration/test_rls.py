"""Row-level security backs up the application's tenant checks on every read-model table.

The database is filled the way the service fills it: two small tenants, the demo tenant with
its people, cohorts, assessments and reviews, every projection (the planning process and the
report trigger included) run to the end, one report rendered through the report worker, an
unfinished member import, stored idempotency records and an event of one tenant that the
members view could not apply (quarantined, ADR 0026). The tables are enumerated from the
catalog, so a table added later is covered without touching these tests.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial

import psycopg
import pytest
from psycopg import sql

from tests import waiting
from tests.helpers import system_context
from tests.waiting import views_caught_up
from training.assessments.domain.evidence import EvidenceKind
from training.assessments.handlers.evidence import RecordEvidence
from training.bootstrap import command_bus, projection_supervisor, training_application
from training.cohorts.handlers.cohorts import ChangeTrainingPolicy, CompleteModule, GiveFeedback
from training.core.access import Role
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.read_store import ReadStore
from training.demo.world import load_demo
from training.infra.database import WORKER_ROLE, Database
from training.people.handlers.import_jobs import ImportJobStore
from training.people.handlers.members import RegisterMember
from training.registry import PROJECTIONS
from training.reports.queue import SqlReportQueue
from training.reports.sources import SqlReportSources
from training.reports.supervisor import ReportingSupervisor
from training.reports.trigger import REPORT_TRIGGERS
from training.reports.worker import ReportWorker
from training.tenancy.handlers import RegisterApiClient, RegisterTenant

CATALOGUE_TABLES = {"curricula", "curriculum_modules"}
# Platform tables: the operator registers tenants and manages their API clients. Every other
# table's rows with a tenant belong to that tenant alone, the events a view could not apply
# included (the worker role reads what crosses tenants, ADR 0023).
PLATFORM_TABLES = {"tenants", "api_clients"}
# What the fixture fills, so that "the platform sees none of it" means something. Tables
# added later are still checked (they are read from the catalog), rows or not.
FILLED_HERE = {
    "api_clients",
    "assessment_attempts",
    "assessment_responses",
    "assessment_results",
    "audit_log",
    "cohort_enrolments",
    "cohort_module_completions",
    "cohort_sessions",
    "cohorts",
    "curricula",
    "curriculum_modules",
    "idempotency_keys",
    "member_imports",
    "members",
    "people",
    "projection_quarantine",
    "reports",
    "role_profile_revisions",
    "role_profiles",
    "session_attendance",
    "session_feedback",
    "skill_evidence",
    "skill_evidence_streams",
    "skills",
    "tenants",
    "track_modules",
    "track_plans",
    "tracks",
    "training_policies",
}
IMPORT_CSV = b"external_id,display_name,email\nRLS-IMP,Ingrid Imported,ingrid@rls.example\n"


def read_model_tables(conn: psycopg.Connection) -> list[str]:
    """Every table in the training schema that holds tenant data (has a tenant_id column)."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.columns "
        "WHERE table_schema = 'training' AND column_name = 'tenant_id' ORDER BY table_name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def tenant_rows(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM training.{} WHERE tenant_id IS NOT NULL").format(
            sql.Identifier(table)
        )
    ).fetchone()
    return int(row[0]) if row else 0


wait_until = partial(waiting.wait_until, timeout=120.0, poll=0.2)


def fill_the_rest(database: Database, bus: CommandBus, tenant_id: uuid.UUID) -> None:
    """Feedback, a module completion, a training policy and skill evidence in the demo tenant."""
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT e.cohort_id, e.member_id, s.session_id, m.key FROM training.cohort_enrolments e "
            "JOIN training.cohort_sessions s ON s.cohort_id = e.cohort_id "
            "JOIN training.cohorts c ON c.cohort_id = e.cohort_id "
            "JOIN training.curriculum_modules m ON m.curriculum_id = c.curriculum_id "
            "AND m.version = c.curriculum_version "
            "WHERE e.tenant_id = %s AND e.status = 'enrolled' LIMIT 1",
            (tenant_id,),
        ).fetchone()
    assert row is not None
    cohort_id, member_id, session_id, module_key = row
    hr = CommandContext(Actor(ActorKind.SYSTEM, "rls"), "rls", tenant_id)
    engineer = CommandContext(Actor(ActorKind.MEMBER, str(member_id)), "rls", tenant_id)
    bus.execute(engineer, GiveFeedback(cohort_id, session_id, member_id, 4, 5, 3))
    bus.execute(hr, CompleteModule(cohort_id, member_id, module_key, date(2026, 12, 3)))
    bus.execute(hr, ChangeTrainingPolicy(25, 30))
    bus.execute(hr, RecordEvidence(member_id, EvidenceKind.CODE_REVIEW, "python", 3, None, "ok"))


def quarantine_an_event(database: Database, bus: CommandBus, tenant_id: uuid.UUID) -> None:
    """A member registration the members view cannot apply: a row of the view already holds
    its external id (as the write-model race of issue 12 left it)."""
    with psycopg.connect(database.admin_url) as conn:
        conn.execute(
            "INSERT INTO training.members (member_id, tenant_id, external_id, roles, status, "
            "version, created_at, updated_at) "
            "VALUES (%s, %s, 'RLS-Q', '{engineer}', 'active', 1, now(), now())",
            (uuid.uuid4(), tenant_id),
        )
    client = CommandContext(Actor(ActorKind.CLIENT, "tc_rls"), "rls", tenant_id)
    bus.execute(client, RegisterMember("RLS-Q", "Quentin Quarantined", None, (Role.ENGINEER,)))


def quarantined(database: Database) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM training.projection_quarantine WHERE resolved_at IS NULL"
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Filled:
    mine: uuid.UUID
    theirs: uuid.UUID
    demo: uuid.UUID
    rendered_report: uuid.UUID


@pytest.fixture(scope="module")
def filled(database: Database) -> Filled:
    app = training_application(database)
    bus = command_bus(app)
    base = projection_supervisor(database)
    supervisor = ReportingSupervisor(base.specs, base.env, base.lock_conninfo)
    queue = SqlReportQueue(database.app_url, worker_conninfo=database.worker_url)
    imports = ImportJobStore(database.app_url, worker_conninfo=database.worker_url)
    try:
        ids = []
        for slug in ("rls-a", "rls-b"):
            tenant = bus.execute(system_context(), RegisterTenant(slug, slug, 5)).result
            bus.execute(
                system_context(), RegisterApiClient(tenant.tenant_id, "c", ("tenant:read",))
            )
            ids.append(tenant.tenant_id)
        demo = load_demo(bus)
        assert demo is not None
        quarantine_an_event(database, bus, ids[0])
        supervisor.start()
        views = [spec.info for spec in (*PROJECTIONS, REPORT_TRIGGERS) if not spec.is_policy]
        # Twice in a row: the planning process writes events the tracks view then follows.
        wait_until(lambda: views_caught_up(database, views) and views_caught_up(database, views))
        assert quarantined(database) == 1
        fill_the_rest(database, bus, demo.tenant_id)
        wait_until(lambda: views_caught_up(database, views) and views_caught_up(database, views))
        queue.open()
        worker = ReportWorker(bus, queue, SqlReportSources(queue))
        while True:  # reports of replaced plans are superseded, not rendered
            job = queue.claim()  # as the worker role, across tenants
            assert job is not None
            if worker.process(job) == "rendered":
                break
        imports.open()
        imports.create(demo.tenant_id, "csv", IMPORT_CSV, "client:rls", "rls-import")
        with psycopg.connect(database.app_url) as conn:
            for tenant_id, principal in ((demo.tenant_id, "client:demo"), (None, "operator:o")):
                with conn.transaction():
                    if tenant_id is None:
                        conn.execute("SELECT set_config('app.platform', 'on', true)")
                    else:
                        conn.execute(
                            "SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),)
                        )
                    conn.execute(
                        "INSERT INTO training.idempotency_keys (tenant_id, principal, key, "
                        "request_hash, expires_at) VALUES (%s, %s, 'k', 'h', %s)",
                        (tenant_id, principal, datetime.now(UTC) + timedelta(days=1)),
                    )
    finally:
        supervisor.stop()
        queue.close()
        imports.close()
        app.close()
    return Filled(ids[0], ids[1], demo.tenant_id, job.report_id)


def test_every_read_model_table_has_rls_enabled_and_forced(database: Database) -> None:
    with psycopg.connect(database.admin_url) as conn:
        tables = read_model_tables(conn)
        flags = conn.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relnamespace = 'training'::regnamespace AND relname = ANY(%s)",
            (tables,),
        ).fetchall()
    assert {"tenants", "api_clients", "idempotency_keys", "reports", "people"} <= set(tables)
    assert sorted(flags) == sorted((name, True, True) for name in tables)


def test_every_tenant_table_holds_tenant_rows_here(database: Database, filled: Filled) -> None:
    """What the next tests prove is only worth something for tables that have rows."""
    with psycopg.connect(database.admin_url) as conn:
        filled_tables = {t for t in read_model_tables(conn) if tenant_rows(conn, t)}
        rendered = conn.execute(
            "SELECT status, pdf IS NOT NULL FROM training.reports WHERE report_id = %s",
            (filled.rendered_report,),
        ).fetchone()
    assert filled_tables >= FILLED_HERE, sorted(FILLED_HERE - filled_tables)
    assert rendered == ("rendered", True)


async def platform_counts(database: Database, tables: list[str]) -> dict[str, int]:
    store = ReadStore(database.app_url, min_size=1, max_size=1)
    await store.open()
    try:
        counts = {}
        async with store.session(None) as conn:
            for table in tables:
                cur = await conn.execute(
                    sql.SQL("SELECT count(*) FROM training.{} WHERE tenant_id IS NOT NULL").format(
                        sql.Identifier(table)
                    )
                )
                row = await cur.fetchone()
                counts[table] = int(row[0]) if row else 0
        return counts
    finally:
        await store.close()


def test_a_platform_session_of_the_read_store_sees_no_tenants_rows(
    database: Database, filled: Filled
) -> None:
    with psycopg.connect(database.admin_url) as conn:
        tables = read_model_tables(conn)
    counts = asyncio.run(platform_counts(database, tables))
    seen = {table: count for table, count in counts.items() if count}
    assert {"tenants", "api_clients"} <= set(seen) <= PLATFORM_TABLES, seen
    assert counts["projection_quarantine"] == 0  # the tenant's quarantined event is out of sight
    # The platform's own rows are still there: the operator's idempotency record, the catalogue.
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.platform', 'on', true)")
        assert conn.execute("SELECT count(*) FROM training.idempotency_keys").fetchone() == (1,)
        catalogue = conn.execute("SELECT count(*) FROM training.curricula").fetchone()
        assert catalogue is not None
        assert catalogue[0] > 0


def test_no_policy_opens_a_tenants_rows_to_the_platform(database: Database) -> None:
    """Whatever a table holds: a policy that admits the platform admits its own rows only."""
    with psycopg.connect(database.admin_url) as conn:
        tables = set(read_model_tables(conn)) - PLATFORM_TABLES
        rows = conn.execute(
            "SELECT c.relname, p.polname, pg_get_expr(p.polqual, p.polrelid), "
            "pg_get_expr(p.polwithcheck, p.polrelid) FROM pg_policy p "
            "JOIN pg_class c ON c.oid = p.polrelid "
            "WHERE c.relnamespace = 'training'::regnamespace AND c.relname = ANY(%s) "
            "AND (0 = ANY(p.polroles) OR 'training_app'::regrole = ANY(p.polroles))",
            (sorted(tables),),
        ).fetchall()
    assert rows
    for table, policy, using, check in rows:
        for expression in (using, check):
            if expression and "is_platform()" in expression:
                assert "(tenant_id IS NULL)" in expression, (table, policy, expression)


def test_the_worker_role_sees_the_queues_and_nothing_else(
    database: Database, filled: Filled
) -> None:
    with psycopg.connect(database.admin_url) as conn:
        tables = read_model_tables(conn)
        queued = conn.execute(
            "SELECT count(*) FROM training.reports WHERE status = 'queued'"
        ).fetchone()
        all_reports = conn.execute("SELECT count(*) FROM training.reports").fetchone()
    assert queued is not None
    assert all_reports is not None
    assert all_reports[0] > queued[0]
    with psycopg.connect(database.worker_url, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (WORKER_ROLE,)
        # Queued reports of every tenant, to claim one; the rendered one is out of sight.
        assert conn.execute("SELECT count(report_id) FROM training.reports").fetchone() == queued
        assert conn.execute(
            "SELECT count(report_id) FROM training.reports WHERE report_id = %s",
            (filled.rendered_report,),
        ).fetchone() == (0,)
        # Unfinished imports of every tenant, without their content.
        assert conn.execute("SELECT count(import_id) FROM training.member_imports").fetchone() == (
            1,
        )
        # Idempotency records and command outcomes only once expired (none here).
        assert conn.execute("SELECT count(key) FROM training.idempotency_keys").fetchone() == (0,)
        assert conn.execute("SELECT count(key) FROM training.command_outcomes").fetchone() == (0,)
        # Which events of which tenant the views hold back (for /readyz and the operator's
        # retry), as positions and ids: never the error's text.
        held = conn.execute(
            "SELECT view_name, tenant_id, status FROM training.projection_quarantine"
        ).fetchall()
        assert held == [("members", filled.mine, "failed")]
        queues = {
            "reports",
            "member_imports",
            "idempotency_keys",
            "command_outcomes",
            "projection_quarantine",
        }
        denied = [
            "SELECT pdf FROM training.reports",
            "SELECT content FROM training.member_imports",
            "SELECT response_body FROM training.idempotency_keys",
            "SELECT outcome FROM training.command_outcomes",
            "SELECT error_message FROM training.projection_quarantine",
            "UPDATE training.reports SET status = 'failed'",
            "UPDATE training.projection_quarantine SET resolved_at = now()",
            *(f"SELECT count(*) FROM training.{table}" for table in tables if table not in queues),
        ]
        for statement in denied:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_no_api_connection_can_take_the_worker_role(database: Database) -> None:
    with psycopg.connect(database.app_url, autocommit=True) as conn:
        for statement in (
            "SET ROLE training_worker",
            "SELECT set_config('role', 'training_worker', false)",
            "SET SESSION AUTHORIZATION training_worker",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        member = conn.execute(
            "SELECT pg_has_role('training_app', 'training_worker', 'MEMBER')"
        ).fetchone()
        assert member == (False,)
        flags = conn.execute(
            "SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = 'training_worker'"
        ).fetchone()
        assert flags == (False, False)
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = 'training_worker'::regrole"
        ).fetchone()
        assert owned == (0,)


def test_without_a_tenant_the_service_role_reads_nothing(
    database: Database, filled: Filled
) -> None:
    with psycopg.connect(database.app_url) as conn:
        for table in read_model_tables(conn):
            count = conn.execute(f"SELECT count(*) FROM training.{table}").fetchone()
            assert count == (0,), table
    with psycopg.connect(database.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM training.tenants").fetchone() == (3,)


def test_a_tenant_sees_only_its_own_rows(database: Database, filled: Filled) -> None:
    for mine, theirs in ((filled.mine, filled.theirs), (filled.demo, filled.mine)):
        with psycopg.connect(database.app_url) as conn, conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(mine),))
            for table in read_model_tables(conn):
                rows = conn.execute(f"SELECT DISTINCT tenant_id FROM training.{table}").fetchall()
                # The platform catalogue (tenant_id NULL) is shared with every tenant, read-only.
                shared = {(None,)} if table in CATALOGUE_TABLES else set()
                assert set(rows) <= {(mine,)} | shared, table
            assert conn.execute("SELECT count(*) FROM training.tenants").fetchone() == (1,)
            assert conn.execute(
                "SELECT count(*) FROM training.api_clients WHERE tenant_id = %s", (theirs,)
            ).fetchone() == (0,)


def test_a_tenant_cannot_write_another_tenants_rows(database: Database, filled: Filled) -> None:
    mine, theirs = filled.mine, filled.theirs
    with psycopg.connect(database.app_url) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(mine),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO training.idempotency_keys (tenant_id, principal, key, request_hash, "
                "expires_at) VALUES (%s, 'client:x', 'k', 'h', now())",
                (theirs,),
            )
        conn.rollback()
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(mine),))
            changed = conn.execute(
                "UPDATE training.tenants SET name = 'hijacked' WHERE tenant_id = %s", (theirs,)
            )
            assert changed.rowcount == 0


def test_the_setting_does_not_outlive_its_transaction(database: Database, filled: Filled) -> None:
    with psycopg.connect(database.app_url) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(filled.mine),))
            assert conn.execute("SELECT count(*) FROM training.tenants").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM training.tenants").fetchone() == (0,)
