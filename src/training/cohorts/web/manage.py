"""A cohort's page for the HR manager, with its people: enrol people picked from a
searchable list of members or by team and role, the waitlist with each person's place,
withdraw, transfer to another cohort, change the capacity, start, complete or cancel.

The pages send the same commands and read the same views as ``/v1/cohorts`` and its
enrolments and transfers, with the same scopes: reading needs ``members:read``, every change
``members:write``. A refused form is shown again with what was entered and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from training.cohorts.handlers.cohorts import (
    CancelCohort,
    ChangeCapacity,
    CompleteCohort,
    StartCohort,
)
from training.cohorts.handlers.enrolments import Enrol, Transfer, Withdraw
from training.cohorts.http.common import READ, WRITE
from training.cohorts.http.enrolments import MAX_ENROL
from training.cohorts.views import cohorts as queries
from training.cohorts.views.projection import COHORTS
from training.cohorts.web.common import (
    COHORT_TYPES,
    FIELD_ADVICE,
    SECTION,
    cohort_of,
    reason_of,
    version_of,
)
from training.cohorts.web.mine import COHORT_STATUS_LABELS
from training.core.access import Scope
from training.core.errors import DomainError, NotFound, StaleVersion
from training.core.http.commands import Commands
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.outcome import Outcome
from training.core.pagination import Page
from training.core.web.i18n import N_, gettext
from training.core.web.pages import Position, after_position, page, shown_at
from training.curricula import views as curricula
from training.people import views as people
from training.people.views import MEMBERS

ROSTER = 200
PLACEMENTS: dict[str, str] = {
    "enrolled": N_("Enrolled"),
    "waitlisted": N_("On the waitlist"),
    "withdrawn": N_("Withdrawn"),
}
NOBODY = N_("Choose at least one person, or a team or role.")
GIVE_REASON = N_("Give a reason of at most 500 characters.")
CHOOSE_TARGET = N_("Choose the cohort to move the person to.")
OPEN = ("planned", "running")
PAGE_SIZE = 25


async def _members(
    reads: Reads, q: str, team: str, role: str, cursor: str | None, limit: int = PAGE_SIZE
) -> Page[people.MemberRecord]:
    async with reads.session() as conn:
        return await people.list_members(
            conn,
            limit=limit,
            cursor=cursor,
            team=team or None,
            role=role or None,
            status="active",
            query=q or None,
        )


async def cohort_page(
    reads: Reads,
    principal: Principal,
    cohort_id: UUID,
    *,
    search: Mapping[str, str] | None = None,
    member_cursor: str | None = None,
    problems: Mapping[str, str] | None = None,
    kept: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    summary = await cohort_of(reads, cohort_id)
    search = dict(search or {"q": "", "team": "", "role": ""})
    async with reads.session() as conn:
        roster = await queries.list_enrolments(conn, cohort_id, limit=ROSTER, cursor=None)
        targets = await queries.list_cohorts(
            conn, limit=ROSTER, cursor=None, status=None, curriculum_id=None
        )
        names = await people.names_of(conn, [r.member_id for r in roster.items])
        curriculum = await curricula.get_curriculum(conn, summary.curriculum_id)
    found = await _members(reads, search["q"], search["team"], search["role"], member_cursor)
    placed = {r.member_id for r in roster.items if r.status != "withdrawn"}
    more = (
        f"/cohorts/{cohort_id}?" + urlencode({**search, "members_cursor": found.next_cursor})
        if found.next_cursor
        else ""
    )
    return page(
        "cohorts/cohort.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        cohort=summary,
        curriculum=curriculum.title if curriculum else str(summary.curriculum_id),
        roster=roster.items,
        names=names,
        more_roster=roster.next_cursor is not None,
        enrolled=[r for r in roster.items if r.status == "enrolled"],
        waiting=[r for r in roster.items if r.status == "waitlisted"],
        withdrawn=[r for r in roster.items if r.status == "withdrawn"],
        members=[m for m in found.items if m.member_id not in placed],
        members_next=more,
        search=search,
        targets=[c for c in targets.items if c.status in OPEN and c.cohort_id != cohort_id],
        statuses=COHORT_STATUS_LABELS,
        placements=PLACEMENTS,
        problems=dict(problems or {}),
        kept=dict(kept or {}),
        may_write=principal.has_scope(Scope.MEMBERS_WRITE),
    )


@get("/cohorts/{cohort_id:uuid}", guards=[READ])
async def cohort(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
    q: Annotated[str | None, QueryParameter(name="q", max_length=100)] = None,
    team: Annotated[str | None, QueryParameter(name="team", max_length=120)] = None,
    role: Annotated[str | None, QueryParameter(name="role", max_length=32)] = None,
    members_cursor: Annotated[
        str | None, QueryParameter(name="members_cursor", max_length=512)
    ] = None,
    at: Position = None,
) -> Template:
    await after_position(reads, [COHORTS.info, MEMBERS.info], at)
    search = {"q": (q or "").strip(), "team": (team or "").strip(), "role": (role or "").strip()}
    return await cohort_page(
        reads, principal, cohort_id, search=search, member_cursor=members_cursor
    )


async def _refused(
    reads: Reads,
    principal: Principal,
    cohort_id: UUID,
    form: str,
    message: str,
    kept: Mapping[str, str] | None = None,
) -> Template:
    return await cohort_page(
        reads,
        principal,
        cohort_id,
        problems={form: message},
        kept=kept,
        status_code=422,
    )


def _back(cohort_id: UUID, outcome: Any, anchor: str = "") -> Response[Any]:
    location = shown_at(f"/cohorts/{cohort_id}", outcome)
    return Redirect(location + (f"#{anchor}" if anchor else ""), status_code=303)


async def _everyone(reads: Reads, team: str, role: str) -> list[UUID]:
    """The active members of a team and/or role, every page of them (up to the API's bulk
    limit)."""
    ids: list[UUID] = []
    cursor: str | None = None
    while len(ids) <= MAX_ENROL:
        found = await _members(reads, "", team, role, cursor, limit=500)
        ids += [m.member_id for m in found.items]
        cursor = found.next_cursor
        if cursor is None:
            break
    return ids


@post("/cohorts/{cohort_id:uuid}/enrolments", guards=[WRITE], status_code=303)
async def enrol(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
) -> Response[Any]:
    """The people ticked, or everyone active in the team and role given: one ``Enrol``, as
    ``enrolMembers`` sends."""
    sent = await request.form()
    ids: list[UUID] = []
    for raw in sent.getall("member_ids", [])[: MAX_ENROL + 1]:
        try:
            ids.append(UUID(str(raw)))
        except ValueError:
            continue
    team = str(sent.get("team", "")).strip()[:120]
    role = str(sent.get("role", "")).strip()[:32]
    if not ids and (team or role):
        await after_position(reads, [MEMBERS.info], None)
        ids = await _everyone(reads, team, role)
    if not ids or len(ids) > MAX_ENROL:
        await cohort_of(reads, cohort_id)
        return await _refused(reads, principal, cohort_id, "enrol", gettext(NOBODY))
    outcome = await _run_on_cohort(
        commands, reads, principal, cohort_id, "enrol", Enrol(cohort_id, tuple(dict.fromkeys(ids)))
    )
    if isinstance(outcome, Template):
        return outcome
    return _back(cohort_id, outcome, "roster")


@post("/cohorts/{cohort_id:uuid}/withdrawals", guards=[WRITE], status_code=303)
async def withdraw(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
) -> Response[Any]:
    sent = await request.form()
    reason = reason_of(sent)
    try:
        member_id = UUID(str(sent.get("member_id", "")))
    except ValueError:
        member_id = None
    if member_id is None or reason is None:
        await cohort_of(reads, cohort_id)
        kept = {"member_id": str(sent.get("member_id", ""))[:64]}
        return await _refused(reads, principal, cohort_id, "withdraw", gettext(GIVE_REASON), kept)
    outcome = await _run_on_cohort(
        commands, reads, principal, cohort_id, "withdraw", Withdraw(cohort_id, member_id, reason)
    )
    if isinstance(outcome, Template):
        return outcome
    return _back(cohort_id, outcome, "roster")


@post("/cohorts/{cohort_id:uuid}/transfers", guards=[WRITE], status_code=303)
async def transfer(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
) -> Response[Any]:
    """``Transfer`` as ``transferMember`` sends it: out of this cohort, into the target."""
    sent = await request.form()
    reason = reason_of(sent)
    try:
        member_id = UUID(str(sent.get("member_id", "")))
        target = UUID(str(sent.get("to_cohort_id", "")))
    except ValueError:
        await cohort_of(reads, cohort_id)
        return await _refused(reads, principal, cohort_id, "transfer", gettext(CHOOSE_TARGET))
    if reason is None:
        await cohort_of(reads, cohort_id)
        return await _refused(reads, principal, cohort_id, "transfer", gettext(GIVE_REASON))
    outcome = await _run_on_cohort(
        commands,
        reads,
        principal,
        cohort_id,
        "transfer",
        Transfer(member_id, cohort_id, target, reason),
    )
    if isinstance(outcome, Template):
        return outcome
    return Redirect(shown_at(f"/cohorts/{target}", outcome), status_code=303)


@post("/cohorts/{cohort_id:uuid}/capacity", guards=[WRITE], status_code=303)
async def change_capacity(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
) -> Response[Any]:
    sent = await request.form()
    raw = str(sent.get("capacity", "")).strip()[:10]
    try:
        capacity = msgspec.convert(raw, COHORT_TYPES["capacity"], strict=False)
    except (msgspec.ValidationError, TypeError):
        await cohort_of(reads, cohort_id)
        message = gettext(FIELD_ADVICE["capacity"])
        return await _refused(reads, principal, cohort_id, "capacity", message, {"capacity": raw})
    outcome = await _run_on_cohort(
        commands,
        reads,
        principal,
        cohort_id,
        "capacity",
        ChangeCapacity(cohort_id, capacity, version_of(sent)),
    )
    if isinstance(outcome, Template):
        return outcome
    return _back(cohort_id, outcome)


async def _run_on_cohort(
    commands: Commands,
    reads: Reads,
    principal: Principal,
    cohort_id: UUID,
    form: str,
    command: Any,
) -> Outcome[Any] | Template:
    """The command's outcome; a rule it breaks is shown on the cohort's page beside ``form``
    (a missing cohort or a stale version are the error pages, as in the API)."""
    try:
        return await commands.run(command)
    except (NotFound, StaleVersion):
        raise
    except DomainError as error:
        return await _refused(reads, principal, cohort_id, form, error.detail)


async def _lifecycle(
    commands: Commands, reads: Reads, principal: Principal, cohort_id: UUID, command: Any
) -> Response[Any]:
    outcome = await _run_on_cohort(commands, reads, principal, cohort_id, "status", command)
    if isinstance(outcome, Template):
        return outcome
    return _back(cohort_id, outcome)


@post("/cohorts/{cohort_id:uuid}/start", guards=[WRITE], status_code=303)
async def start(
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
) -> Response[Any]:
    return await _lifecycle(commands, reads, principal, cohort_id, StartCohort(cohort_id))


@post("/cohorts/{cohort_id:uuid}/complete", guards=[WRITE], status_code=303)
async def complete(
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
) -> Response[Any]:
    return await _lifecycle(commands, reads, principal, cohort_id, CompleteCohort(cohort_id))


@post("/cohorts/{cohort_id:uuid}/cancel", guards=[WRITE], status_code=303)
async def cancel(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
) -> Response[Any]:
    reason = reason_of(await request.form())
    if reason is None:
        await cohort_of(reads, cohort_id)
        return await _refused(reads, principal, cohort_id, "status", gettext(GIVE_REASON))
    return await _lifecycle(commands, reads, principal, cohort_id, CancelCohort(cohort_id, reason))


ROUTES: list[Any] = [
    cohort,
    enrol,
    withdraw,
    transfer,
    change_capacity,
    start,
    complete,
    cancel,
]
