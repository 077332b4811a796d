"""Who is in a cohort, over HTTP: enrol people (in bulk), list a cohort's people and its
waitlist, withdraw one (the first person waiting takes the seat), transfer one between
cohorts, and each engineer's own cohorts."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter

from training.cohorts.handlers.cohorts import CohortSnapshot, EnrolmentOutcome
from training.cohorts.handlers.enrolments import Enrol, Transfer, Withdraw, promoted_by
from training.cohorts.http.common import (
    MAX_REASON,
    READ,
    WRITE,
    CohortOut,
    Reason,
    own_member_id,
)
from training.cohorts.views import cohorts as queries
from training.cohorts.views.projection import COHORTS
from training.core.application import TrainingApplication
from training.core.errors import NotFound
from training.core.http.commands import Commands, answer
from training.core.http.params import NO_NUL, Cursor, Limit
from training.core.http.principal import Principal, requires_tenant
from training.core.http.reads import Reads
from training.core.outcome import Outcome
from training.core.pagination import DEFAULT_LIMIT
from training.people.views import MEMBERS

MAX_ENROL = 5000
MemberIds = Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=MAX_ENROL)]


class EnrolmentIn(msgspec.Struct, forbid_unknown_fields=True):
    member_ids: MemberIds


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    member_id: UUID
    from_cohort_id: UUID
    to_cohort_id: UUID
    reason: Reason


class EnrolmentOut(msgspec.Struct):
    cohort: CohortOut
    enrolled: list[UUID]
    waitlisted: list[UUID]

    @classmethod
    def of(cls, outcome: EnrolmentOutcome) -> EnrolmentOut:
        return cls(CohortOut.of(outcome.cohort), list(outcome.enrolled), list(outcome.waitlisted))


class WithdrawalOut(msgspec.Struct):
    cohort: CohortOut
    withdrawn: UUID
    promoted: Annotated[
        UUID | None,
        msgspec.Meta(description="the first person waiting, who took the freed seat, if any"),
    ]


class EnrolmentPage(msgspec.Struct):
    items: list[queries.EnrolmentRecord]
    next_cursor: str | None


class MyCohortPage(msgspec.Struct):
    items: list[queries.MyCohortRow]
    next_cursor: str | None


def enrolment_answer(outcome: Outcome[EnrolmentOutcome]) -> Response[EnrolmentOut]:
    """Who was seated and who waits, with the target cohort's version as ``ETag``."""
    body = EnrolmentOut.of(outcome.result)
    return answer(outcome, body, version=body.cohort.version)


class EnrolmentController(Controller):
    path = "/v1"
    tags = ["Cohorts"]
    security = [{"bearer": []}]

    @post(
        "/cohorts/{cohort_id:uuid}/enrolments",
        guards=[WRITE],
        operation_id="enrolMembers",
        summary="Enrol people (up to 5,000 at once): seats in order, then the waitlist",
        description="One command and one transaction whatever the number of people. Each "
        "must be an active member of the tenant and in no other open cohort of the same "
        "curriculum; otherwise nobody is enrolled and the problem names the first offending "
        "`member_ids[i]`.",
        status_code=200,
    )
    async def enrol(
        self,
        commands: NamedDependency[Commands],
        cohort_id: FromPath[UUID],
        data: JSONBody[EnrolmentIn],
    ) -> Response[EnrolmentOut]:
        return enrolment_answer(await commands.run(Enrol(cohort_id, tuple(data.member_ids))))

    @get(
        "/cohorts/{cohort_id:uuid}/enrolments",
        guards=[READ],
        operation_id="listEnrolments",
        summary="The people of a cohort, in the order they arrived",
        description="`status=waitlisted` lists the waitlist in order; `waitlist_position` "
        "is each waiting person's place (1 is next).",
    )
    async def list_enrolments(
        self,
        reads: NamedDependency[Reads],
        cohort_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        status: Annotated[
            str | None, QueryParameter(name="status", pattern="^(enrolled|waitlisted|withdrawn)$")
        ] = None,
    ) -> EnrolmentPage:
        await reads.after([COHORTS.info, MEMBERS.info])
        async with reads.session() as conn:
            if await queries.get_cohort(conn, cohort_id) is None:
                raise NotFound(f"cohort {cohort_id} not found")
            page = await queries.list_enrolments(
                conn, cohort_id, limit=limit, cursor=cursor, status=status
            )
        return EnrolmentPage(page.items, page.next_cursor)

    @delete(
        "/cohorts/{cohort_id:uuid}/enrolments/{member_id:uuid}",
        guards=[WRITE],
        operation_id="withdrawMember",
        summary="Withdraw a person; the first person waiting takes the seat",
        status_code=200,
    )
    async def withdraw(
        self,
        commands: NamedDependency[Commands],
        app: NamedDependency[TrainingApplication],
        cohort_id: FromPath[UUID],
        member_id: FromPath[UUID],
        reason: Annotated[
            str | None,
            QueryParameter(
                name="reason",
                min_length=1,
                max_length=MAX_REASON,
                pattern=NO_NUL,
                description="why the person is withdrawn (required)",
            ),
        ] = None,
    ) -> Response[WithdrawalOut]:
        if reason is None:
            raise ValidationException(
                detail="say why the person is withdrawn",
                extra=[{"key": "reason", "message": "required", "source": "query"}],
            )
        outcome: Outcome[CohortSnapshot] = await commands.run(
            Withdraw(cohort_id, member_id, reason)
        )
        snapshot = outcome.result
        promoted = await sync_to_thread(promoted_by, app, cohort_id, snapshot.version)
        body = WithdrawalOut(CohortOut.of(snapshot), member_id, promoted)
        return answer(outcome, body, version=snapshot.version)

    @post(
        "/transfers",
        guards=[WRITE],
        operation_id="transferMember",
        summary="Move a person from one cohort to another, atomically",
        description="Withdraws from `from_cohort_id` and enrols into `to_cohort_id` (a seat "
        "or the waitlist) in one transaction: when the person cannot join the target, they "
        "stay where they were.",
        status_code=200,
    )
    async def transfer(
        self, commands: NamedDependency[Commands], data: JSONBody[TransferIn]
    ) -> Response[EnrolmentOut]:
        command = Transfer(data.member_id, data.from_cohort_id, data.to_cohort_id, data.reason)
        return enrolment_answer(await commands.run(command))

    @get(
        "/me/cohorts",
        guards=[requires_tenant],
        operation_id="listMyCohorts",
        summary="Your cohorts: where you are enrolled or waiting (a member token)",
    )
    async def my_cohorts(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> MyCohortPage:
        member_id = own_member_id(principal)
        await reads.after([COHORTS.info])
        async with reads.session() as conn:
            page = await queries.cohorts_of_member(conn, member_id, limit=limit, cursor=cursor)
        return MyCohortPage(page.items, page.next_cursor)
