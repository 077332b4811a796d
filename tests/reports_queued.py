"""Reports queued as the API queues them, and what became of them, for the queue's tests."""

from __future__ import annotations

import uuid
from functools import partial

import psycopg

from tests import waiting
from tests.helpers import system_context
from training.core.bus import CommandBus
from training.core.context import CommandContext
from training.infra.database import Database
from training.reports.domain.requests import Report, ReportKind
from training.reports.handlers import RequestReport
from training.reports.queue import LEASE_SPACE
from training.reports.views import INSERT, ON_REQUEST
from training.tenancy.handlers import RegisterTenant

RENDERED_TOPIC_SUFFIX = Report.Rendered.__qualname__  # "Report.Rendered"


def queue_reports(bus: CommandBus, database: Database, count: int) -> list[uuid.UUID]:
    """A new tenant's effectiveness reports, requested and queued as the API does it."""
    slug = f"q{uuid.uuid4().hex[:8]}"
    tenant_id = bus.execute(system_context(), RegisterTenant(slug, slug, 5)).result.tenant_id
    context = CommandContext.system("tests", f"queue-{slug}", tenant_id)
    ids = []
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        for _ in range(count):
            requested = bus.execute(context, RequestReport(ReportKind.EFFECTIVENESS, None)).result
            conn.execute(
                INSERT,
                {
                    "report": requested.report_id,
                    "tenant": tenant_id,
                    "kind": str(ReportKind.EFFECTIVENESS),
                    "subject": None,
                    "for_plan": None,
                    "priority": ON_REQUEST,
                    "by": "system:tests",
                    "request": context.request_id,
                    "trigger": "on request",
                },
            )
            ids.append(requested.report_id)
    return ids


def statuses(database: Database, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, int, str]]:
    """Each report's status, attempts and detail, as the table holds them."""
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT report_id, status, attempts, coalesce(detail, '') FROM training.reports "
            "WHERE report_id = ANY(%s)",
            (ids,),
        ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def rendered_events(database: Database, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many times each report was rendered and recorded (its ``Rendered`` events)."""
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT originator_id, count(*) FROM training.training_events "
            "WHERE originator_id = ANY(%s) AND topic LIKE %s GROUP BY originator_id",
            (ids, f"%{RENDERED_TOPIC_SUFFIX}"),
        ).fetchall()
    counts = dict.fromkeys(ids, 0)
    counts.update({row[0]: int(row[1]) for row in rows})
    return counts


def leases(database: Database) -> int:
    """Report leases held in the database (advisory locks of the report queue)."""
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
            "AND objsubid = 2 AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())",
            (LEASE_SPACE,),
        ).fetchone()
    return int(row[0]) if row else 0


wait_until = partial(waiting.wait_until, poll=0.2)
