"""Cohorts over HTTP: schedule a cohort, change its capacity, start, complete or cancel it,
record and read its people's progress against its calendar, and the tenant's training policy.

Its people are ``enrolments``, its live sessions ``sessions``, its calendar URL ``calendar``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Response, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from training.cohorts.domain.cohorts import MAX_CAPACITY, check_timezone
from training.cohorts.domain.policy import TrainingPolicy
from training.cohorts.handlers.cohorts import (
    CancelCohort,
    ChangeCapacity,
    ChangeTrainingPolicy,
    CompleteCohort,
    CompleteModule,
    ScheduleCohort,
    StartCohort,
)
from training.cohorts.http.common import (
    READ,
    WRITE,
    CohortOut,
    Name,
    Reason,
    cohort_answer,
)
from training.cohorts.views import cohorts as queries
from training.cohorts.views.projection import COHORTS
from training.core.errors import NotFound
from training.core.http.commands import Commands, answer
from training.core.http.params import Cursor, IfMatch, Limit, etag, expected_version
from training.core.http.reads import Reads
from training.core.outcome import Outcome
from training.core.pagination import DEFAULT_LIMIT
from training.people.views import MEMBERS

TimeZoneName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*$",
        description="an IANA time zone, e.g. Europe/Berlin",
    ),
]
Capacity = Annotated[int, msgspec.Meta(ge=1, le=MAX_CAPACITY)]
VersionNumber = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
Facilitators = Annotated[list[UUID], msgspec.Meta(max_length=50)]
ModuleKey = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"),
]

# -- bodies ----------------------------------------------------------------------------------


class CohortIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    curriculum_id: UUID
    curriculum_version: VersionNumber
    starts_on: date
    ends_on: date
    timezone: TimeZoneName
    capacity: Capacity
    facilitators: Facilitators = []


class CohortPatch(msgspec.Struct, forbid_unknown_fields=True):
    capacity: Capacity


class CancellationIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class ProgressIn(msgspec.Struct, forbid_unknown_fields=True):
    member_id: UUID
    module_key: ModuleKey
    completed_on: date


class PolicyIn(msgspec.Struct, forbid_unknown_fields=True):
    at_risk_threshold: Annotated[
        int, msgspec.Meta(ge=1, le=100, description="percentage points behind schedule")
    ]
    retake_cooldown_days: Annotated[int, msgspec.Meta(ge=0, le=365)]


# -- answers ---------------------------------------------------------------------------------


class CohortPage(msgspec.Struct):
    items: list[queries.CohortRecord]
    next_cursor: str | None


class ProgressRecorded(msgspec.Struct):
    member_id: UUID
    module_key: str
    version: int


class ProgressItem(msgspec.Struct, kw_only=True):
    member_id: UUID
    external_id: str | None
    modules_completed: int
    percent_complete: Annotated[
        float, msgspec.Meta(description="modules completed / modules of the pinned version, %")
    ]
    expected_percent: Annotated[
        float, msgspec.Meta(description="share of the cohort's calendar window elapsed, %")
    ]
    behind: Annotated[
        float, msgspec.Meta(description="expected_percent - percent_complete, percentage points")
    ]
    at_risk: Annotated[bool, msgspec.Meta(description="behind > the tenant's at_risk_threshold")]


class ProgressPage(msgspec.Struct, kw_only=True):
    cohort_id: UUID
    as_of: Annotated[date, msgspec.Meta(description="today in the cohort's time zone")]
    timezone: str
    module_count: int
    expected_percent: float
    at_risk_threshold: int
    items: list[ProgressItem]
    next_cursor: str | None


class PolicyOut(msgspec.Struct):
    at_risk_threshold: int
    retake_cooldown_days: int
    version: Annotated[
        int | None, msgspec.Meta(description="null while the tenant uses the defaults")
    ]


def expected_percent(starts_on: date, ends_on: date, today: date) -> float:
    """Days of the window elapsed by the end of ``today`` over its days, in %."""
    if today < starts_on:
        return 0.0
    if today >= ends_on:
        return 100.0
    total = (ends_on - starts_on).days + 1
    return round(((today - starts_on).days + 1) * 100 / total, 2)


def progress_items(
    cohort: queries.CohortRecord,
    policy: queries.PolicyRecord,
    rows: Sequence[queries.ProgressRow],
    expected: float,
) -> list[ProgressItem]:
    """Each person's progress against ``expected`` percent, flagged at risk beyond the
    tenant's threshold."""
    items = []
    for row in rows:
        actual = round(row.modules_completed * 100 / max(cohort.module_count, 1), 2)
        behind = round(expected - actual, 2)
        items.append(
            ProgressItem(
                member_id=row.member_id,
                external_id=row.external_id,
                modules_completed=row.modules_completed,
                percent_complete=actual,
                expected_percent=expected,
                behind=behind,
                at_risk=behind > policy.at_risk_threshold,
            )
        )
    return items


class CohortController(Controller):
    path = "/v1/cohorts"
    tags = ["Cohorts"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[WRITE],
        operation_id="scheduleCohort",
        summary="Schedule a cohort of a published curriculum version",
        description="The cohort pins `curriculum_version`; facilitators are active members "
        "of the tenant. People beyond `capacity` go to the waitlist.",
        status_code=201,
    )
    async def schedule(
        self, commands: NamedDependency[Commands], data: JSONBody[CohortIn]
    ) -> Response[CohortOut]:
        command = ScheduleCohort(
            data.name,
            data.curriculum_id,
            data.curriculum_version,
            data.starts_on,
            data.ends_on,
            check_timezone(data.timezone),
            data.capacity,
            tuple(data.facilitators),
        )
        outcome = await commands.run(command)
        body = CohortOut.of(outcome.result)
        location = f"/v1/cohorts/{body.cohort_id}"
        return answer(outcome, body, status=201, version=body.version, location=location)

    @get(
        "/",
        guards=[READ],
        operation_id="listCohorts",
        summary="List cohorts",
        description="Filters combine with AND. Ordered by when the cohort was scheduled.",
    )
    async def list_cohorts(
        self,
        reads: NamedDependency[Reads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        status: Annotated[
            str | None,
            QueryParameter(name="status", pattern="^(planned|running|completed|cancelled)$"),
        ] = None,
        curriculum_id: Annotated[UUID | None, QueryParameter(name="curriculum_id")] = None,
    ) -> CohortPage:
        await reads.after([COHORTS.info])
        async with reads.session() as conn:
            page = await queries.list_cohorts(
                conn, limit=limit, cursor=cursor, status=status, curriculum_id=curriculum_id
            )
        return CohortPage(page.items, page.next_cursor)

    @get(
        "/{cohort_id:uuid}",
        guards=[READ],
        operation_id="getCohort",
        summary="Read a cohort with its summary",
        description="`average_completion_percent`: the mean, over the people enrolled, of "
        "modules completed / modules of the pinned version (%). `average_attendance_rate`: "
        "the mean of the sessions' `attendance_rate` over the sessions with imported "
        "attendance. Both null without data.",
    )
    async def get_cohort(
        self, reads: NamedDependency[Reads], cohort_id: FromPath[UUID]
    ) -> Response[queries.CohortSummary]:
        await reads.after([COHORTS.info])
        async with reads.session() as conn:
            summary = await queries.cohort_summary(conn, cohort_id)
        if summary is None:
            raise NotFound(f"cohort {cohort_id} not found")
        return Response(summary, headers={"ETag": etag(summary.version)})

    @patch(
        "/{cohort_id:uuid}",
        guards=[WRITE],
        operation_id="changeCohortCapacity",
        summary="Change a cohort's capacity (a larger one seats people waiting, in order)",
    )
    async def change_capacity(
        self,
        commands: NamedDependency[Commands],
        cohort_id: FromPath[UUID],
        data: JSONBody[CohortPatch],
        if_match: IfMatch = None,
    ) -> Response[CohortOut]:
        command = ChangeCapacity(cohort_id, data.capacity, expected_version(if_match))
        return cohort_answer(await commands.run(command))

    @post(
        "/{cohort_id:uuid}/start",
        guards=[WRITE],
        operation_id="startCohort",
        summary="Start a planned cohort",
        status_code=200,
    )
    async def start(
        self, commands: NamedDependency[Commands], cohort_id: FromPath[UUID]
    ) -> Response[CohortOut]:
        return cohort_answer(await commands.run(StartCohort(cohort_id)))

    @post(
        "/{cohort_id:uuid}/complete",
        guards=[WRITE],
        operation_id="completeCohort",
        summary="Complete a running cohort (its people may join the curriculum again)",
        status_code=200,
    )
    async def complete(
        self, commands: NamedDependency[Commands], cohort_id: FromPath[UUID]
    ) -> Response[CohortOut]:
        return cohort_answer(await commands.run(CompleteCohort(cohort_id)))

    @post(
        "/{cohort_id:uuid}/cancel",
        guards=[WRITE],
        operation_id="cancelCohort",
        summary="Cancel a cohort: everyone enrolled or waiting is withdrawn with the reason",
        status_code=200,
    )
    async def cancel(
        self,
        commands: NamedDependency[Commands],
        cohort_id: FromPath[UUID],
        data: JSONBody[CancellationIn],
    ) -> Response[CohortOut]:
        return cohort_answer(await commands.run(CancelCohort(cohort_id, data.reason)))

    @post(
        "/{cohort_id:uuid}/progress",
        guards=[WRITE],
        operation_id="recordProgress",
        summary="Record that an enrolled person completed a module of the pinned version",
        status_code=200,
    )
    async def record_progress(
        self,
        commands: NamedDependency[Commands],
        cohort_id: FromPath[UUID],
        data: JSONBody[ProgressIn],
    ) -> Response[ProgressRecorded]:
        command = CompleteModule(cohort_id, data.member_id, data.module_key, data.completed_on)
        outcome: Outcome[int] = await commands.run(command)
        body = ProgressRecorded(data.member_id, data.module_key, outcome.result)
        return answer(outcome, body, version=outcome.result)

    @get(
        "/{cohort_id:uuid}/progress",
        guards=[READ],
        operation_id="cohortProgress",
        summary="Each enrolled person's progress against the cohort's calendar",
        description="`percent_complete` = modules completed / modules of the pinned version "
        "(%). `expected_percent` = days of the cohort's window (starts_on to ends_on, "
        "inclusive) elapsed by the end of today in the cohort's time zone / days in the "
        "window (%): 0 before the start, 100 from the last day on. `behind` = expected - "
        "actual, in percentage points; `at_risk` when `behind` exceeds the tenant's "
        "`at_risk_threshold` (see /v1/training-policy; 20 by default). Ordered by arrival.",
    )
    async def progress(
        self,
        reads: NamedDependency[Reads],
        cohort_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> ProgressPage:
        await reads.after([COHORTS.info, MEMBERS.info])
        async with reads.session() as conn:
            cohort = await queries.get_cohort(conn, cohort_id)
            if cohort is None:
                raise NotFound(f"cohort {cohort_id} not found")
            policy = await queries.training_policy(conn)
            page = await queries.progress_of(conn, cohort_id, limit=limit, cursor=cursor)
        today = datetime.now(ZoneInfo(cohort.timezone)).date()
        expected = expected_percent(cohort.starts_on, cohort.ends_on, today)
        items = progress_items(cohort, policy, page.items, expected)
        return ProgressPage(
            cohort_id=cohort_id,
            as_of=today,
            timezone=cohort.timezone,
            module_count=cohort.module_count,
            expected_percent=expected,
            at_risk_threshold=policy.at_risk_threshold,
            items=items,
            next_cursor=page.next_cursor,
        )


class PolicyController(Controller):
    path = "/v1/training-policy"
    tags = ["Cohorts"]
    security = [{"bearer": []}]

    @get(
        "/",
        guards=[READ],
        operation_id="getTrainingPolicy",
        summary="The tenant's training policy (defaults until changed)",
    )
    async def get_policy(self, reads: NamedDependency[Reads]) -> PolicyOut:
        await reads.after([COHORTS.info])
        async with reads.session() as conn:
            policy = await queries.training_policy(conn)
        return PolicyOut(policy.at_risk_threshold, policy.retake_cooldown_days, policy.version)

    @put(
        "/",
        guards=[WRITE],
        operation_id="changeTrainingPolicy",
        summary="Change the at-risk threshold and the retake cool-down",
    )
    async def change_policy(
        self, commands: NamedDependency[Commands], data: JSONBody[PolicyIn]
    ) -> Response[PolicyOut]:
        command = ChangeTrainingPolicy(data.at_risk_threshold, data.retake_cooldown_days)
        outcome: Outcome[TrainingPolicy] = await commands.run(command)
        policy = outcome.result
        body = PolicyOut(policy.at_risk_threshold, policy.retake_cooldown_days, policy.version)
        return answer(outcome, body, version=policy.version)
