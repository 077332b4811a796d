"""Adaptive tests over HTTP: an engineer starts, answers and abandons attempts with their own
(member) token, one item at a time and never its answer key, and reads their history."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, JSONBody

from training.assessments import views
from training.assessments.domain.attempts import Result
from training.assessments.domain.items import Option
from training.assessments.domain.scoring import percentile_rank
from training.assessments.handlers.attempts import (
    AbandonAttempt,
    AnswerItem,
    AttemptState,
    BatteryOutcome,
    StartAssessment,
    StartBattery,
    read_attempt,
)
from training.assessments.http.common import OptionOut, SkillCode, SkillQuery, tenant_of
from training.assessments.views import ASSESSMENTS
from training.core.application import TrainingApplication
from training.core.errors import NotFound, RuleViolated
from training.core.http.commands import Commands, answer
from training.core.http.params import NO_NUL, Cursor, Limit, etag, text
from training.core.http.principal import Principal, requires_tenant
from training.core.http.reads import Reads
from training.core.pagination import DEFAULT_LIMIT

AnyItemId = Annotated[str, text(max_length=128)]
AnyOptionId = Annotated[str, text(max_length=64)]
Reason = Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL)]

ATTEMPT_RULES = (
    "The test is adaptive: each item is chosen for the current ability estimate (maximum "
    "information, drawn among the 5 best to spread exposure), every answer updates the EAP "
    "estimate under the 2PL model, and the test stops once the standard error is at most "
    "0.43 logit (the precision standard is 0.45) after at least 8 items, or after 25 items. "
    "An answer after the item's deadline counts as wrong. Items never carry their answer key."
)


class StartIn(msgspec.Struct, forbid_unknown_fields=True):
    skill: SkillCode


class BatteryIn(msgspec.Struct, forbid_unknown_fields=True):
    role_profile_key: SkillCode


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    item_id: AnyItemId
    answer: Annotated[
        list[AnyOptionId],
        msgspec.Meta(
            max_length=20,
            description="the chosen option ids; for an ordering item, all of them in order. "
            "An empty list gives the item up (it counts as wrong).",
        ),
    ]


class AbandonIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason = ""


class ItemOut(msgspec.Struct, kw_only=True):
    """The item to answer now: its question and options, never its key."""

    item_id: str
    kind: str
    stem: str
    code: str | None
    options: list[OptionOut]
    time_limit_seconds: int
    position: Annotated[int, msgspec.Meta(description="1 for the first item of the attempt")]
    deadline: Annotated[
        datetime,
        msgspec.Meta(description="an answer after this counts as wrong"),
    ]


class ResultOut(msgspec.Struct, kw_only=True):
    theta: Annotated[float, msgspec.Meta(description="ability estimate (EAP), logits")]
    se: Annotated[float, msgspec.Meta(description="standard error of theta, logits")]
    level: Annotated[int, msgspec.Meta(description="1-7, from the cut scores on theta")]
    items: int
    parameter_version: Annotated[
        int, msgspec.Meta(description="item-parameter version of this scoring (0: shipped)")
    ]


class AttemptOut(msgspec.Struct, kw_only=True):
    attempt_id: UUID
    skill: str
    status: str
    answered: int
    item: ItemOut | None
    result: Annotated[
        ResultOut | None, msgspec.Meta(description="the original result, once completed")
    ]
    rescored: Annotated[
        list[ResultOut],
        msgspec.Meta(description="later scorings of the same responses under newer parameters"),
    ]
    percentile: Annotated[
        float | None,
        msgspec.Meta(
            description="0-100: where the latest scoring of this attempt stands among the "
            "latest completed results of every other member of the tenant on this skill "
            "(mid-rank: below + half of the ties); null before completion or when nobody "
            "else has a result"
        ),
    ]
    version: int


class SkippedOut(msgspec.Struct):
    skill: str
    reason: str


class BatteryOut(msgspec.Struct):
    started: list[AttemptOut]
    skipped: list[SkippedOut]


class HistoryPage(msgspec.Struct):
    items: list[views.AttemptRecord]
    next_cursor: str | None


def own_member_id(principal: Principal) -> UUID:
    member_id = principal.member_id
    if member_id is None:
        raise PermissionDeniedException(
            detail="assessments are taken by the engineer: use the member's own token"
        )
    return member_id


def shuffled_options(attempt_id: UUID, item_id: str, options: Sequence[Option]) -> list[OptionOut]:
    """The options in an order of their own per attempt and item, the same on every read.

    The bank lists an ordering item's options in the right order and authors tend to put
    the key first; showing them as stored would give the answer away.
    """

    def rank(option: Option) -> bytes:
        return hashlib.sha256(f"{attempt_id}/{item_id}/{option.id}".encode()).digest()

    return [OptionOut(o.id, o.text) for o in sorted(options, key=rank)]


def result_out(result: Result) -> ResultOut:
    return ResultOut(
        theta=result.theta,
        se=result.se,
        level=result.level,
        items=result.items,
        parameter_version=result.parameter_version,
    )


def attempt_out(
    state: AttemptState, rescored: Sequence[Result] = (), percentile: float | None = None
) -> AttemptOut:
    item = None
    if state.item is not None:
        view = state.item
        item = ItemOut(
            item_id=view.item_id,
            kind=view.kind,
            stem=view.stem,
            code=view.code,
            options=shuffled_options(state.attempt_id, view.item_id, view.options),
            time_limit_seconds=view.time_limit_seconds,
            position=view.position,
            deadline=view.deadline,
        )
    return AttemptOut(
        attempt_id=state.attempt_id,
        skill=state.skill,
        status=state.status,
        answered=state.answered,
        item=item,
        result=result_out(state.result) if state.result else None,
        rescored=[result_out(r) for r in rescored],
        percentile=percentile,
        version=state.version,
    )


async def ranked_attempt_out(
    reads: Reads, state: AttemptState, member_id: UUID, rescored: Sequence[Result] = ()
) -> AttemptOut:
    """The attempt with, once completed, the percentile of its latest scoring among the
    latest results of the tenant's other members on the skill."""
    percentile = None
    if state.result is not None:
        latest = rescored[-1] if rescored else state.result
        async with reads.session() as conn:
            others = await views.others_latest_thetas(conn, state.skill, member_id)
        percentile = round(percentile_rank(latest.theta, others), 1) if others else None
    return attempt_out(state, rescored, percentile)


class AssessmentController(Controller):
    path = "/v1/assessments"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_tenant],
        operation_id="startAssessment",
        summary="Start an adaptive test of one skill (your own member token)",
        description=ATTEMPT_RULES + " One attempt per skill at a time; a retake waits for "
        "the tenant's cool-down (`retake_cooldown_days` of the training policy) after the "
        "last completed one. Answers with the first item.",
        status_code=201,
    )
    async def start(
        self, commands: NamedDependency[Commands], data: JSONBody[StartIn]
    ) -> Response[AttemptOut]:
        outcome = await commands.run(StartAssessment(data.skill))
        state: AttemptState = outcome.result
        location = f"/v1/assessments/{state.attempt_id}"
        return answer(
            outcome, attempt_out(state), status=201, version=state.version, location=location
        )

    @get(
        "/{attempt_id:uuid}",
        guards=[requires_tenant],
        operation_id="getAssessment",
        summary="One of your attempts: the current item, or the result",
        description="Only your own attempts (a member token). `result` is the original "
        "result; `rescored` holds later scorings of the same responses under recalibrated "
        "item parameters.",
    )
    async def get_attempt(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        app: NamedDependency[TrainingApplication],
        attempt_id: FromPath[UUID],
    ) -> Response[AttemptOut]:
        member_id = own_member_id(principal)
        state, rescored = await sync_to_thread(
            read_attempt, app, tenant_of(principal), member_id, attempt_id
        )
        await reads.after([ASSESSMENTS.info])
        body = await ranked_attempt_out(reads, state, member_id, rescored)
        return Response(body, headers={"ETag": etag(state.version)})

    @post(
        "/{attempt_id:uuid}/answers",
        guards=[requires_tenant],
        operation_id="answerItem",
        summary="Answer the current item; answers with the next item or the result",
        description="Idempotent: answering an item already answered changes nothing and "
        "answers with the attempt as it is. An `item_id` other than the current item is "
        "refused (422). An attempt left more than 10 minutes past its item's deadline is "
        "closed as timed out.",
        status_code=200,
    )
    async def answer_item(
        self,
        commands: NamedDependency[Commands],
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        attempt_id: FromPath[UUID],
        data: JSONBody[AnswerIn],
    ) -> Response[AttemptOut]:
        member_id = own_member_id(principal)
        outcome = await commands.run(AnswerItem(attempt_id, data.item_id, tuple(data.answer)))
        state: AttemptState = outcome.result
        body = await ranked_attempt_out(reads, state, member_id)
        return answer(outcome, body, version=state.version)

    @post(
        "/{attempt_id:uuid}/abandon",
        guards=[requires_tenant],
        operation_id="abandonAssessment",
        summary="Give up an attempt in progress (no result; no cool-down)",
        description="The body, with an optional `reason`, may be left out.",
        status_code=200,
    )
    async def abandon(
        self,
        commands: NamedDependency[Commands],
        principal: NamedDependency[Principal],
        attempt_id: FromPath[UUID],
        data: JSONBody[AbandonIn | None] = None,
    ) -> Response[AttemptOut]:
        own_member_id(principal)
        reason = data.reason if data is not None else ""
        outcome = await commands.run(AbandonAttempt(attempt_id, reason))
        state: AttemptState = outcome.result
        return answer(outcome, attempt_out(state), version=state.version)


class BatteryController(Controller):
    path = "/v1/assessment-batteries"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_tenant],
        operation_id="startBattery",
        summary="Start one attempt for each skill of a role profile (your own member token)",
        description="Skills without items, in progress or in their cool-down are listed in "
        "`skipped` with the reason; when none can start the request is refused (422).",
        status_code=201,
    )
    async def start(
        self, commands: NamedDependency[Commands], data: JSONBody[BatteryIn]
    ) -> Response[BatteryOut]:
        try:
            outcome = await commands.run(StartBattery(data.role_profile_key))
        except NotFound:
            raise RuleViolated(
                f"no role profile {data.role_profile_key!r}", field="role_profile_key"
            ) from None
        battery: BatteryOutcome = outcome.result
        body = BatteryOut(
            [attempt_out(state) for state in battery.started],
            [SkippedOut(skill, reason) for skill, reason in battery.skipped],
        )
        return answer(outcome, body, status=201)


class MyAssessmentsController(Controller):
    path = "/v1/me/assessments"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @get(
        "/",
        guards=[requires_tenant],
        operation_id="listMyAssessments",
        summary="Your attempts, newest first (a member token)",
        description="`theta`, `se` and `level` are each completed attempt's original result.",
    )
    async def history(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        skill: SkillQuery = None,
    ) -> HistoryPage:
        member_id = own_member_id(principal)
        await reads.after([ASSESSMENTS.info])
        async with reads.session() as conn:
            page = await views.attempts_of_member(
                conn, member_id, limit=limit, cursor=cursor, skill=skill
            )
        return HistoryPage(page.items, page.next_cursor)
