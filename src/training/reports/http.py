"""PDF reports over HTTP: ask for one, follow its status, download it.

Individual reports are seen (and asked for) by the member, anyone in their manager line and
HR (``members:read``); cohort and effectiveness reports by HR. Reports are made in the
background: a request answers 202 with the report's status URL. The automatic report of each
re-plan appears in the member's list without anyone asking.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, HeaderParameter, JSONBody

from training.core.access import Scope
from training.core.errors import NotFound
from training.core.http.commands import Commands, answer
from training.core.http.params import Cursor, Limit
from training.core.http.principal import Principal, requires_tenant
from training.core.http.reads import Reads
from training.core.pagination import DEFAULT_LIMIT
from training.core.read_store import ViewInfo
from training.people import views as people_queries
from training.people.views import MEMBERS
from training.reports import views
from training.reports.domain.requests import ReportKind
from training.reports.handlers import ReportRequested, RequestReport
from training.reports.trigger import REPORT_TRIGGERS

IfNoneMatch = Annotated[str | None, HeaderParameter(name="If-None-Match")]
PDF = "application/pdf"

ACCESS = (
    "Individual reports: the member, anyone in their manager line and HR (`members:read`). "
    "Cohort and effectiveness reports: HR."
)


class ReportIn(msgspec.Struct, forbid_unknown_fields=True):
    """``subject_id``: the member of an individual report, the cohort of a cohort report,
    none for the effectiveness report (the whole organisation)."""

    kind: ReportKind
    subject_id: UUID | None = None


class ReportAccepted(msgspec.Struct):
    report_id: UUID
    status: str
    status_url: str
    pdf_url: str


class ReportOut(msgspec.Struct, kw_only=True):
    report_id: UUID
    kind: str
    subject_id: UUID | None
    status: Annotated[
        str,
        msgspec.Meta(
            description="queued, rendered, failed, or superseded (an automatic report whose "
            "plan was replaced before it was rendered: the newer plan's report replaces it)"
        ),
    ]
    plan_version: Annotated[
        int | None, msgspec.Meta(description="the plan version an individual report shows")
    ]
    checksum: Annotated[
        str | None, msgspec.Meta(description="SHA-256 of the PDF, hex; also its ETag")
    ]
    size_bytes: int | None
    pages: int | None
    trigger: Annotated[str, msgspec.Meta(description="`on request`, or the re-plan behind it")]
    requested_by: str
    detail: Annotated[
        str | None, msgspec.Meta(description="why a report failed or what superseded it")
    ]
    created_at: datetime
    rendered_at: datetime | None
    pdf_url: str


class ReportPage(msgspec.Struct):
    items: list[ReportOut]
    next_cursor: str | None


def report_out(record: views.ReportRecord) -> ReportOut:
    return ReportOut(
        report_id=record.report_id,
        kind=record.kind,
        subject_id=record.subject_id,
        status=record.status,
        plan_version=record.plan_version,
        checksum=record.checksum,
        size_bytes=record.size_bytes,
        pages=record.pages,
        trigger=record.trigger,
        requested_by=record.requested_by,
        detail=record.detail,
        created_at=record.created_at,
        rendered_at=record.rendered_at,
        pdf_url=f"/v1/reports/{record.report_id}/pdf",
    )


async def _may_see_member(
    reads: Reads,
    principal: Principal,
    member_id: UUID,
    reading: Sequence[ViewInfo] = (),
) -> None:
    """HR and the member; a manager for people in their line; 404 for an unknown member.
    ``reading``: the other views the query reads, waited for with the members view."""
    await reads.after([MEMBERS.info, *reading])
    async with reads.session() as conn:
        known = await people_queries.get_member(conn, member_id) is not None
        if principal.has_scope(Scope.MEMBERS_READ) or principal.is_member(member_id):
            if not known:
                raise NotFound(f"member {member_id} not found")
            return
        manager = principal.member_id
        if (
            known
            and manager is not None
            and await people_queries.reports_to(conn, member_id, manager)
        ):
            return
    raise PermissionDeniedException(
        detail="a member's reports are seen by the member, their managers and HR (members:read)"
    )


async def may_request(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Who may ask for a report is decided before the body is validated: anyone but HR may
    only ask for individual reports (of themselves or their people, checked in the handler),
    so a caller without ``members:read`` gets 403, not a validation error, for anything else."""
    requires_tenant(connection, _)
    principal: Principal = connection.user
    if principal.has_scope(Scope.MEMBERS_READ):
        return
    body: Any = None
    if isinstance(connection, Request):
        try:
            body = msgspec.json.decode(await connection.body())  # cached for the handler
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
            body = None
    if not (isinstance(body, dict) and body.get("kind") == ReportKind.INDIVIDUAL):
        _requires_hr(principal)


def _requires_hr(principal: Principal) -> None:
    if not principal.has_scope(Scope.MEMBERS_READ):
        raise PermissionDeniedException(
            detail="cohort and effectiveness reports are for HR (members:read)"
        )


async def _may_see(reads: Reads, principal: Principal, kind: str, subject_id: UUID | None) -> None:
    if kind == ReportKind.INDIVIDUAL and subject_id is not None:
        await _may_see_member(reads, principal, subject_id)
    else:
        _requires_hr(principal)


def _matches(if_none_match: str | None, tag: str) -> bool:
    if if_none_match is None:
        return False
    candidates = [c.strip().removeprefix("W/") for c in if_none_match.split(",")]
    return "*" in candidates or tag in candidates


def pdf_answer(
    found: views.ReportFile, report_id: UUID, if_none_match: str | None
) -> Response[bytes]:
    """The download of a report its reader may see: the PDF (or 304 when unchanged), or why
    it cannot be had (withheld after an erasure, superseded, queued or failed)."""
    if found.withheld:
        # The file prints a name that was erased since: it is not handed out any more.
        raise NotFound("it names someone whose personal data was erased; ask for a new report")
    if found.status == "superseded":
        raise HTTPException(
            status_code=410,
            detail="a newer plan's report replaced this one before it was rendered; "
            f"see /v1/members/{found.subject_id}/pdf-reports",
        )
    if found.status != "rendered" or found.pdf is None or found.checksum is None:
        waiting = found.status == "queued"
        raise HTTPException(
            status_code=409,
            detail="the report is still queued; retry shortly"
            if waiting
            else "the report failed; ask for a new one",
            headers={"Retry-After": "2"} if waiting else None,
        )
    tag = f'"{found.checksum}"'
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if _matches(if_none_match, tag):
        return Response(b"", status_code=304, headers=headers, media_type=PDF)
    headers["Content-Disposition"] = f'inline; filename="report-{report_id}.pdf"'
    return Response(bytes(found.pdf), media_type=PDF, headers=headers)


class ReportController(Controller):
    path = "/v1"
    tags = ["Reports"]
    security = [{"bearer": []}]

    @post(
        "/reports",
        guards=[may_request],
        operation_id="requestReport",
        summary="Ask for a PDF report (made in the background)",
        description=f"{ACCESS} Answers 202 with the report's `status_url`; poll it until "
        "`status` is `rendered` (or `failed`), then download `pdf_url`. Send "
        "`Idempotency-Key` to make a retry return the first answer.",
        status_code=202,
    )
    async def request_report(
        self,
        commands: NamedDependency[Commands],
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        data: JSONBody[ReportIn],
    ) -> Response[ReportAccepted]:
        assert principal.tenant_id is not None
        if data.kind is ReportKind.INDIVIDUAL and data.subject_id is not None:
            await _may_see_member(reads, principal, data.subject_id)
        elif data.kind is not ReportKind.INDIVIDUAL:
            _requires_hr(principal)
        command = RequestReport(data.kind, data.subject_id, report_id=uuid4())
        outcome = await commands.run(command)
        requested: ReportRequested = outcome.result
        # The queue row is written beside the views, on the API's pool (the event is stored).
        await views.create_report(
            reads.store.pool,
            principal.tenant_id,
            requested.report_id,
            requested.kind,
            requested.subject_id,
            f"{principal.kind}:{principal.subject}",
            commands.context.request_id,
            command.trigger,
        )
        url = f"/v1/reports/{requested.report_id}"
        body = ReportAccepted(requested.report_id, "queued", url, f"{url}/pdf")
        return answer(outcome, body, status=202, location=url)

    @get(
        "/reports/{report_id:uuid}",
        guards=[requires_tenant],
        operation_id="getReport",
        summary="A report's status: queued, rendered or failed",
        description=f"{ACCESS} A rendered report carries the checksum (SHA-256), size and "
        "page count of its PDF.",
    )
    async def get_report(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        report_id: FromPath[UUID],
    ) -> ReportOut:
        # A re-plan's automatic report is queued by the report trigger.
        await reads.after([MEMBERS.info, REPORT_TRIGGERS.info])
        # The queue row is written after the request's event, and rendered by a worker: read
        # where it is written (a replica replays it later than the position it waits for).
        async with reads.session(primary=True) as conn:
            record = await views.get_report(conn, report_id)
        if record is None:
            raise NotFound(f"report {report_id} not found")
        await _may_see(reads, principal, record.kind, record.subject_id)
        return report_out(record)

    @get(
        "/reports/{report_id:uuid}/pdf",
        guards=[requires_tenant],
        operation_id="downloadReport",
        summary="Download a rendered report",
        description=f"{ACCESS} `ETag` is the quoted SHA-256 of the bytes; send it back in "
        "`If-None-Match` to get 304 when the file is unchanged. A report not rendered yet "
        "answers 409 (queued: retry after a moment; failed: ask for a new one), a superseded "
        "one 410; a report that "
        "prints the name of someone whose personal data was erased since answers 404.",
        media_type=PDF,
    )
    async def download(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        report_id: FromPath[UUID],
        if_none_match: IfNoneMatch = None,
    ) -> Response[bytes]:
        # Withholding after erasure reads the members view: honour read-your-writes.
        await reads.after([MEMBERS.info, REPORT_TRIGGERS.info])
        async with reads.session(primary=True) as conn:
            found = await views.get_pdf(conn, report_id)
        if found is None:
            raise NotFound(f"report {report_id} not found")
        await _may_see(reads, principal, found.kind, found.subject_id)
        return pdf_answer(found, report_id, if_none_match)

    @get(
        "/members/{member_id:uuid}/pdf-reports",
        guards=[requires_tenant],
        operation_id="listMemberPdfReports",
        summary="A member's individual PDF reports, newest first",
        description="Seen by the member, anyone in their manager line and HR (`members:read`). "
        "A report is made automatically after every re-plan of the member's track.",
    )
    async def list_member_reports(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        member_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> ReportPage:
        # The list holds each re-plan's automatic report, queued by the report trigger.
        await _may_see_member(reads, principal, member_id, [REPORT_TRIGGERS.info])
        async with reads.session(primary=True) as conn:
            page = await views.list_member_reports(conn, member_id, limit=limit, cursor=cursor)
        return ReportPage([report_out(r) for r in page.items], page.next_cursor)


ROUTES = [ReportController]
