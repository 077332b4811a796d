"""PDF reports in the browser: the engineer's individual reports, newest first, with each
one's status, and the download of a rendered one; the HR manager's cohort and effectiveness
reports, asked for with the same command as ``requestReport``, with their status and PDF.

The pages read the same view as ``/v1/members/{member_id}/pdf-reports`` and serve a PDF by
the same rules as ``/v1/reports/{report_id}/pdf`` (withheld after an erasure, superseded,
queued or failed; an ETag). An engineer sees only their own reports: any other report id
reads as missing. Cohort and effectiveness reports are for HR (``members:read``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from training.cohorts.views import cohorts as cohort_queries
from training.cohorts.views.projection import COHORTS
from training.core.access import Scope
from training.core.errors import DomainError, NotFound
from training.core.http.commands import Commands
from training.core.http.params import Cursor
from training.core.http.principal import Principal, requires_scope
from training.core.http.reads import Reads
from training.core.web.i18n import N_, gettext
from training.core.web.pages import Position, after_position, page, shown_at
from training.people.views import MEMBERS
from training.reports import views
from training.reports.domain.requests import ReportKind
from training.reports.http import IfNoneMatch, pdf_answer, request_and_queue
from training.reports.trigger import REPORT_TRIGGERS

REPORTS_PAGE = 20

STATUS_LABELS: dict[str, str] = {
    "queued": N_("Being made"),
    "rendered": N_("Ready"),
    "failed": N_("Failed"),
    "superseded": N_("Replaced by a newer report"),
}
ON_REQUEST = "on request"
HR = [requires_scope(Scope.MEMBERS_READ)]
HR_KINDS = (ReportKind.COHORT, ReportKind.EFFECTIVENESS)
KIND_LABELS: dict[str, str] = {
    "cohort": N_("Cohort report"),
    "effectiveness": N_("Effectiveness report"),
}
CHOOSE_COHORT = N_("Choose the cohort the report is about.")
COHORT_CHOICES = 200


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
    if found is None:
        raise NotFound(f"report {report_id} not found")
    if found.kind == ReportKind.INDIVIDUAL:
        if found.subject_id != member_id:
            raise NotFound(f"report {report_id} not found")
    elif not principal.has_scope(Scope.MEMBERS_READ):
        raise PermissionDeniedException(detail="cohort and effectiveness reports are for HR")
    return pdf_answer(found, report_id, if_none_match)


async def _reports_page(
    reads: Reads,
    principal: Principal,
    cursor: str | None,
    *,
    problem: str = "",
    status_code: int = 200,
) -> Template:
    await reads.after([COHORTS.info])
    async with reads.session() as conn:
        cohorts = await cohort_queries.list_cohorts(
            conn, limit=COHORT_CHOICES, cursor=None, status=None, curriculum_id=None
        )
    # The queue row is written beside the views and rendered by a worker: read the primary.
    async with reads.session(primary=True) as conn:
        found = await views.list_reports(
            conn, tuple(map(str, HR_KINDS)), limit=REPORTS_PAGE, cursor=cursor
        )
    return page(
        "reports/hr.html",
        status_code=status_code,
        viewer=principal,
        section="hr-reports",
        reports=found.items,
        next_cursor=found.next_cursor,
        cohorts=cohorts.items,
        names={c.cohort_id: c.name for c in cohorts.items},
        statuses=STATUS_LABELS,
        kinds=KIND_LABELS,
        problem=problem,
    )


@get("/reports", guards=HR)
async def reports(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cursor: Cursor = None,
    at: Position = None,
) -> Template:
    await after_position(reads, [MEMBERS.info, REPORT_TRIGGERS.info], at)
    return await _reports_page(reads, principal, cursor)


@post("/reports", guards=HR, status_code=303)
async def request_report(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
) -> Response[Any]:
    """A cohort or effectiveness report, asked for as ``requestReport`` asks for it."""
    sent = await request.form()
    kind = str(sent.get("kind", ""))
    subject: UUID | None = None
    if kind == ReportKind.COHORT:
        try:
            subject = UUID(str(sent.get("subject_id", "")))
        except ValueError:
            subject = None
    if kind not in KIND_LABELS or (kind == ReportKind.COHORT and subject is None):
        problem = gettext(CHOOSE_COHORT)
        return await _reports_page(reads, principal, None, problem=problem, status_code=422)
    try:
        outcome = await request_and_queue(commands, reads, principal, ReportKind(kind), subject)
    except NotFound:
        raise
    except DomainError as error:
        return await _reports_page(reads, principal, None, problem=error.detail, status_code=422)
    return Redirect(shown_at("/reports", outcome), status_code=303)


ROUTES: list[Any] = [my_reports, download, reports, request_report]
