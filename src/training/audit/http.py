"""The audit log over HTTP: a tenant admin sees who did what, as JSON pages or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import QueryParameter
from litestar.response import Stream

from training.audit import views as queries
from training.audit.views import AUDIT
from training.core.access import Scope
from training.core.http.principal import requires_scope
from training.core.http.services import principal_of, read_after, services_of
from training.core.http.spreadsheet import safe_row
from training.core.pagination import DEFAULT_LIMIT, MAX_LIMIT

Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, QueryParameter(name="cursor", max_length=512)]
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
        request: Request[Any, Any, Any],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        actor: Actor = None,
        event_type: EventType = None,
        since: Since = None,
        until: Until = None,
    ) -> AuditPage:
        await read_after(request, [AUDIT.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
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
        request: Request[Any, Any, Any],
        actor: Actor = None,
        event_type: EventType = None,
        since: Since = None,
        until: Until = None,
    ) -> Stream:
        await read_after(request, [AUDIT.info])
        store = services_of(request).store
        tenant_id = principal_of(request).tenant_id

        async def rows() -> AsyncIterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(CSV_COLUMNS)
            cursor: str | None = None
            while True:
                async with store.session(tenant_id) as conn:
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
