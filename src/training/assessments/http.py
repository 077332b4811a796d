"""Assessments over HTTP: adaptive tests, skill profiles, group views, items and calibration.

An engineer takes adaptive tests with their own (member) token: one item at a time, never
its answer key. HR and managers see results (levels and standard errors), never item
responses. Group views hide every skill fewer than ``MIN_GROUP`` people have a result for.
Authors (``skills:write``) write the tenant's private items, with their keys, and run the
calibration that re-estimates item difficulties from the recorded responses and rescores
completed attempts, keeping each original result beside the new ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.concurrency import sync_to_thread
from litestar.exceptions import PermissionDeniedException, ValidationException
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from training.assessments import views as queries
from training.assessments.domain.attempts import AssessmentAttempt, Result
from training.assessments.domain.evidence import EvidenceKind
from training.assessments.domain.items import Item, ItemKind, Option
from training.assessments.domain.profile import Measurement, combine, evidence_measurement
from training.assessments.domain.scoring import (
    ItemParameters,
    calibrate_difficulties,
    percentile_rank,
)
from training.assessments.handlers import calibration as calibration_queries
from training.assessments.handlers.attempts import (
    AbandonAttempt,
    AnswerItem,
    AttemptState,
    BatteryOutcome,
    RescoreAttempt,
    StartAssessment,
    StartBattery,
    state_of,
)
from training.assessments.handlers.bank import bank_for, calibration, tenant_bank
from training.assessments.handlers.calibration import PublishParameters
from training.assessments.handlers.evidence import RecordEvidence
from training.assessments.handlers.items import AddItem, ReviseItem
from training.assessments.queries import starter_bank
from training.assessments.views import ASSESSMENTS
from training.cohorts.views import cohorts as cohort_queries
from training.cohorts.views.projection import COHORTS
from training.core.access import Scope
from training.core.application import TrainingApplication
from training.core.bus import CommandBus, Outcome, UnitOfWork
from training.core.context import CommandContext
from training.core.errors import InvalidTransition, NotFound, RuleViolated
from training.core.http.principal import Principal, requires_scope, requires_tenant
from training.core.http.services import (
    command_headers,
    principal_of,
    read_after,
    request_id_of,
    run_command,
    services_of,
)
from training.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, TEXT, page_after
from training.people import views as people_queries
from training.people.views import MEMBERS

# k-anonymity of group views: a skill is shown only when this many people have a result.
MIN_GROUP = 5
SUPPRESSED_REASON = f"fewer than {MIN_GROUP} people"
RESCORE_BATCH = 200
# Profiles are asked for as of a calendar day; outside these years a date is a typing error.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2199

# Text is stored in PostgreSQL, which refuses NUL characters: refuse them at the edge.
NO_NUL = r"^[^\x00]*$"
SkillCode = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"),
]
ItemId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$",
        description="letters, digits, '.', '_' and '-'; unique across the starter bank and "
        "the tenant's items",
    ),
]
OptionId = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
AnyItemId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=NO_NUL)]
AnyOptionId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=NO_NUL)]
Level = Annotated[int, msgspec.Meta(ge=1, le=7)]
Note = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=NO_NUL)]
Link = Annotated[
    str,
    msgspec.Meta(max_length=2008, pattern=r"^https://[^\s\x00]{3,2000}$", description="https"),
]
Stem = Annotated[str, msgspec.Meta(min_length=1, max_length=4000, pattern=NO_NUL)]
CodeText = Annotated[str, msgspec.Meta(max_length=20_000, pattern=NO_NUL)]
OptionText = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=NO_NUL)]
Reason = Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL)]
Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None,
    QueryParameter(name="cursor", max_length=512, description="next_cursor of the previous page"),
]
SkillQuery = Annotated[
    str | None,
    QueryParameter(name="skill", max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"),
]
# Path parameters are checked by their PathParameter; a msgspec.Meta here would be ignored.
PathItemId = Annotated[str, PathParameter(max_length=128)]
VersionPath = Annotated[
    str, PathParameter(pattern=r"^[0-9]{1,9}$", description="a published parameter version")
]

# -- bodies ----------------------------------------------------------------------------------


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


class EvidenceIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: EvidenceKind
    skill: SkillCode
    observed_level: Level
    note: Note
    link: Link | None = None


class OptionIn(msgspec.Struct, forbid_unknown_fields=True):
    id: OptionId
    text: OptionText


Options = Annotated[list[OptionIn], msgspec.Meta(min_length=2, max_length=12)]
Key = Annotated[list[OptionId], msgspec.Meta(min_length=1, max_length=12)]
TimeLimit = Annotated[int, msgspec.Meta(ge=15, le=900, description="seconds")]


class ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    item_id: ItemId
    skill: SkillCode
    kind: ItemKind
    stem: Stem
    options: Options
    answer: Key
    time_limit_seconds: TimeLimit
    difficulty: Annotated[float, msgspec.Meta(ge=-4.0, le=4.0, description="2PL b, logits")]
    discrimination: Annotated[float, msgspec.Meta(gt=0.0, le=4.0, description="2PL a")] = 1.0
    code: CodeText | None = None


class ItemRevisionIn(msgspec.Struct, forbid_unknown_fields=True):
    """The item's new content; its skill and parameters stay."""

    kind: ItemKind
    stem: Stem
    options: Options
    answer: Key
    time_limit_seconds: TimeLimit
    code: CodeText | None = None


# -- answers ---------------------------------------------------------------------------------


class OptionOut(msgspec.Struct):
    id: str
    text: str


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
    items: list[queries.AttemptRecord]
    next_cursor: str | None


class EvidenceOut(msgspec.Struct, kw_only=True):
    evidence_id: UUID
    member_id: UUID
    kind: str
    skill: str
    observed_level: int
    link: str | None
    note: str


class SourceOut(msgspec.Struct, kw_only=True):
    kind: Annotated[str, msgspec.Meta(description="assessment, code_review or project_review")]
    id: UUID
    level: int
    se: Annotated[float, msgspec.Meta(description="the source's standard error: its weight")]
    recorded_at: datetime


class SkillLevelOut(msgspec.Struct, kw_only=True):
    skill: str
    level: int
    theta: float
    se: float
    sources: list[SourceOut]


class ProfileOut(msgspec.Struct, kw_only=True):
    member_id: UUID
    as_of: datetime
    skills: list[SkillLevelOut]


class SkillSummaryOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    skill: str
    suppressed: bool
    people: int | None = None
    mean_level: float | None = None
    mean_se: float | None = None
    reason: str | None = None


class SummaryOut(msgspec.Struct, kw_only=True):
    team: str | None
    cohort_id: UUID | None
    minimum_group: int
    skills: list[SkillSummaryOut]


class AuthoredItemOut(msgspec.Struct, kw_only=True):
    """A private item as its authors see it: with its key and parameters."""

    item_id: str
    skill: str
    kind: str
    stem: str
    code: str | None
    options: list[OptionOut]
    answer: list[str]
    time_limit_seconds: int
    version: Annotated[int, msgspec.Meta(description="grows with every revision of the content")]
    difficulty: float
    discrimination: float
    parameter_version: Annotated[
        int, msgspec.Meta(description="the calibration version the parameters come from")
    ]


class ItemList(msgspec.Struct):
    items: list[AuthoredItemOut]
    next_cursor: str | None


class CalibrationOut(msgspec.Struct, kw_only=True):
    version: int
    responses_used: int
    changed: Annotated[int, msgspec.Meta(description="items whose difficulty moved")]
    items: int


class CalibrationVersionsOut(msgspec.Struct):
    items: list[queries.ParameterVersionRecord]
    next_cursor: str | None


class RescoreOut(msgspec.Struct, kw_only=True):
    version: int
    rescored: int
    skipped: Annotated[int, msgspec.Meta(description="already scored under this version")]


# -- helpers ---------------------------------------------------------------------------------


def own_member_id(principal: Principal) -> UUID:
    member_id = principal.member_id
    if member_id is None:
        raise PermissionDeniedException(
            detail="assessments are taken by the engineer: use the member's own token"
        )
    return member_id


def _shuffled(attempt_id: UUID, item_id: str, options: Sequence[Option]) -> list[OptionOut]:
    """The options in an order of their own per attempt and item, the same on every read.

    The bank lists an ordering item's options in the right order and authors tend to put
    the key first; showing them as stored would give the answer away.
    """

    def rank(option: Option) -> bytes:
        return hashlib.sha256(f"{attempt_id}/{item_id}/{option.id}".encode()).digest()

    return [OptionOut(o.id, o.text) for o in sorted(options, key=rank)]


def _result_out(result: Result) -> ResultOut:
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
            options=_shuffled(state.attempt_id, view.item_id, view.options),
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
        result=_result_out(state.result) if state.result else None,
        rescored=[_result_out(r) for r in rescored],
        percentile=percentile,
        version=state.version,
    )


async def _percentile(
    request: Request[Any, Any, Any], skill: str, member_id: UUID, theta: float
) -> float | None:
    async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
        others = await queries.others_latest_thetas(conn, skill, member_id)
    return round(percentile_rank(theta, others), 1) if others else None


async def _out(
    request: Request[Any, Any, Any],
    state: AttemptState,
    member_id: UUID,
    rescored: Sequence[Result] = (),
) -> AttemptOut:
    percentile = None
    if state.result is not None:
        latest = rescored[-1] if rescored else state.result
        percentile = await _percentile(request, state.skill, member_id, latest.theta)
    return attempt_out(state, rescored, percentile)


def read_attempt(
    app: TrainingApplication, context: CommandContext, attempt_id: UUID, member_id: UUID
) -> tuple[AttemptState, list[Result]]:
    """The attempt, if it is the caller's own; another's reads as missing."""
    uow = UnitOfWork(app, context)
    attempt = uow.get(AssessmentAttempt, attempt_id)
    if attempt.member_id != member_id or attempt.tenant_id != context.tenant_id:
        raise NotFound(f"attempt {attempt_id} not found")
    bank = None
    if attempt.current_item is not None and attempt.tenant_id is not None:
        bank = bank_for(uow, attempt.tenant_id, attempt.skill, attempt.parameter_version)
    return state_of(attempt, bank), list(attempt.rescored)


def _context(request: Request[Any, Any, Any]) -> CommandContext:
    return principal_of(request).context(request_id_of(request))


def _tenant(principal: Principal) -> UUID:
    if principal.tenant_id is None:
        raise PermissionDeniedException(detail="this needs a tenant's credentials")
    return principal.tenant_id


def end_of_day(as_of: date | None) -> datetime:
    """The end of ``as_of`` in UTC; now when no day is given."""
    if as_of is None:
        return datetime.now(UTC)
    if not EARLIEST_YEAR <= as_of.year <= LATEST_YEAR:
        raise RuleViolated(f"give a day in {EARLIEST_YEAR}-{LATEST_YEAR}", field="as_of")
    return datetime.combine(as_of, time.max, tzinfo=UTC)


def profile_of(
    results: Sequence[queries.ScoredResult],
    evidence: Sequence[queries.EvidenceRecord],
    as_of: datetime,
) -> list[SkillLevelOut]:
    """Each skill's entry: the latest assessment and the evidence, combined (see profile)."""
    cut_scores = starter_bank().cut_scores
    by_skill: dict[str, list[Measurement]] = {}
    levels: dict[str, int] = {}
    for result in results:
        source_id = str(result.attempt_id)
        by_skill.setdefault(result.skill, []).append(
            Measurement("assessment", source_id, result.theta, result.se, result.completed_at)
        )
        levels[source_id] = result.level
    for found in evidence:
        source_id = str(found.evidence_id)
        by_skill.setdefault(found.skill, []).append(
            evidence_measurement(
                found.kind, source_id, found.observed_level, found.recorded_at, cut_scores
            )
        )
        levels[source_id] = found.observed_level
    skills = []
    for skill in sorted(by_skill):
        entry = combine(skill, by_skill[skill], as_of, cut_scores)
        if entry is None:
            continue
        sources = [
            SourceOut(
                kind=m.source,
                id=UUID(m.source_id),
                level=levels[m.source_id],
                se=m.se,
                recorded_at=m.recorded_at,
            )
            for m in entry.sources
        ]
        skills.append(
            SkillLevelOut(
                skill=skill, level=entry.level, theta=entry.theta, se=entry.se, sources=sources
            )
        )
    return skills


def authored_items(
    app: TrainingApplication, context: CommandContext, skill: str | None
) -> list[AuthoredItemOut]:
    """The tenant's private items, with keys and the parameters of the current version."""
    uow = UnitOfWork(app, context)
    tenant_id = uow.require_tenant()
    bank = tenant_bank(uow, tenant_id)
    version = calibration(uow, tenant_id).current_version
    published = calibration(uow, tenant_id).versions.get(version, {})
    items = []
    for item in sorted(bank.items.values(), key=lambda i: i.item_id):
        if skill is not None and item.skill != skill:
            continue
        parameters = published.get(item.item_id, bank.initial[item.item_id])
        items.append(
            AuthoredItemOut(
                item_id=item.item_id,
                skill=item.skill,
                kind=str(item.kind),
                stem=item.stem,
                code=item.code,
                options=[OptionOut(o.id, o.text) for o in item.options],
                answer=list(item.answer),
                time_limit_seconds=item.time_limit_seconds,
                version=item.version,
                difficulty=parameters.difficulty,
                discrimination=parameters.discrimination,
                parameter_version=version if item.item_id in published else 0,
            )
        )
    return items


def private_item(app: TrainingApplication, context: CommandContext, item_id: str) -> Item:
    uow = UnitOfWork(app, context)
    item = tenant_bank(uow, uow.require_tenant()).items.get(item_id)
    if item is None:
        raise NotFound(f"item {item_id} not found among the tenant's items")
    return item


def current_parameters(
    app: TrainingApplication, context: CommandContext
) -> dict[str, ItemParameters]:
    """Every item's parameters in the current version: starter and private items."""
    tenant_id = UnitOfWork(app, context).require_tenant()
    return calibration_queries.current_parameters(app, tenant_id)


def published_versions(app: TrainingApplication, context: CommandContext) -> set[int]:
    uow = UnitOfWork(app, context)
    return set(calibration(uow, uow.require_tenant()).versions)


def rescore_batch(
    bus: CommandBus, context: CommandContext, attempts: Sequence[UUID], version: int
) -> tuple[int, int, int | None]:
    """Rescores each attempt in its own command: (rescored, skipped, last position)."""
    rescored = skipped = 0
    position = None
    for attempt_id in attempts:
        try:
            outcome = bus.execute(context, RescoreAttempt(attempt_id, version))
        except (InvalidTransition, NotFound):
            skipped += 1  # already scored under this version (the view was behind)
            continue
        rescored += 1
        position = outcome.position or position
    return rescored, skipped, position


def _item(data: ItemIn | ItemRevisionIn, item_id: str, skill: str) -> Item:
    return Item(
        item_id=item_id,
        skill=skill,
        kind=data.kind,
        stem=data.stem,
        code=data.code,
        options=tuple(Option(o.id, o.text) for o in data.options),
        answer=tuple(data.answer),
        time_limit_seconds=data.time_limit_seconds,
    )


async def _may_see_profile(
    request: Request[Any, Any, Any], principal: Principal, member_id: UUID
) -> None:
    """The member, HR (members:read) or the member's manager; 404 for an unknown member."""
    await read_after(request, [MEMBERS.info, ASSESSMENTS.info])
    async with services_of(request).store.session(principal.tenant_id) as conn:
        record = await people_queries.get_member(conn, member_id)
    if principal.has_scope(Scope.MEMBERS_READ) or principal.is_member(member_id):
        if record is None:
            raise NotFound(f"member {member_id} not found")
        return
    manager = principal.member_id
    if manager is None or record is None or record.manager_id != manager:
        raise PermissionDeniedException(
            detail="a skill profile is seen by the member, their manager or HR (members:read)"
        )


async def _may_record_evidence(
    request: Request[Any, Any, Any], principal: Principal, member_id: UUID
) -> None:
    """HR (members:write) or the member's own manager."""
    if principal.has_scope(Scope.MEMBERS_WRITE):
        return
    manager = principal.member_id
    if manager is not None:
        await read_after(request, [MEMBERS.info])
        async with services_of(request).store.session(principal.tenant_id) as conn:
            record = await people_queries.get_member(conn, member_id)
        if record is not None and record.manager_id == manager:
            return
    raise PermissionDeniedException(
        detail="evidence is recorded by HR (members:write) or the member's manager"
    )


ATTEMPT_RULES = (
    "The test is adaptive: each item is chosen for the current ability estimate (maximum "
    "information, drawn among the 5 best to spread exposure), every answer updates the EAP "
    "estimate under the 2PL model, and the test stops once the standard error is at most "
    "0.43 logit (the precision standard is 0.45) after at least 8 items, or after 25 items. "
    "An answer after the item's deadline counts as wrong. Items never carry their answer key."
)
PROFILE_RULES = (
    "Per skill, the latest completed assessment (its latest scoring: a rescoring under newer "
    "item parameters supersedes the original) and every code or project review of the last "
    "12 months, combined by inverse-variance weighting: theta = sum(theta_i / se_i^2) / "
    "sum(1 / se_i^2), se = 1 / sqrt(sum(1 / se_i^2)). A review counts as theta at the middle "
    "of the observed level's band with se = 1.0 logit, about a fifth of the weight of an "
    "assessment (se <= 0.43). The level comes from the cut scores on the combined theta. "
    "`as_of` (a day, UTC) gives the profile as known at the end of that day. Item responses "
    "are never shown."
)


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
        self, request: Request[Any, Any, Any], data: JSONBody[StartIn]
    ) -> Response[AttemptOut]:
        outcome: Outcome[AttemptState] = await run_command(request, StartAssessment(data.skill))
        state = outcome.result
        headers = command_headers(outcome, version=state.version)
        headers["Location"] = f"/v1/assessments/{state.attempt_id}"
        return Response(attempt_out(state), status_code=201, headers=headers)

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
        self, request: Request[Any, Any, Any], attempt_id: FromPath[UUID]
    ) -> Response[AttemptOut]:
        principal = principal_of(request)
        member_id = own_member_id(principal)
        state, rescored = await sync_to_thread(
            read_attempt, services_of(request).app, _context(request), attempt_id, member_id
        )
        await read_after(request, [ASSESSMENTS.info])
        body = await _out(request, state, member_id, rescored)
        return Response(body, headers={"ETag": f'"{state.version}"'})

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
    async def answer(
        self,
        request: Request[Any, Any, Any],
        attempt_id: FromPath[UUID],
        data: JSONBody[AnswerIn],
    ) -> Response[AttemptOut]:
        member_id = own_member_id(principal_of(request))
        command = AnswerItem(attempt_id, data.item_id, tuple(data.answer))
        outcome: Outcome[AttemptState] = await run_command(request, command)
        state = outcome.result
        body = await _out(request, state, member_id)
        return Response(body, headers=command_headers(outcome, version=state.version))

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
        request: Request[Any, Any, Any],
        attempt_id: FromPath[UUID],
        data: JSONBody[AbandonIn | None] = None,
    ) -> Response[AttemptOut]:
        own_member_id(principal_of(request))
        reason = data.reason if data is not None else ""
        outcome: Outcome[AttemptState] = await run_command(
            request, AbandonAttempt(attempt_id, reason)
        )
        state = outcome.result
        return Response(attempt_out(state), headers=command_headers(outcome, version=state.version))


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
        self, request: Request[Any, Any, Any], data: JSONBody[BatteryIn]
    ) -> Response[BatteryOut]:
        try:
            outcome: Outcome[BatteryOutcome] = await run_command(
                request, StartBattery(data.role_profile_key)
            )
        except NotFound:
            raise RuleViolated(
                f"no role profile {data.role_profile_key!r}", field="role_profile_key"
            ) from None
        battery = outcome.result
        body = BatteryOut(
            [attempt_out(state) for state in battery.started],
            [SkippedOut(skill, reason) for skill, reason in battery.skipped],
        )
        return Response(body, status_code=201, headers=command_headers(outcome))


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
        request: Request[Any, Any, Any],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        skill: SkillQuery = None,
    ) -> HistoryPage:
        principal = principal_of(request)
        member_id = own_member_id(principal)
        await read_after(request, [ASSESSMENTS.info])
        async with services_of(request).store.session(principal.tenant_id) as conn:
            page = await queries.attempts_of_member(
                conn, member_id, limit=limit, cursor=cursor, skill=skill
            )
        return HistoryPage(page.items, page.next_cursor)


class MemberSkillsController(Controller):
    path = "/v1/members/{member_id:uuid}"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @post(
        "/evidence",
        guards=[requires_tenant],
        operation_id="recordSkillEvidence",
        summary="Record a code or project review of a member's skill",
        description="By HR (`members:write`) or the member's manager. The observed level "
        "(1-7) enters the member's skill profile with a standard error of 1.0 logit for 12 "
        "months.",
        status_code=201,
    )
    async def record_evidence(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[UUID],
        data: JSONBody[EvidenceIn],
    ) -> Response[EvidenceOut]:
        principal = principal_of(request)
        await _may_record_evidence(request, principal, member_id)
        command = RecordEvidence(
            member_id, data.kind, data.skill, data.observed_level, data.link, data.note
        )
        outcome: Outcome[UUID] = await run_command(request, command)
        body = EvidenceOut(
            evidence_id=outcome.result,
            member_id=member_id,
            kind=str(data.kind),
            skill=data.skill,
            observed_level=data.observed_level,
            link=data.link,
            note=data.note.strip(),
        )
        headers = command_headers(outcome)
        headers["Location"] = f"/v1/members/{member_id}/skill-profile"
        return Response(body, status_code=201, headers=headers)

    @get(
        "/skill-profile",
        guards=[requires_tenant],
        operation_id="getSkillProfile",
        summary="A member's level, theta and SE per skill, with their sources",
        description=PROFILE_RULES + " Seen by the member, their manager and HR (members:read).",
    )
    async def skill_profile(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[UUID],
        as_of: Annotated[
            date | None,
            QueryParameter(name="as_of", description="a day (YYYY-MM-DD, UTC); default now"),
        ] = None,
    ) -> ProfileOut:
        principal = principal_of(request)
        moment = end_of_day(as_of)
        await _may_see_profile(request, principal, member_id)
        async with services_of(request).store.session(principal.tenant_id) as conn:
            results = await queries.results_of_member(conn, member_id, moment)
            evidence = await queries.evidence_of_member(conn, member_id, moment)
        return ProfileOut(
            member_id=member_id, as_of=moment, skills=profile_of(results, evidence, moment)
        )


class SkillSummaryController(Controller):
    path = "/v1/skill-summary"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @get(
        "/",
        guards=[requires_scope(Scope.MEMBERS_READ)],
        operation_id="getSkillSummary",
        summary="A team's or a cohort's assessment results per skill, k-anonymous",
        description=f"Give exactly one of `team` or `cohort_id`. Per skill: the people of "
        f"the group with a completed assessment (their latest, latest scoring), their mean "
        f"level and mean SE. A skill fewer than {MIN_GROUP} people of the group have a result "
        f"for shows only `suppressed: true` and the reason. The group is the team's active "
        f"members, or the people enrolled in the cohort.",
    )
    async def summary(
        self,
        request: Request[Any, Any, Any],
        team: Annotated[
            str | None, QueryParameter(name="team", min_length=1, max_length=200, pattern=NO_NUL)
        ] = None,
        cohort_id: Annotated[UUID | None, QueryParameter(name="cohort_id")] = None,
    ) -> SummaryOut:
        if (team is None) == (cohort_id is None):
            raise ValidationException(
                detail="give exactly one of team or cohort_id",
                extra=[
                    {
                        "key": "team" if team is None else "cohort_id",
                        "message": "give exactly one of team or cohort_id",
                        "source": "query",
                    }
                ],
            )
        group = COHORTS.info if cohort_id is not None else MEMBERS.info
        await read_after(request, [ASSESSMENTS.info, group])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            if cohort_id is not None:
                if await cohort_queries.get_cohort(conn, cohort_id) is None:
                    raise NotFound(f"cohort {cohort_id} not found")
                rows = await queries.cohort_summary(conn, cohort_id)
            else:
                assert team is not None
                rows = await queries.team_summary(conn, team)
        skills = [
            SkillSummaryOut(
                skill=row.skill,
                suppressed=False,
                people=row.people,
                mean_level=round(row.mean_level, 2),
                mean_se=round(row.mean_se, 3),
            )
            if row.people >= MIN_GROUP
            else SkillSummaryOut(skill=row.skill, suppressed=True, reason=SUPPRESSED_REASON)
            for row in rows
        ]
        return SummaryOut(team=team, cohort_id=cohort_id, minimum_group=MIN_GROUP, skills=skills)


class ItemController(Controller):
    path = "/v1/items"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="addItem",
        summary="Add a private item to the tenant's bank",
        description="Seen only by this tenant's engineers, in adaptive tests of its skill, "
        "alongside the starter bank. `answer` is the key: one option for single_choice and "
        "code_output, one or more (not all) for multiple_choice, every option in the right "
        "order for ordering. `difficulty` and `discrimination` are the initial 2PL "
        "parameters until a calibration re-estimates the difficulty.",
        status_code=201,
    )
    async def add(
        self, request: Request[Any, Any, Any], data: JSONBody[ItemIn]
    ) -> Response[AuthoredItemOut]:
        item = _item(data, data.item_id, data.skill)
        outcome: Outcome[int] = await run_command(
            request, AddItem(item, data.difficulty, data.discrimination)
        )
        body = AuthoredItemOut(
            item_id=item.item_id,
            skill=item.skill,
            kind=str(item.kind),
            stem=item.stem,
            code=item.code,
            options=[OptionOut(o.id, o.text) for o in item.options],
            answer=list(item.answer),
            time_limit_seconds=item.time_limit_seconds,
            version=outcome.result,
            difficulty=data.difficulty,
            discrimination=data.discrimination,
            parameter_version=0,
        )
        headers = command_headers(outcome, version=outcome.result)
        headers["Location"] = f"/v1/items/{item.item_id}"
        return Response(body, status_code=201, headers=headers)

    @get(
        "/",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="listItems",
        summary="The tenant's private items, with keys, versions and current parameters",
    )
    async def list_items(
        self,
        request: Request[Any, Any, Any],
        skill: SkillQuery = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> ItemList:
        items = await sync_to_thread(
            authored_items, services_of(request).app, _context(request), skill
        )
        # The bank is one aggregate, read whole: its items are paged in memory, by item id.
        page = page_after(
            items, limit=limit, cursor=cursor, key=lambda item: [item.item_id], kinds=[TEXT]
        )
        return ItemList(page.items, page.next_cursor)

    @get(
        "/{item_id:str}",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="getItem",
        summary="One of the tenant's private items, with its key",
    )
    async def get_item(
        self, request: Request[Any, Any, Any], item_id: PathItemId
    ) -> AuthoredItemOut:
        items = await sync_to_thread(
            authored_items, services_of(request).app, _context(request), None
        )
        for item in items:
            if item.item_id == item_id:
                return item
        raise NotFound(f"item {item_id} not found among the tenant's items")

    @put(
        "/{item_id:str}",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="reviseItem",
        summary="Revise a private item's content (a new version; parameters stay)",
        description="Attempts already under way keep asking the version they administered "
        "only until they move on; results are not affected. An unchanged body changes "
        "nothing.",
    )
    async def revise(
        self,
        request: Request[Any, Any, Any],
        item_id: PathItemId,
        data: JSONBody[ItemRevisionIn],
    ) -> Response[AuthoredItemOut]:
        services = services_of(request)
        current = await sync_to_thread(private_item, services.app, _context(request), item_id)
        outcome: Outcome[int] = await run_command(
            request, ReviseItem(_item(data, item_id, current.skill))
        )
        items = await sync_to_thread(authored_items, services.app, _context(request), current.skill)
        body = next(item for item in items if item.item_id == item_id)
        return Response(body, headers=command_headers(outcome, version=outcome.result))


class CalibrationController(Controller):
    path = "/v1/item-calibrations"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="calibrateItems",
        summary="Re-estimate item difficulties from the recorded responses; publish a version",
        description="Reads every response of the tenant's completed attempts with the "
        "attempt's original theta, re-estimates each item's difficulty by maximum likelihood "
        "(discriminations are kept) starting from the current parameters, and publishes the "
        "result as the next parameter version. Items with fewer than `min_responses` "
        "responses keep their difficulty. New attempts use the new version; completed ones "
        "keep their results until rescored.",
        status_code=201,
    )
    async def calibrate(
        self,
        request: Request[Any, Any, Any],
        min_responses: Annotated[int, QueryParameter(name="min_responses", ge=1, le=100_000)] = 20,
    ) -> Response[CalibrationOut]:
        services = services_of(request)
        principal = principal_of(request)
        _tenant(principal)
        await read_after(request, [ASSESSMENTS.info])
        async with services.store.session(principal.tenant_id) as conn:
            responses = await queries.calibration_responses(conn)
        current = await sync_to_thread(current_parameters, services.app, _context(request))
        usable = [r for r in responses if r[0] in current]
        if not usable:
            raise InvalidTransition("there are no recorded responses to calibrate with yet")
        calibrated = calibrate_difficulties(usable, current, min_responses=min_responses)
        changed = sum(
            1
            for item_id, parameters in calibrated.items()
            if parameters.difficulty != current[item_id].difficulty
        )
        outcome: Outcome[int] = await run_command(
            request, PublishParameters(tuple(calibrated.values()), len(usable))
        )
        body = CalibrationOut(
            version=outcome.result,
            responses_used=len(usable),
            changed=changed,
            items=len(calibrated),
        )
        return Response(body, status_code=201, headers=command_headers(outcome))

    @get(
        "/",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="listItemCalibrations",
        summary="The tenant's published item-parameter versions",
    )
    async def versions(
        self, request: Request[Any, Any, Any], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> CalibrationVersionsOut:
        await read_after(request, [ASSESSMENTS.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            page = await queries.parameter_versions(conn, limit=limit, cursor=cursor)
        return CalibrationVersionsOut(page.items, page.next_cursor)

    @post(
        "/{version:str}/rescore",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="rescoreAttempts",
        summary="Score every completed attempt again under a published parameter version",
        description="Replays each attempt's responses against the version's parameters and "
        "records the new result beside the original, one command per attempt. Attempts "
        "already scored under the version are skipped, so running it again is harmless.",
        status_code=200,
    )
    async def rescore(
        self, request: Request[Any, Any, Any], version: VersionPath
    ) -> Response[RescoreOut]:
        services = services_of(request)
        principal = principal_of(request)
        context = _context(request)
        number = int(version)
        if number not in await sync_to_thread(published_versions, services.app, context):
            raise NotFound(f"item-parameter version {number} not found")
        await read_after(request, [ASSESSMENTS.info])
        rescored = skipped = 0
        position: int | None = None
        after: UUID | None = None
        while True:
            async with services.store.session(principal.tenant_id) as conn:
                batch = await queries.attempts_to_rescore(
                    conn, number, after=after, limit=RESCORE_BATCH
                )
            if not batch:
                break
            done, passed, last = await sync_to_thread(
                rescore_batch, services.bus, context, batch, number
            )
            rescored, skipped, position = rescored + done, skipped + passed, last or position
            if len(batch) < RESCORE_BATCH:
                break
            after = batch[-1]
        body = RescoreOut(version=number, rescored=rescored, skipped=skipped)
        return Response(body, headers=command_headers(Outcome(None, position)))


ROUTES = [
    AssessmentController,
    BatteryController,
    MyAssessmentsController,
    MemberSkillsController,
    SkillSummaryController,
    ItemController,
    CalibrationController,
]
