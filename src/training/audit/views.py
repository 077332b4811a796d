"""The audit log: who did what, when, to which subject, built from every event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import AsyncConnection, Cursor
from psycopg.rows import class_row

from training.catalog import AGGREGATES, event_classes
from training.core.pagination import BIGINT, Page, decode_cursor, page_of
from training.core.views import ProjectionSpec, TenantScopedView, rows_as_json


class AuditRecord(msgspec.Struct, kw_only=True):
    notification_id: int
    recorded_at: datetime
    actor: str
    request_id: str
    event_type: str
    subject_type: str
    subject_id: UUID
    subject_version: int


class AuditView(TenantScopedView):
    """One row per event. In a runner's batch the rows of a tenant's run of events go in with
    one statement (``write_together``): the audit view follows every topic, so in a catch-up
    or an import it writes more rows than any other view."""

    tables = ("training.audit_log",)

    def record(self, event: Any, tracking: Tracking) -> None:
        topic = get_topic(type(event))
        row = AuditRow(
            notification_id=tracking.notification_id,
            tenant_id=event.tenant_id,
            recorded_at=event.timestamp,
            actor=event.actor or "unknown",
            request_id=event.request_id or "",
            event_type=topic,
            subject_type=topic.split(":")[1].split(".")[0],
            subject_id=event.originator_id,
            subject_version=event.originator_version,
        )
        self.write_together(tracking, event.tenant_id, row)

    def write_items(self, cursor: Cursor[Any], items: Sequence[Any]) -> None:
        cursor.execute(INSERT_ROWS, (rows_as_json(items),))


class AuditRow(AuditRecord, kw_only=True):
    """A row as the view writes it: the record, and the tenant it belongs to."""

    tenant_id: UUID | None


INSERT_ROWS = (
    "INSERT INTO training.audit_log (notification_id, tenant_id, recorded_at, actor, request_id, "
    "event_type, subject_type, subject_id, subject_version) "
    "SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r(notification_id bigint, tenant_id uuid, "
    "recorded_at timestamptz, actor text, request_id text, event_type text, subject_type text, "
    "subject_id uuid, subject_version bigint)"
)


class AuditProjection(Projection[AuditView]):
    name = "audit"
    topics = tuple(get_topic(cls) for aggregate in AGGREGATES for cls in event_classes(aggregate))

    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.record(event, tracking)


COLUMNS = (
    "notification_id, recorded_at, actor, request_id, event_type, subject_type, subject_id, "
    "subject_version"
)


async def list_audit(
    conn: AsyncConnection[Any],
    *,
    limit: int,
    cursor: str | None,
    actor: str | None,
    event_type: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Page[AuditRecord]:
    """Newest first; filters combine with AND."""
    before = int(decode_cursor(cursor, BIGINT)[0]) if cursor else None
    async with conn.cursor(row_factory=class_row(AuditRecord)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM training.audit_log "
            "WHERE (%(before)s::bigint IS NULL OR notification_id < %(before)s) "
            "AND (%(actor)s::text IS NULL OR actor = %(actor)s) "
            "AND (%(type)s::text IS NULL OR event_type = %(type)s) "
            "AND (%(since)s::timestamptz IS NULL OR recorded_at >= %(since)s) "
            "AND (%(until)s::timestamptz IS NULL OR recorded_at < %(until)s) "
            "ORDER BY notification_id DESC LIMIT %(limit)s",
            {
                "before": before,
                "actor": actor,
                "type": event_type,
                "since": since,
                "until": until,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.notification_id])


# The read model as the runners and read-your-writes know it.
AUDIT = ProjectionSpec(AuditProjection, AuditView)
