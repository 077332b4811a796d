"""Training tracks over HTTP: engineers follow theirs; managers and HR see their people's."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, JSONBody

from training.core.access import Scope
from training.core.errors import NotFound
from training.core.http.commands import Commands, answer
from training.core.http.params import Cursor, Limit, text
from training.core.http.principal import Principal, requires_tenant
from training.core.http.reads import Reads
from training.core.pagination import DEFAULT_LIMIT
from training.people import views as people_queries
from training.people.views import MEMBERS
from training.planning.domain.learning import ModuleState
from training.planning.handlers.learning import RecordProgress
from training.planning.views import tracks as queries
from training.planning.views.tracks import TRACKS


class ProgressIn(msgspec.Struct, forbid_unknown_fields=True):
    """A skip needs a reason; it takes the module out of future plans and re-plans."""

    curriculum_id: UUID
    key: Annotated[str, text(max_length=64)]
    state: ModuleState
    reason: Annotated[str, text(min_length=0, max_length=500)] = ""


class ProgressAccepted(msgspec.Struct):
    record_version: int


class PlanHistory(msgspec.Struct):
    items: list[queries.PlanVersionRecord]
    next_cursor: str | None


async def _may_see_track(reads: Reads, principal: Principal, member_id: UUID) -> None:
    """The person, anyone in their manager line, or HR (members:read); someone who is not a
    member of the caller's tenant is not found."""
    async with reads.session() as conn:
        if await people_queries.get_member(conn, member_id) is None:
            raise NotFound(f"member {member_id} not found")
        if principal.is_member(member_id) or principal.has_scope(Scope.MEMBERS_READ):
            return
        manager = principal.member_id
        if manager is not None and await people_queries.reports_to(conn, member_id, manager):
            return
    raise PermissionDeniedException(detail="only the person, their managers and HR see a track")


def _tenant_of(principal: Principal) -> UUID:
    if principal.tenant_id is None:  # the routes' guard refuses these callers first
        raise PermissionDeniedException(detail="this needs a tenant's credentials")
    return principal.tenant_id


class TrackController(Controller):
    path = "/v1"
    tags = ["Tracks"]
    security = [{"bearer": []}]

    @get(
        "/members/{member_id:uuid}/track",
        guards=[requires_tenant],
        operation_id="getTrack",
        summary="A person's training track: ordered modules with reasons and due dates",
        description="Due dates follow from the weekly learning hours; `remaining_gaps` are the "
        "gaps the budget cannot close and `deferred` the modules that would close them. "
        "`cohorts` are the cohorts the person is enrolled in (their curriculum versions are "
        "preferred). While the person is deactivated the track is `frozen` (since "
        "`frozen_since`) and plans nothing until they are reactivated.",
    )
    async def get_track(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        member_id: FromPath[UUID],
    ) -> queries.TrackRecord:
        await reads.after([MEMBERS.info, TRACKS.info])
        await _may_see_track(reads, principal, member_id)
        async with reads.session() as conn:
            track = await queries.get_track(conn, _tenant_of(principal), member_id)
        if track is None:
            raise NotFound(f"no track for member {member_id} yet")
        return track

    @get(
        "/members/{member_id:uuid}/track/history",
        guards=[requires_tenant],
        operation_id="listTrackHistory",
        summary="Every plan of a track and why it changed (added, removed, reordered)",
    )
    async def history(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        member_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> PlanHistory:
        await reads.after([MEMBERS.info, TRACKS.info])
        await _may_see_track(reads, principal, member_id)
        async with reads.session() as conn:
            page = await queries.list_plan_versions(conn, member_id, limit=limit, cursor=cursor)
        return PlanHistory(page.items, page.next_cursor)

    @get(
        "/me/track",
        guards=[requires_tenant],
        operation_id="getMyTrack",
        summary="The signed-in engineer's own track",
    )
    async def my_track(
        self, reads: NamedDependency[Reads], principal: NamedDependency[Principal]
    ) -> queries.TrackRecord:
        if principal.member_id is None:
            raise PermissionDeniedException(detail="this needs a person's sign-in")
        await reads.after([TRACKS.info])
        async with reads.session() as conn:
            track = await queries.get_track(conn, _tenant_of(principal), principal.member_id)
        if track is None:
            raise NotFound(
                "no track yet: it is planned after a review, an assessment or an enrolment"
            )
        return track

    @post(
        "/me/track/progress",
        guards=[requires_tenant],
        operation_id="recordTrackProgress",
        summary="Start, complete or skip a module of your track",
        status_code=200,
    )
    async def progress(
        self, commands: NamedDependency[Commands], data: JSONBody[ProgressIn]
    ) -> Response[ProgressAccepted]:
        outcome = await commands.run(
            RecordProgress(data.curriculum_id, data.key, data.state, data.reason)
        )
        return answer(outcome, ProgressAccepted(outcome.result))


ROUTES = [TrackController]
