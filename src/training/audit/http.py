"""The audit log over HTTP: a tenant admin sees who did what, as JSON pages or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Stream

from training.audit import views as queries
from training.audit.views import AUDIT
from training.core.access import Scope
from training.core.http.params import Cursor, Limit
from training.core.http.principal import requires_scope
from training.core.http.reads import Reads
from training.core.http.spreadsheet import safe_row
from training.core.pagination import DEFAULT_LIMIT

Actor = Annotated[
    str | None,
    QueryParameter(name="actor", max_length=200, description="e.g. member:<id> or client:<id>"),
]
EventType = Annotated[
    str | None,
    QueryParameter(
        name="type",
        max_length=200,
        description="an event type, e.g. training.people:Member.Registered",
    ),
]
Since = Annotated[datetime | None, QueryParameter(name="from", description="inclusive")]
Until = Annotated[datetime | None, QueryParameter(name="to", description="exclusive")]
CSV_BATCH = 1000
CSV_COLUMNS = (
    "notification_id",
    "recorded_at",
    "actor",
    "request_id",
    "event_type",
    "subject_type",
    "subject_id",
    "subject_version",
)


class AuditPage(msgspec.Struct):
    items: list[queries.AuditRecord]
    next_cursor: str | None


class AuditController(Controller):
    path = "/v1/audit"
    tags = ["Audit"]
    security = [{"bearer": []}]

    @get(
        "/",
        guards=[requires_scope(Scope.AUDIT_READ, operator=True)],
        operation_id="listAudit",
        summary="Who did what: actor, time, event type and subject, newest first",
    )
    async def list_audit(
        self,
        reads: NamedDependency[Reads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        actor: Actor = None,
        event_type: EventType = None,
        since: Since = None,
        until: Until = None,
    ) -> AuditPage:
        await reads.after([AUDIT.info])
        async with reads.session() as conn:
            page = await queries.list_audit(
                conn,
                limit=limit,
                cursor=cursor,
                actor=actor,
                event_type=event_type,
                since=since,
                until=until,
            )
        return AuditPage(page.items, page.next_cursor)

    @get(
        "/export.csv",
        guards=[requires_scope(Scope.AUDIT_READ, operator=True)],
        operation_id="exportAudit",
        summary="The audit log as CSV (same filters)",
        media_type="text/csv",
    )
    async def export(
        self,
        reads: NamedDependency[Reads],
        actor: Actor = None,
        event_type: EventType = None,
        since: Since = None,
        until: Until = None,
    ) -> Stream:
        await reads.after([AUDIT.info])

        async def rows() -> AsyncIterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(CSV_COLUMNS)
            cursor: str | None = None
            while True:
                # One short transaction per batch: a long export holds no snapshot open.
                async with reads.session() as conn:
                    page = await queries.list_audit(
                        conn,
                        limit=CSV_BATCH,
                        cursor=cursor,
                        actor=actor,
                        event_type=event_type,
                        since=since,
                        until=until,
                    )
                for record in page.items:
                    writer.writerow(safe_row(getattr(record, column) for column in CSV_COLUMNS))
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                cursor = page.next_cursor
                if cursor is None:
                    return

        return Stream(
            rows(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )


ROUTES = [AuditController]
