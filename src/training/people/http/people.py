"""Members over HTTP: register, search, change, deactivate and reactivate; reporting lines.

The module is named for the resource the API published first ("people"): two bodies share a
name with another context's, and published clients know them by it (``people_ReportPage``).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, JSONBody, QueryParameter

from training.core.access import Role, Scope
from training.core.errors import NotFound
from training.core.http.commands import Commands, answer
from training.core.http.params import (
    NO_NUL,
    Cursor,
    IfMatch,
    Limit,
    etag,
    expected_version,
    text,
)
from training.core.http.principal import Principal, requires_scope, requires_tenant
from training.core.http.reads import Reads
from training.core.pagination import DEFAULT_LIMIT
from training.people import views as queries
from training.people.domain.members import MAX_DISPLAY_NAME, MAX_TEXT
from training.people.handlers.members import (
    DeactivateMember,
    MemberSnapshot,
    ReactivateMember,
    RegisterMember,
    UpdateMember,
)
from training.people.views import MEMBERS

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
DisplayName = Annotated[str, text(max_length=MAX_DISPLAY_NAME)]
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")
]
# May be empty: an empty team or job title is none.
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT, pattern=NO_NUL)]
Roles = Annotated[list[Role], msgspec.Meta(min_length=1, max_length=len(Role))]
Reason = Annotated[str, text(max_length=500)]


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


def member_out(snapshot: MemberSnapshot) -> MemberOut:
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
        self, commands: NamedDependency[Commands], data: JSONBody[MemberIn]
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
        outcome = await commands.run(command)
        body = member_out(outcome.result)
        location = f"/v1/members/{body.member_id}"
        return answer(outcome, body, status=201, version=body.version, location=location)

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
        reads: NamedDependency[Reads],
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
        await reads.after([MEMBERS.info])
        async with reads.session() as conn:
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
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        member_id: FromPath[UUID],
    ) -> Response[queries.MemberRecord]:
        _may_read_member(principal, member_id)
        await reads.after([MEMBERS.info])
        async with reads.session() as conn:
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
        commands: NamedDependency[Commands],
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
        outcome = await commands.run(command)
        body = member_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @post(
        "/{member_id:uuid}/deactivate",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="deactivateMember",
        summary="Deactivate a member (frees a seat)",
        status_code=200,
    )
    async def deactivate(
        self,
        commands: NamedDependency[Commands],
        member_id: FromPath[UUID],
        data: JSONBody[DeactivationIn],
        if_match: IfMatch = None,
    ) -> Response[MemberOut]:
        outcome = await commands.run(
            DeactivateMember(member_id, data.reason, expected_version(if_match))
        )
        body = member_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @post(
        "/{member_id:uuid}/reactivate",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="reactivateMember",
        summary="Reactivate a member (takes a seat)",
        status_code=200,
    )
    async def reactivate(
        self,
        commands: NamedDependency[Commands],
        member_id: FromPath[UUID],
        data: JSONBody[ReactivationIn],
        if_match: IfMatch = None,
    ) -> Response[MemberOut]:
        outcome = await commands.run(ReactivateMember(member_id, expected_version(if_match)))
        body = member_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @get(
        "/{member_id:uuid}/reports",
        guards=[requires_tenant],
        operation_id="listReports",
        summary="A manager's direct and indirect reports",
        description="`depth=1` are direct reports. `direct=true` returns only those.",
    )
    async def reports(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        member_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        direct: Annotated[bool, QueryParameter(name="direct")] = False,
    ) -> ReportPage:
        _may_read_member(principal, member_id)
        await reads.after([MEMBERS.info])
        async with reads.session() as conn:
            if await queries.get_member(conn, member_id) is None:
                raise NotFound(f"member {member_id} not found")
            page = await queries.list_reports(
                conn, member_id, direct_only=direct, limit=limit, cursor=cursor
            )
        return ReportPage(page.items, page.next_cursor)


ROUTES = [MemberController]
