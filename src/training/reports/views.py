"""The reports table as the API uses it: queue a report someone asked for, read a report's
status, its file, and a member's reports.

The table is the queue of the report worker (``training.reports.queue``) and the store of
the files; the ``report_triggers`` projection (``training.reports.trigger``) queues the
automatic report of each re-plan with the same ``INSERT``. These functions run on the API's
asynchronous pool, in a transaction scoped to the caller's tenant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from training.core.pagination import TIMESTAMP, UUID_KEY, Page, decode_cursor, page_of
from training.core.tenant_scope import tenant_transaction_async
from training.reports.domain.requests import ReportKind

CHANNEL = "training_reports"
NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"
ON_REQUEST, AUTOMATIC = 0, 1  # queue priorities: people waiting first


class ReportRecord(msgspec.Struct, kw_only=True):
    report_id: UUID
    kind: str
    subject_id: UUID | None
    plan_version: int | None
    status: str
    checksum: str | None
    size_bytes: int | None
    pages: int | None
    trigger: str
    requested_by: str
    created_at: datetime
    rendered_at: datetime | None
    detail: str | None


class ReportFile(msgspec.Struct, kw_only=True):
    kind: str
    subject_id: UUID | None
    status: str
    checksum: str | None
    pdf: bytes | None
    # An individual report printing the name of a member whose personal data was erased since.
    withheld: bool


COLUMNS = (
    "report_id, kind, subject_id, plan_version, status, checksum, size_bytes, pages, trigger, "
    "requested_by, created_at, rendered_at, detail"
)
INSERT = (
    "INSERT INTO training.reports (report_id, tenant_id, kind, subject_id, for_plan_version, "
    "priority, requested_by, request_id, trigger) VALUES (%(report)s, %(tenant)s, %(kind)s, "
    "%(subject)s, %(for_plan)s, %(priority)s, %(by)s, %(request)s, %(trigger)s) "
    "ON CONFLICT (report_id) DO NOTHING"
)


@asynccontextmanager
async def _writing(
    pool: AsyncConnectionPool[Any], tenant_id: UUID
) -> AsyncIterator[AsyncConnection[Any]]:
    async with tenant_transaction_async(pool, tenant_id) as conn:
        yield conn


async def create_report(
    pool: AsyncConnectionPool[Any],
    tenant_id: UUID,
    report_id: UUID,
    kind: ReportKind,
    subject_id: UUID | None,
    requested_by: str,
    request_id: str,
    trigger: str,
) -> None:
    """Queues a report someone asked for (its ``Requested`` event is already stored)."""
    async with _writing(pool, tenant_id) as conn:
        await conn.execute(
            INSERT,
            {
                "report": report_id,
                "tenant": tenant_id,
                "kind": str(kind),
                "subject": subject_id,
                "for_plan": None,
                "priority": ON_REQUEST,
                "by": requested_by,
                "request": request_id,
                "trigger": trigger,
            },
        )
        await conn.execute(NOTIFY)


async def get_report(conn: AsyncConnection[Any], report_id: UUID) -> ReportRecord | None:
    async with conn.cursor(row_factory=class_row(ReportRecord)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM training.reports WHERE report_id = %s", (report_id,)
        )
        return await cur.fetchone()


async def get_pdf(conn: AsyncConnection[Any], report_id: UUID) -> ReportFile | None:
    async with conn.cursor(row_factory=class_row(ReportFile)) as cur:
        await cur.execute(
            "SELECT r.kind, r.subject_id, r.status, r.checksum, r.pdf, EXISTS (SELECT 1 "
            "FROM training.members m WHERE m.member_id = ANY(r.named_members) AND m.erased) "
            "AS withheld FROM training.reports r WHERE r.report_id = %s",
            (report_id,),
        )
        return await cur.fetchone()


async def list_member_reports(
    conn: AsyncConnection[Any], member_id: UUID, *, limit: int, cursor: str | None
) -> Page[ReportRecord]:
    """A member's individual reports, newest first."""
    after = decode_cursor(cursor, TIMESTAMP, UUID_KEY) if cursor else None
    async with conn.cursor(row_factory=class_row(ReportRecord)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM training.reports WHERE kind = 'individual' "
            "AND subject_id = %(member)s AND (%(at)s::timestamptz IS NULL "
            "OR (created_at, report_id) < (%(at)s::timestamptz, %(id)s::uuid)) "
            "ORDER BY created_at DESC, report_id DESC LIMIT %(limit)s",
            {
                "member": member_id,
                "at": after[0] if after else None,
                "id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.created_at.isoformat(), str(r.report_id)])


async def list_reports(
    conn: AsyncConnection[Any], kinds: tuple[str, ...], *, limit: int, cursor: str | None
) -> Page[ReportRecord]:
    """Reports of the given kinds (cohort and effectiveness reports, say), newest first."""
    after = decode_cursor(cursor, TIMESTAMP, UUID_KEY) if cursor else None
    async with conn.cursor(row_factory=class_row(ReportRecord)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM training.reports WHERE kind = ANY(%(kinds)s) "
            "AND (%(at)s::timestamptz IS NULL "
            "OR (created_at, report_id) < (%(at)s::timestamptz, %(id)s::uuid)) "
            "ORDER BY created_at DESC, report_id DESC LIMIT %(limit)s",
            {
                "kinds": list(kinds),
                "at": after[0] if after else None,
                "id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.created_at.isoformat(), str(r.report_id)])
