"""Members over HTTP: register, search, change, deactivate, erase, export, import."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.concurrency import sync_to_thread
from litestar.exceptions import ClientException, HTTPException, PermissionDeniedException
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import FromPath, JSONBody, QueryParameter

from training.cohorts.views import withdrawal_reasons_of_member
from training.core.access import Role, Scope
from training.core.errors import NotFound
from training.core.http.bodies import unreadable_body
from training.core.http.principal import Principal, requires_scope, requires_tenant
from training.core.http.services import (
    POSITION_HEADER,
    IfMatch,
    Services,
    command_headers,
    etag,
    expected_version,
    principal_of,
    read_after,
    request_id_of,
    run_command,
    services_of,
)
from training.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from training.people import views as queries
from training.people.domain.members import MAX_DISPLAY_NAME, MAX_TEXT
from training.people.handlers import import_jobs
from training.people.handlers.export import export_member
from training.people.handlers.imports import ImportFileError, check_encoding
from training.people.handlers.members import (
    DeactivateMember,
    ErasePersonalData,
    MemberSnapshot,
    ReactivateMember,
    RegisterMember,
    UpdateMember,
)
from training.people.views import MEMBERS
from training.planning.views.learning import learning_notes_of_member
from training.reviews.views import review_texts_of_member

# Text is stored in PostgreSQL, which refuses NUL characters: refuse them at the edge.
NO_NUL = r"^[^\x00]*$"
ExternalId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="The member's key in the tenant's HRIS or identity provider. It is kept in "
        "the member's history, which erasure cannot change, so it may not contain '@' "
        "(an email address is refused with 422 naming this field).",
    ),
]
DisplayName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_DISPLAY_NAME, pattern=NO_NUL)
]
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")
]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT, pattern=NO_NUL)]
Roles = Annotated[list[Role], msgspec.Meta(min_length=1, max_length=len(Role))]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=NO_NUL)]
Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, QueryParameter(name="cursor", max_length=512)]
MAX_IMPORT_BYTES = 20 * 1024 * 1024


class MemberIn(msgspec.Struct, forbid_unknown_fields=True):
    external_id: ExternalId
    display_name: DisplayName
    roles: Roles
    email: Email | None = None
    manager_id: UUID | None = None
    team: Text | None = None
    job_title: Text | None = None


class MemberPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Send only what changes. ``manager_id: null`` removes the manager."""

    display_name: DisplayName | None = None
    email: Email | None = None
    roles: Roles | None = None
    manager_id: UUID | msgspec.UnsetType | None = msgspec.UNSET
    team: Text | None = None
    job_title: Text | None = None


class DeactivationIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class ReactivationIn(msgspec.Struct, forbid_unknown_fields=True):
    pass


class MemberOut(msgspec.Struct):
    member_id: UUID
    external_id: str
    roles: list[str]
    manager_id: UUID | None
    team: str | None
    job_title: str | None
    status: str
    erased: bool
    version: int


class MemberPage(msgspec.Struct):
    items: list[queries.MemberRecord]
    next_cursor: str | None


class ReportPage(msgspec.Struct):
    items: list[queries.ReportRecord]
    next_cursor: str | None


class ImportAccepted(msgspec.Struct):
    import_id: UUID
    status: str
    status_url: str


class ImportPage(msgspec.Struct):
    items: list[import_jobs.ImportRecord]
    next_cursor: str | None


def _out(snapshot: MemberSnapshot) -> MemberOut:
    return MemberOut(
        snapshot.member_id,
        snapshot.external_id,
        [str(r) for r in snapshot.roles],
        snapshot.manager_id,
        snapshot.team,
        snapshot.job_title,
        snapshot.status,
        snapshot.erased,
        snapshot.version,
    )


async def names_held(services: Services, tenant_id: UUID, member_id: UUID) -> list[str]:
    """The member's stored name and email, read before an erasure to find what names them."""
    async with services.store.session(tenant_id) as conn:
        personal = await queries.personal_data_of(conn, member_id)
    if personal is None:
        return []
    return [str(v) for v in (personal["display_name"], personal["email"]) if v]


async def forget_stored_responses(services: Services, tenant_id: UUID, names: list[str]) -> None:
    """After an erasure: stored responses of idempotent requests that name the person go
    (everything else that names them went in the erasure's own transaction)."""
    if names:
        await services.idempotency.forget_mentions(tenant_id, names)


def _may_read_member(principal: Principal, member_id: UUID) -> None:
    """People with members:read see everyone; a person always sees themselves."""
    if not (principal.has_scope(Scope.MEMBERS_READ) or principal.is_member(member_id)):
        raise PermissionDeniedException(detail="this needs the scope 'members:read'")


class MemberController(Controller):
    path = "/v1/members"
    tags = ["Members"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="registerMember",
        summary="Register a member (takes a seat)",
        status_code=201,
    )
    async def register(
        self, request: Request[Any, Any, Any], data: JSONBody[MemberIn]
    ) -> Response[MemberOut]:
        command = RegisterMember(
            data.external_id,
            data.display_name,
            data.email,
            tuple(data.roles),
            data.manager_id,
            data.team,
            data.job_title,
        )
        outcome = await run_command(request, command)
        body = _out(outcome.result)
        headers = command_headers(outcome, version=body.version)
        headers["Location"] = f"/v1/members/{body.member_id}"
        return Response(body, status_code=201, headers=headers)

    @get(
        "/",
        guards=[requires_scope(Scope.MEMBERS_READ)],
        operation_id="listMembers",
        summary="List and search members",
        description="Filters combine with AND. `q` matches the start of the name, email or "
        "external id. Ordered by external id.",
    )
    async def list_members(
        self,
        request: Request[Any, Any, Any],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        team: Annotated[str | None, QueryParameter(name="team", max_length=MAX_TEXT)] = None,
        role: Annotated[Role | None, QueryParameter(name="role")] = None,
        manager_id: Annotated[UUID | None, QueryParameter(name="manager_id")] = None,
        status: Annotated[
            str | None, QueryParameter(name="status", pattern="^(active|deactivated)$")
        ] = None,
        q: Annotated[str | None, QueryParameter(name="q", min_length=1, max_length=100)] = None,
    ) -> MemberPage:
        await read_after(request, [MEMBERS.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            page = await queries.list_members(
                conn,
                limit=limit,
                cursor=cursor,
                team=team,
                role=str(role) if role else None,
                manager_id=manager_id,
                status=status,
                query=q,
            )
        return MemberPage(page.items, page.next_cursor)

    @get(
        "/{member_id:uuid}",
        guards=[requires_tenant],
        operation_id="getMember",
        summary="Read a member",
    )
    async def get_member(
        self, request: Request[Any, Any, Any], member_id: FromPath[UUID]
    ) -> Response[queries.MemberRecord]:
        principal = principal_of(request)
        _may_read_member(principal, member_id)
        await read_after(request, [MEMBERS.info])
        async with services_of(request).store.session(principal.tenant_id) as conn:
            record = await queries.get_member(conn, member_id)
        if record is None:
            raise NotFound(f"member {member_id} not found")
        return Response(record, headers={"ETag": etag(record.version)})

    @patch(
        "/{member_id:uuid}",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="updateMember",
        summary="Change a member's roles, manager, position or contact",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[UUID],
        data: JSONBody[MemberPatch],
        if_match: IfMatch = None,
    ) -> Response[MemberOut]:
        manager = data.manager_id
        command = UpdateMember(
            member_id,
            display_name=data.display_name,
            email=data.email,
            roles=tuple(data.roles) if data.roles is not None else None,
            manager_id=manager if isinstance(manager, UUID) else None,
            clear_manager=manager is None,
            team=data.team,
            job_title=data.job_title,
            expected_version=expected_version(if_match),
        )
        outcome = await run_command(request, command)
        body = _out(outcome.result)
        return Response(body, headers=command_headers(outcome, version=body.version))

    @post(
        "/{member_id:uuid}/deactivate",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="deactivateMember",
        summary="Deactivate a member (frees a seat)",
        status_code=200,
    )
    async def deactivate(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[UUID],
        data: JSONBody[DeactivationIn],
        if_match: IfMatch = None,
    ) -> Response[MemberOut]:
        outcome = await run_command(
            request, DeactivateMember(member_id, data.reason, expected_version(if_match))
        )
        body = _out(outcome.result)
        return Response(body, headers=command_headers(outcome, version=body.version))

    @post(
        "/{member_id:uuid}/reactivate",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="reactivateMember",
        summary="Reactivate a member (takes a seat)",
        status_code=200,
    )
    async def reactivate(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[UUID],
        data: JSONBody[ReactivationIn],
        if_match: IfMatch = None,
    ) -> Response[MemberOut]:
        outcome = await run_command(
            request, ReactivateMember(member_id, expected_version(if_match))
        )
        body = _out(outcome.result)
        return Response(body, headers=command_headers(outcome, version=body.version))

    @get(
        "/{member_id:uuid}/reports",
        guards=[requires_tenant],
        operation_id="listReports",
        summary="A manager's direct and indirect reports",
        description="`depth=1` are direct reports. `direct=true` returns only those.",
    )
    async def reports(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        direct: Annotated[bool, QueryParameter(name="direct")] = False,
    ) -> ReportPage:
        principal = principal_of(request)
        _may_read_member(principal, member_id)
        await read_after(request, [MEMBERS.info])
        async with services_of(request).store.session(principal.tenant_id) as conn:
            if await queries.get_member(conn, member_id) is None:
                raise NotFound(f"member {member_id} not found")
            page = await queries.list_reports(
                conn, member_id, direct_only=direct, limit=limit, cursor=cursor
            )
        return ReportPage(page.items, page.next_cursor)

    @delete(
        "/{member_id:uuid}/personal-data",
        guards=[requires_scope(Scope.PERSONAL_DATA)],
        operation_id="erasePersonalData",
        summary="Erase a member's name and email; history stays, shown as erased",
        description="Deletes everything held about the person beside the events (name, email, "
        "identity provider subject, free text of their reviews, deactivation, progress notes "
        "and withdrawals from cohorts) and every "
        "stored artefact naming them: their individual reports, the files of cohort reports "
        "printing their name (rendered again with '(erased)'), import files and stored "
        "responses mentioning them; their name and email are redacted from free text about "
        "others. Search by name or email no longer finds them.",
        status_code=200,
    )
    async def erase(
        self, request: Request[Any, Any, Any], member_id: FromPath[UUID]
    ) -> Response[MemberOut]:
        services = services_of(request)
        tenant_id = principal_of(request).tenant_id
        # Without a tenant the command refuses (403) before anything is erased.
        names = await names_held(services, tenant_id, member_id) if tenant_id else []
        outcome = await run_command(request, ErasePersonalData(member_id))
        if tenant_id:
            await forget_stored_responses(services, tenant_id, names)
        body = _out(outcome.result)
        return Response(body, headers=command_headers(outcome, version=body.version))

    @get(
        "/{member_id:uuid}/export",
        guards=[requires_scope(Scope.PERSONAL_DATA)],
        operation_id="exportMember",
        summary="Everything held about one member, as JSON",
    )
    async def export(
        self, request: Request[Any, Any, Any], member_id: FromPath[UUID]
    ) -> Response[dict[str, Any]]:
        principal = principal_of(request)
        services = services_of(request)
        assert principal.tenant_id is not None
        history = await sync_to_thread(export_member, services.app, principal.tenant_id, member_id)
        await read_after(request, [MEMBERS.info])
        async with services.store.session(principal.tenant_id) as conn:
            record = await queries.get_member(conn, member_id)
            personal = await queries.personal_data_of(conn, member_id)
            texts = await review_texts_of_member(conn, member_id)
            notes = await learning_notes_of_member(conn, member_id)
            withdrawals = await withdrawal_reasons_of_member(conn, member_id)
        document = {
            "member_id": str(member_id),
            "exported_at": datetime.now().astimezone().isoformat(),
            "personal_data": personal,
            "review_texts": texts,
            "learning_notes": notes,
            "withdrawal_reasons": withdrawals,
            "profile": msgspec.to_builtins(record) if record else None,
            "history": history,
        }
        return Response(
            document,
            headers={
                "Content-Disposition": f'attachment; filename="member-{member_id}.json"',
                "Cache-Control": "no-store",
            },
        )


@dataclass
class AnswersImportPosition(Operation):
    """``getImport`` in the OpenAPI document: a completed import answers its position."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.headers = {
                **(ok.headers or {}),
                POSITION_HEADER: OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
                    description="A completed import's `position`: send it with a query to read "
                    "the members the import wrote.",
                ),
            }


class ImportController(Controller):
    path = "/v1/member-imports"
    tags = ["Members"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="importMembers",
        summary="Import members from CSV or JSON (runs as a job)",
        status_code=202,
        description=(
            "Send `text/csv` (header row: external_id, display_name, email, roles, "
            "manager_external_id, team, job_title; roles separated by `;`) or "
            '`application/json` (`{"members": [...]}`), in UTF-8 (anything else is a 400). '
            "Valid rows are imported, invalid rows are reported with their row number, field "
            "and message (partial import): in CSV the header is row 1 and the first member "
            "row 2, as a spreadsheet counts; in JSON the first member is row 1. Poll the job's "
            "`status_url` for progress; once it is completed, its `position` reads the "
            "imported members."
        ),
    )
    async def submit(self, request: Request[Any, Any, Any]) -> Response[ImportAccepted]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        formats = {"text/csv": "csv", "application/csv": "csv", "application/json": "json"}
        if content_type not in formats:
            raise HTTPException(status_code=415, detail="send text/csv or application/json")
        content = await request.body()
        if len(content) > MAX_IMPORT_BYTES:
            limit = MAX_IMPORT_BYTES // (1024 * 1024)
            raise HTTPException(status_code=413, detail=f"an upload has at most {limit} MiB")
        if not content.strip():
            raise ClientException(detail="the upload is empty")
        try:
            check_encoding(content, formats[content_type])
        except ImportFileError as error:
            raise unreadable_body(str(error)) from None
        principal = principal_of(request)
        assert principal.tenant_id is not None
        services = services_of(request)
        import_id = await sync_to_thread(
            services.imports.create,
            principal.tenant_id,
            formats[content_type],
            content,
            f"{principal.kind}:{principal.subject}",
            request_id_of(request),
        )
        services.import_runner.submit(principal.tenant_id, import_id)
        url = f"/v1/member-imports/{import_id}"
        return Response(
            ImportAccepted(import_id, "queued", url), status_code=202, headers={"Location": url}
        )

    @get(
        "/",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="listImports",
        summary="Recent imports, newest first",
    )
    async def list_imports(
        self, request: Request[Any, Any, Any], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> ImportPage:
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            page = await import_jobs.list_imports(conn, limit=limit, cursor=cursor)
        return ImportPage(page.items, page.next_cursor)

    @get(
        "/{import_id:uuid}",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="getImport",
        summary="An import's progress and its report of bad rows",
        operation_class=AnswersImportPosition,
    )
    async def get_import(
        self, request: Request[Any, Any, Any], import_id: FromPath[UUID]
    ) -> Response[import_jobs.ImportRecord]:
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            record = await import_jobs.get_import(conn, import_id)
        if record is None:
            raise NotFound(f"import {import_id} not found")
        headers = {}
        if record.status == "completed" and record.position is not None:
            headers[POSITION_HEADER] = str(record.position)
        return Response(record, headers=headers)


ROUTES = [MemberController, ImportController]
