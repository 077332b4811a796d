"""The audit log for a tenant's administrators: who did what and when, filtered and paged,
and the same selection as CSV (the API's export, which accepts the page's session)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import get
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Template

from training.audit import views as queries
from training.audit.views import AUDIT
from training.core.access import Scope
from training.core.http.params import Cursor
from training.core.http.principal import Principal, requires_scope
from training.core.http.reads import Reads
from training.core.web.pages import page

AUDIT_PAGE = 50


def _start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


@get("/admin/audit", guards=[requires_scope(Scope.AUDIT_READ)])
async def audit_log(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cursor: Cursor = None,
    actor: Annotated[str | None, QueryParameter(name="actor", max_length=200)] = None,
    event_type: Annotated[str | None, QueryParameter(name="type", max_length=200)] = None,
    since: Annotated[date | None, QueryParameter(name="from")] = None,
    until: Annotated[date | None, QueryParameter(name="to")] = None,
) -> Template:
    """``from`` and ``to`` are days (UTC): from the start of the first to the end of the
    second."""
    actor = (actor or "").strip() or None
    event_type = (event_type or "").strip() or None
    start = _start_of(since)
    end = _start_of(until.fromordinal(until.toordinal() + 1)) if until else None
    await reads.after([AUDIT.info])
    async with reads.session() as conn:
        found = await queries.list_audit(
            conn,
            limit=AUDIT_PAGE,
            cursor=cursor,
            actor=actor,
            event_type=event_type,
            since=start,
            until=end,
        )
    filters = {
        key: value
        for key, value in (
            ("actor", actor),
            ("type", event_type),
            ("from", since.isoformat() if since else None),
            ("to", until.isoformat() if until else None),
        )
        if value
    }
    export = {
        key: value
        for key, value in (
            ("actor", actor),
            ("type", event_type),
            ("from", start.isoformat() if start else None),
            ("to", end.isoformat() if end else None),
        )
        if value
    }
    next_page = (
        f"/admin/audit?{urlencode({**filters, 'cursor': found.next_cursor})}"
        if found.next_cursor
        else None
    )
    return page(
        "audit/log.html",
        viewer=principal,
        section="audit",
        records=found.items,
        filters=filters,
        next_page=next_page,
        export_url=f"/v1/audit/export.csv?{urlencode(export)}",
    )


ROUTES: list[Any] = [audit_log]
