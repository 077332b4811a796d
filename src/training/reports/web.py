"""The engineer's PDF reports in the browser: their individual reports, newest first, with
each one's status, and the download of a rendered one.

The pages read the same view as ``/v1/members/{member_id}/pdf-reports`` and serve a PDF by
the same rules as ``/v1/reports/{report_id}/pdf`` (withheld after an erasure, superseded,
queued or failed; an ETag). They show only the signed-in person's own reports: any other
report id reads as missing.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Template

from training.core.errors import NotFound
from training.core.http.params import Cursor
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.web.i18n import N_
from training.core.web.pages import page
from training.people.views import MEMBERS
from training.reports import views
from training.reports.domain.requests import ReportKind
from training.reports.http import IfNoneMatch, pdf_answer
from training.reports.trigger import REPORT_TRIGGERS

REPORTS_PAGE = 20

STATUS_LABELS: dict[str, str] = {
    "queued": N_("Being made"),
    "rendered": N_("Ready"),
    "failed": N_("Failed"),
    "superseded": N_("Replaced by a newer report"),
}
ON_REQUEST = "on request"


def _member_of(principal: Principal) -> UUID:
    if principal.member_id is None:
        raise PermissionDeniedException(detail="this page is for a person signed in")
    return principal.member_id


@get("/reports/mine")
async def my_reports(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cursor: Cursor = None,
) -> Template:
    member_id = _member_of(principal)
    # The list holds each re-plan's automatic report, queued by the report trigger; the
    # queue row is written beside the views and rendered by a worker: read the primary.
    await reads.after([MEMBERS.info, REPORT_TRIGGERS.info])
    async with reads.session(primary=True) as conn:
        found = await views.list_member_reports(conn, member_id, limit=REPORTS_PAGE, cursor=cursor)
    return page(
        "reports/mine.html",
        viewer=principal,
        section="reports",
        reports=found.items,
        next_cursor=found.next_cursor,
        statuses=STATUS_LABELS,
        on_request=ON_REQUEST,
    )


@get("/reports/{report_id:uuid}/pdf")
async def download(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    report_id: FromPath[UUID],
    if_none_match: IfNoneMatch = None,
) -> Response[bytes]:
    member_id = _member_of(principal)
    # Withholding after erasure reads the members view: honour read-your-writes.
    await reads.after([MEMBERS.info, REPORT_TRIGGERS.info])
    async with reads.session(primary=True) as conn:
        found = await views.get_pdf(conn, report_id)
    if found is None or found.kind != ReportKind.INDIVIDUAL or found.subject_id != member_id:
        raise NotFound(f"report {report_id} not found")
    return pdf_answer(found, report_id, if_none_match)


ROUTES: list[Any] = [my_reports, download]
