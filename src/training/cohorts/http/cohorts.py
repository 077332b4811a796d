"""Cohorts over HTTP: schedule and run cohorts, enrol (in bulk), withdraw and transfer people,
live sessions with imported attendance and feedback, progress against the calendar, the
tenant's training policy, and each engineer's own cohorts and sessions.

HR manages cohorts with ``members:write`` and reads them with ``members:read``; an engineer
uses their own (member) token for feedback and the ``/v1/me`` endpoints.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.concurrency import sync_to_thread
from litestar.exceptions import PermissionDeniedException, ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter

from training.cohorts.domain.cohorts import (
    MAX_CAPACITY,
    MAX_NAME,
    Attendance,
    check_timezone,
)
from training.cohorts.domain.policy import TrainingPolicy
from training.cohorts.handlers.cohorts import (
    CancelCohort,
    ChangeCapacity,
    ChangeTrainingPolicy,
    CohortSnapshot,
    CompleteCohort,
    CompleteModule,
    EnrolmentOutcome,
    GiveFeedback,
    RecordAttendance,
    ScheduleCohort,
    ScheduleSession,
    StartCohort,
    version_written_at,
)
from training.cohorts.handlers.enrolments import Enrol, Transfer, Withdraw, promoted_by
from training.cohorts.views import cohorts as queries
from training.cohorts.views import sessions as session_queries
from training.cohorts.views.projection import COHORTS
from training.core.access import Scope
from training.core.errors import NotFound, RuleViolated
from training.core.http.principal import Principal, requires_scope, requires_tenant
from training.core.http.services import (
    IfMatch,
    command_headers,
    etag,
    expected_version,
    principal_of,
    read_after,
    run_command,
    services_of,
)
from training.core.outcome import Outcome
from training.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from training.people.views import MEMBERS

# Text is stored in PostgreSQL, which refuses NUL characters: refuse them at the edge.
NO_NUL = r"^[^\x00]*$"
MAX_ENROL = 5000
MAX_ATTENDANCE = 10_000
MAX_COUNT = 1_000_000_000
# Instants outside these years are typing errors; refusing them keeps date arithmetic (a
# session's end, a calendar's UTC times) far from the limits of datetime.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2199

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME, pattern=NO_NUL)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=NO_NUL)]
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
MemberIds = Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=MAX_ENROL)]
Facilitators = Annotated[list[UUID], msgspec.Meta(max_length=50)]
Instant = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 with an offset")]
Minutes = Annotated[int, msgspec.Meta(ge=5, le=600)]
JoinUrl = Annotated[
    str,
    msgspec.Meta(
        max_length=2008,
        pattern=r"^https://[^\s\x00]{3,2000}$",
        description="the https link of the session in the conferencing tool",
    ),
]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]
Rating = Annotated[int, msgspec.Meta(ge=1, le=5, description="1 (poor) to 5 (excellent)")]
ModuleKey = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"),
]
Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None,
    QueryParameter(name="cursor", max_length=512, description="next_cursor of the previous page"),
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


class EnrolmentIn(msgspec.Struct, forbid_unknown_fields=True):
    member_ids: MemberIds


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    member_id: UUID
    from_cohort_id: UUID
    to_cohort_id: UUID
    reason: Reason


class SessionIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Name
    starts_at: Instant
    duration_minutes: Minutes
    join_url: JoinUrl


class AttendeeIn(msgspec.Struct, forbid_unknown_fields=True):
    member_id: UUID
    joined_at: Instant
    left_at: Instant


class AttendanceIn(msgspec.Struct, forbid_unknown_fields=True):
    """An export of the conferencing tool: who attended and the session's interactions."""

    attendance: Annotated[list[AttendeeIn], msgspec.Meta(max_length=MAX_ATTENDANCE)]
    comments: Count = 0
    questions: Count = 0
    reactions: Count = 0


class FeedbackIn(msgspec.Struct, forbid_unknown_fields=True):
    content: Rating
    delivery: Rating
    interaction: Rating


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


class CohortOut(msgspec.Struct):
    """A cohort as a command left it."""

    cohort_id: UUID
    name: str
    status: str
    capacity: int
    enrolled: int
    waitlisted: int
    version: int


class EnrolmentOut(msgspec.Struct):
    cohort: CohortOut
    enrolled: list[UUID]
    waitlisted: list[UUID]


class WithdrawalOut(msgspec.Struct):
    cohort: CohortOut
    withdrawn: UUID
    promoted: Annotated[
        UUID | None,
        msgspec.Meta(description="the first person waiting, who took the freed seat, if any"),
    ]


class CohortPage(msgspec.Struct):
    items: list[queries.CohortRecord]
    next_cursor: str | None


class EnrolmentPage(msgspec.Struct):
    items: list[queries.EnrolmentRecord]
    next_cursor: str | None


class SessionCreated(msgspec.Struct):
    session_id: UUID
    cohort_id: UUID


class SessionOut(msgspec.Struct, kw_only=True):
    session_id: UUID
    cohort_id: UUID
    title: str
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int
    join_url: str
    attendance_recorded: bool
    attendees: Annotated[
        int, msgspec.Meta(description="distinct attendees who are enrolled in the cohort")
    ]
    enrolled: Annotated[int, msgspec.Meta(description="people enrolled in the cohort now")]
    comments: int
    questions: int
    reactions: int
    feedback_count: int
    attendance_rate: Annotated[
        float | None,
        msgspec.Meta(
            description="attendees / enrolled, 0-1: distinct enrolled attendees divided by "
            "the people enrolled in the cohort; null before attendance is imported or when "
            "nobody is enrolled"
        ),
    ]
    interaction_index: Annotated[
        float | None,
        msgspec.Meta(
            description="(comments + questions + reactions) / duration_minutes: interactions "
            "per minute; null before attendance is imported"
        ),
    ]
    content_satisfaction: Annotated[
        float | None,
        msgspec.Meta(
            description="1-5: the mean over feedback entries of the mean of each entry's "
            "three ratings (content, delivery, interaction); null without feedback"
        ),
    ]


class SessionPage(msgspec.Struct):
    items: list[SessionOut]
    next_cursor: str | None


class AttendanceOut(msgspec.Struct):
    session_id: UUID
    attendance_records: int
    version: int


class FeedbackOut(msgspec.Struct):
    session_id: UUID
    member_id: UUID
    version: int


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


class MyCohortPage(msgspec.Struct):
    items: list[queries.MyCohortRow]
    next_cursor: str | None


class MySessionOut(msgspec.Struct, kw_only=True):
    session_id: UUID
    cohort_id: UUID
    cohort_name: str
    title: str
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int
    join_url: str


class MySessionPage(msgspec.Struct):
    items: list[MySessionOut]
    next_cursor: str | None


# -- helpers ---------------------------------------------------------------------------------


def cohort_out(snapshot: CohortSnapshot) -> CohortOut:
    return CohortOut(
        snapshot.cohort_id,
        snapshot.name,
        snapshot.status,
        snapshot.capacity,
        snapshot.enrolled,
        snapshot.waitlisted,
        snapshot.version,
    )


def enrolment_out(outcome: EnrolmentOutcome) -> EnrolmentOut:
    return EnrolmentOut(
        cohort_out(outcome.cohort), list(outcome.enrolled), list(outcome.waitlisted)
    )


async def _changed(request: Request[Any, Any, Any], command: Any) -> Response[CohortOut]:
    outcome = await run_command(request, command)
    body = cohort_out(outcome.result)
    return Response(body, headers=command_headers(outcome, version=body.version))


def check_instant(value: datetime, field: str) -> datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise RuleViolated(f"give a time in {EARLIEST_YEAR}-{LATEST_YEAR}", field=field)
    return value


def session_out(row: session_queries.SessionRow) -> SessionOut:
    return SessionOut(
        session_id=row.session_id,
        cohort_id=row.cohort_id,
        title=row.title,
        starts_at=row.starts_at,
        ends_at=row.starts_at + timedelta(minutes=row.duration_minutes),
        duration_minutes=row.duration_minutes,
        join_url=row.join_url,
        attendance_recorded=row.attendance_recorded,
        attendees=row.attendees,
        enrolled=row.enrolled,
        comments=row.comments,
        questions=row.questions,
        reactions=row.reactions,
        feedback_count=row.feedback_count,
        attendance_rate=session_queries.attendance_rate(row),
        interaction_index=session_queries.interaction_index(row),
        content_satisfaction=session_queries.content_satisfaction(row),
    )


def expected_percent(starts_on: date, ends_on: date, today: date) -> float:
    """Days of the window elapsed by the end of ``today`` over its days, in %."""
    if today < starts_on:
        return 0.0
    if today >= ends_on:
        return 100.0
    total = (ends_on - starts_on).days + 1
    return round(((today - starts_on).days + 1) * 100 / total, 2)


def own_member_id(principal: Principal) -> UUID:
    member_id = principal.member_id
    if member_id is None:
        raise PermissionDeniedException(detail="this is for a person: use the member's own token")
    return member_id


READ = requires_scope(Scope.MEMBERS_READ)
WRITE = requires_scope(Scope.MEMBERS_WRITE)

SESSION_METRICS = (
    "Each session carries metrics computed from the imported attendance and feedback: "
    "`attendance_rate` = distinct attendees still enrolled / people enrolled in the cohort "
    "(0-1); `interaction_index` = (comments + questions + reactions) / duration_minutes, "
    "i.e. interactions per minute; `content_satisfaction` = the mean over feedback entries "
    "of the mean of the entry's three 1-5 ratings. Each is null when there is no data "
    "(no attendance import yet, nobody enrolled, no feedback)."
)


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
        self, request: Request[Any, Any, Any], data: JSONBody[CohortIn]
    ) -> Response[CohortOut]:
        check_timezone(data.timezone)
        command = ScheduleCohort(
            data.name,
            data.curriculum_id,
            data.curriculum_version,
            data.starts_on,
            data.ends_on,
            data.timezone,
            data.capacity,
            tuple(data.facilitators),
        )
        outcome = await run_command(request, command)
        body = cohort_out(outcome.result)
        headers = command_headers(outcome, version=body.version)
        headers["Location"] = f"/v1/cohorts/{body.cohort_id}"
        return Response(body, status_code=201, headers=headers)

    @get(
        "/",
        guards=[READ],
        operation_id="listCohorts",
        summary="List cohorts",
        description="Filters combine with AND. Ordered by when the cohort was scheduled.",
    )
    async def list_cohorts(
        self,
        request: Request[Any, Any, Any],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        status: Annotated[
            str | None,
            QueryParameter(name="status", pattern="^(planned|running|completed|cancelled)$"),
        ] = None,
        curriculum_id: Annotated[UUID | None, QueryParameter(name="curriculum_id")] = None,
    ) -> CohortPage:
        await read_after(request, [COHORTS.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
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
        self, request: Request[Any, Any, Any], cohort_id: FromPath[UUID]
    ) -> Response[queries.CohortSummary]:
        await read_after(request, [COHORTS.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
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
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        data: JSONBody[CohortPatch],
        if_match: IfMatch = None,
    ) -> Response[CohortOut]:
        command = ChangeCapacity(cohort_id, data.capacity, expected_version(if_match))
        return await _changed(request, command)

    @post(
        "/{cohort_id:uuid}/start",
        guards=[WRITE],
        operation_id="startCohort",
        summary="Start a planned cohort",
        status_code=200,
    )
    async def start(
        self, request: Request[Any, Any, Any], cohort_id: FromPath[UUID]
    ) -> Response[CohortOut]:
        return await _changed(request, StartCohort(cohort_id))

    @post(
        "/{cohort_id:uuid}/complete",
        guards=[WRITE],
        operation_id="completeCohort",
        summary="Complete a running cohort (its people may join the curriculum again)",
        status_code=200,
    )
    async def complete(
        self, request: Request[Any, Any, Any], cohort_id: FromPath[UUID]
    ) -> Response[CohortOut]:
        return await _changed(request, CompleteCohort(cohort_id))

    @post(
        "/{cohort_id:uuid}/cancel",
        guards=[WRITE],
        operation_id="cancelCohort",
        summary="Cancel a cohort: everyone enrolled or waiting is withdrawn with the reason",
        status_code=200,
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        data: JSONBody[CancellationIn],
    ) -> Response[CohortOut]:
        return await _changed(request, CancelCohort(cohort_id, data.reason))

    @post(
        "/{cohort_id:uuid}/enrolments",
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
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        data: JSONBody[EnrolmentIn],
    ) -> Response[EnrolmentOut]:
        outcome: Outcome[EnrolmentOutcome] = await run_command(
            request, Enrol(cohort_id, tuple(data.member_ids))
        )
        body = enrolment_out(outcome.result)
        return Response(body, headers=command_headers(outcome, version=body.cohort.version))

    @get(
        "/{cohort_id:uuid}/enrolments",
        guards=[READ],
        operation_id="listEnrolments",
        summary="The people of a cohort, in the order they arrived",
        description="`status=waitlisted` lists the waitlist in order; `waitlist_position` "
        "is each waiting person's place (1 is next).",
    )
    async def list_enrolments(
        self,
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        status: Annotated[
            str | None, QueryParameter(name="status", pattern="^(enrolled|waitlisted|withdrawn)$")
        ] = None,
    ) -> EnrolmentPage:
        await read_after(request, [COHORTS.info, MEMBERS.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            if await queries.get_cohort(conn, cohort_id) is None:
                raise NotFound(f"cohort {cohort_id} not found")
            page = await queries.list_enrolments(
                conn, cohort_id, limit=limit, cursor=cursor, status=status
            )
        return EnrolmentPage(page.items, page.next_cursor)

    @delete(
        "/{cohort_id:uuid}/enrolments/{member_id:uuid}",
        guards=[WRITE],
        operation_id="withdrawMember",
        summary="Withdraw a person; the first person waiting takes the seat",
        status_code=200,
    )
    async def withdraw(
        self,
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        member_id: FromPath[UUID],
        reason: Annotated[
            str | None,
            QueryParameter(
                name="reason",
                min_length=1,
                max_length=500,
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
        outcome: Outcome[CohortSnapshot] = await run_command(
            request, Withdraw(cohort_id, member_id, reason)
        )
        snapshot = outcome.result
        promoted = await sync_to_thread(
            promoted_by, services_of(request).app, cohort_id, snapshot.version
        )
        body = WithdrawalOut(cohort_out(snapshot), member_id, promoted)
        return Response(body, headers=command_headers(outcome, version=snapshot.version))

    @post(
        "/{cohort_id:uuid}/sessions",
        guards=[WRITE],
        operation_id="scheduleSession",
        summary="Schedule a live session (the video stays in the conferencing tool)",
        description="A session is a part of its cohort: the answer's `ETag` is the cohort's "
        "new version (send it as `If-Match` to change the cohort next), and `Location` is the "
        "cohort's session list, where the session can be read (a session has no address of "
        "its own).",
        status_code=201,
    )
    async def schedule_session(
        self,
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        data: JSONBody[SessionIn],
    ) -> Response[SessionCreated]:
        command = ScheduleSession(
            cohort_id,
            data.title,
            check_instant(data.starts_at, "starts_at"),
            data.duration_minutes,
            data.join_url,
        )
        outcome: Outcome[UUID] = await run_command(request, command)
        version = await sync_to_thread(
            version_written_at, services_of(request).app, cohort_id, outcome.position
        )
        headers = command_headers(outcome, version=version)
        headers["Location"] = f"/v1/cohorts/{cohort_id}/sessions"
        return Response(SessionCreated(outcome.result, cohort_id), status_code=201, headers=headers)

    @get(
        "/{cohort_id:uuid}/sessions",
        guards=[READ],
        operation_id="listSessions",
        summary="A cohort's sessions with attendance, interaction and satisfaction metrics",
        description=SESSION_METRICS + " Ordered by start time.",
    )
    async def list_sessions(
        self,
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> SessionPage:
        await read_after(request, [COHORTS.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            if await queries.get_cohort(conn, cohort_id) is None:
                raise NotFound(f"cohort {cohort_id} not found")
            page = await session_queries.list_sessions(conn, cohort_id, limit=limit, cursor=cursor)
        return SessionPage([session_out(row) for row in page.items], page.next_cursor)

    @put(
        "/{cohort_id:uuid}/sessions/{session_id:uuid}/attendance",
        guards=[WRITE],
        operation_id="recordAttendance",
        summary="Import a session's attendance and interaction counts",
        description="From the conferencing tool's export. Replaces an earlier import of the "
        "same session. Only people enrolled in the cohort attend; several visits of one "
        "person count once (from the first join to the last leave).",
    )
    async def record_attendance(
        self,
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        session_id: FromPath[UUID],
        data: JSONBody[AttendanceIn],
    ) -> Response[AttendanceOut]:
        attendance = tuple(
            Attendance(
                a.member_id,
                check_instant(a.joined_at, f"attendance[{index}].joined_at"),
                check_instant(a.left_at, f"attendance[{index}].left_at"),
            )
            for index, a in enumerate(data.attendance)
        )
        command = RecordAttendance(
            cohort_id, session_id, attendance, data.comments, data.questions, data.reactions
        )
        outcome: Outcome[int] = await run_command(request, command)
        body = AttendanceOut(session_id, len(attendance), outcome.result)
        return Response(body, headers=command_headers(outcome, version=outcome.result))

    @post(
        "/{cohort_id:uuid}/sessions/{session_id:uuid}/feedback",
        guards=[requires_tenant],
        operation_id="giveFeedback",
        summary="Rate a session you attended (your own member token; a second rating replaces "
        "the first)",
        status_code=200,
    )
    async def give_feedback(
        self,
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        session_id: FromPath[UUID],
        data: JSONBody[FeedbackIn],
    ) -> Response[FeedbackOut]:
        member_id = own_member_id(principal_of(request))
        command = GiveFeedback(
            cohort_id, session_id, member_id, data.content, data.delivery, data.interaction
        )
        outcome: Outcome[int] = await run_command(request, command)
        body = FeedbackOut(session_id, member_id, outcome.result)
        return Response(body, headers=command_headers(outcome, version=outcome.result))

    @post(
        "/{cohort_id:uuid}/progress",
        guards=[WRITE],
        operation_id="recordProgress",
        summary="Record that an enrolled person completed a module of the pinned version",
        status_code=200,
    )
    async def record_progress(
        self,
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        data: JSONBody[ProgressIn],
    ) -> Response[ProgressRecorded]:
        command = CompleteModule(cohort_id, data.member_id, data.module_key, data.completed_on)
        outcome: Outcome[int] = await run_command(request, command)
        body = ProgressRecorded(data.member_id, data.module_key, outcome.result)
        return Response(body, headers=command_headers(outcome, version=outcome.result))

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
        request: Request[Any, Any, Any],
        cohort_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> ProgressPage:
        await read_after(request, [COHORTS.info, MEMBERS.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            cohort = await queries.get_cohort(conn, cohort_id)
            if cohort is None:
                raise NotFound(f"cohort {cohort_id} not found")
            policy = await queries.training_policy(conn)
            page = await queries.progress_of(conn, cohort_id, limit=limit, cursor=cursor)
        today = datetime.now(ZoneInfo(cohort.timezone)).date()
        expected = expected_percent(cohort.starts_on, cohort.ends_on, today)
        items = []
        for row in page.items:
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


class TransferController(Controller):
    path = "/v1/transfers"
    tags = ["Cohorts"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[WRITE],
        operation_id="transferMember",
        summary="Move a person from one cohort to another, atomically",
        description="Withdraws from `from_cohort_id` and enrols into `to_cohort_id` (a seat "
        "or the waitlist) in one transaction: when the person cannot join the target, they "
        "stay where they were.",
        status_code=200,
    )
    async def transfer(
        self, request: Request[Any, Any, Any], data: JSONBody[TransferIn]
    ) -> Response[EnrolmentOut]:
        command = Transfer(data.member_id, data.from_cohort_id, data.to_cohort_id, data.reason)
        outcome: Outcome[EnrolmentOutcome] = await run_command(request, command)
        body = enrolment_out(outcome.result)
        return Response(body, headers=command_headers(outcome, version=body.cohort.version))


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
    async def get_policy(self, request: Request[Any, Any, Any]) -> PolicyOut:
        await read_after(request, [COHORTS.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            policy = await queries.training_policy(conn)
        return PolicyOut(policy.at_risk_threshold, policy.retake_cooldown_days, policy.version)

    @put(
        "/",
        guards=[WRITE],
        operation_id="changeTrainingPolicy",
        summary="Change the at-risk threshold and the retake cool-down",
    )
    async def change_policy(
        self, request: Request[Any, Any, Any], data: JSONBody[PolicyIn]
    ) -> Response[PolicyOut]:
        command = ChangeTrainingPolicy(data.at_risk_threshold, data.retake_cooldown_days)
        outcome: Outcome[TrainingPolicy] = await run_command(request, command)
        policy = outcome.result
        body = PolicyOut(policy.at_risk_threshold, policy.retake_cooldown_days, policy.version)
        return Response(body, headers=command_headers(outcome, version=policy.version))


class MeController(Controller):
    path = "/v1/me"
    tags = ["Cohorts"]
    security = [{"bearer": []}]

    @get(
        "/cohorts",
        guards=[requires_tenant],
        operation_id="listMyCohorts",
        summary="Your cohorts: where you are enrolled or waiting (a member token)",
    )
    async def my_cohorts(
        self, request: Request[Any, Any, Any], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> MyCohortPage:
        principal = principal_of(request)
        member_id = own_member_id(principal)
        await read_after(request, [COHORTS.info])
        async with services_of(request).store.session(principal.tenant_id) as conn:
            page = await queries.cohorts_of_member(conn, member_id, limit=limit, cursor=cursor)
        return MyCohortPage(page.items, page.next_cursor)

    @get(
        "/sessions",
        guards=[requires_tenant],
        operation_id="listMySessions",
        summary="Sessions of the cohorts where you hold a seat, in time order (a member token)",
    )
    async def my_sessions(
        self, request: Request[Any, Any, Any], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> MySessionPage:
        principal = principal_of(request)
        member_id = own_member_id(principal)
        await read_after(request, [COHORTS.info])
        async with services_of(request).store.session(principal.tenant_id) as conn:
            page = await session_queries.sessions_of_member(
                conn, member_id, limit=limit, cursor=cursor
            )
        items = [
            MySessionOut(
                session_id=row.session_id,
                cohort_id=row.cohort_id,
                cohort_name=row.cohort_name,
                title=row.title,
                starts_at=row.starts_at,
                ends_at=row.starts_at + timedelta(minutes=row.duration_minutes),
                duration_minutes=row.duration_minutes,
                join_url=row.join_url,
            )
            for row in page.items
        ]
        return MySessionPage(items, page.next_cursor)


ROUTES = [CohortController, TransferController, PolicyController, MeController]
