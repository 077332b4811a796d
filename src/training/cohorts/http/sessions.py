"""Live sessions of a cohort over HTTP: schedule one (the video stays in the conferencing
tool), import its attendance and interaction counts, rate it, read its metrics, and each
engineer's own sessions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from training.cohorts.domain.cohorts import Attendance
from training.cohorts.handlers.cohorts import (
    GiveFeedback,
    RecordAttendance,
    ScheduleSession,
    version_written_at,
)
from training.cohorts.http.common import READ, WRITE, Name, own_member_id
from training.cohorts.views import cohorts as cohort_queries
from training.cohorts.views import sessions as queries
from training.cohorts.views.projection import COHORTS
from training.core.application import TrainingApplication
from training.core.errors import NotFound, RuleViolated
from training.core.http.commands import Commands, answer
from training.core.http.params import Cursor, Limit
from training.core.http.principal import Principal, requires_tenant
from training.core.http.reads import Reads
from training.core.outcome import Outcome
from training.core.pagination import DEFAULT_LIMIT

MAX_ATTENDANCE = 10_000
MAX_COUNT = 1_000_000_000
# Instants outside these years are typing errors; refusing them keeps date arithmetic (a
# session's end, a calendar's UTC times) far from the limits of datetime.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2199

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

SESSION_METRICS = (
    "Each session carries metrics computed from the imported attendance and feedback: "
    "`attendance_rate` = distinct attendees still enrolled / people enrolled in the cohort "
    "(0-1); `interaction_index` = (comments + questions + reactions) / duration_minutes, "
    "i.e. interactions per minute; `content_satisfaction` = the mean over feedback entries "
    "of the mean of the entry's three 1-5 ratings. Each is null when there is no data "
    "(no attendance import yet, nobody enrolled, no feedback)."
)

# -- bodies ----------------------------------------------------------------------------------


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


# -- answers ---------------------------------------------------------------------------------


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

    @classmethod
    def of(cls, row: queries.SessionRow) -> SessionOut:
        return cls(
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
            attendance_rate=queries.attendance_rate(row),
            interaction_index=queries.interaction_index(row),
            content_satisfaction=queries.content_satisfaction(row),
        )


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


class MySessionOut(msgspec.Struct, kw_only=True):
    session_id: UUID
    cohort_id: UUID
    cohort_name: str
    title: str
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int
    join_url: str

    @classmethod
    def of(cls, row: queries.SessionRow) -> MySessionOut:
        return cls(
            session_id=row.session_id,
            cohort_id=row.cohort_id,
            cohort_name=row.cohort_name,
            title=row.title,
            starts_at=row.starts_at,
            ends_at=row.starts_at + timedelta(minutes=row.duration_minutes),
            duration_minutes=row.duration_minutes,
            join_url=row.join_url,
        )


class MySessionPage(msgspec.Struct):
    items: list[MySessionOut]
    next_cursor: str | None


def check_instant(value: datetime, field: str) -> datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise RuleViolated(f"give a time in {EARLIEST_YEAR}-{LATEST_YEAR}", field=field)
    return value


class SessionController(Controller):
    path = "/v1"
    tags = ["Cohorts"]
    security = [{"bearer": []}]

    @post(
        "/cohorts/{cohort_id:uuid}/sessions",
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
        commands: NamedDependency[Commands],
        app: NamedDependency[TrainingApplication],
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
        outcome: Outcome[UUID] = await commands.run(command)
        version = await sync_to_thread(version_written_at, app, cohort_id, outcome.position)
        body = SessionCreated(outcome.result, cohort_id)
        location = f"/v1/cohorts/{cohort_id}/sessions"
        return answer(outcome, body, status=201, version=version, location=location)

    @get(
        "/cohorts/{cohort_id:uuid}/sessions",
        guards=[READ],
        operation_id="listSessions",
        summary="A cohort's sessions with attendance, interaction and satisfaction metrics",
        description=SESSION_METRICS + " Ordered by start time.",
    )
    async def list_sessions(
        self,
        reads: NamedDependency[Reads],
        cohort_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> SessionPage:
        await reads.after([COHORTS.info])
        async with reads.session() as conn:
            if await cohort_queries.get_cohort(conn, cohort_id) is None:
                raise NotFound(f"cohort {cohort_id} not found")
            page = await queries.list_sessions(conn, cohort_id, limit=limit, cursor=cursor)
        return SessionPage([SessionOut.of(row) for row in page.items], page.next_cursor)

    @put(
        "/cohorts/{cohort_id:uuid}/sessions/{session_id:uuid}/attendance",
        guards=[WRITE],
        operation_id="recordAttendance",
        summary="Import a session's attendance and interaction counts",
        description="From the conferencing tool's export. Replaces an earlier import of the "
        "same session. Only people enrolled in the cohort attend; several visits of one "
        "person count once (from the first join to the last leave).",
    )
    async def record_attendance(
        self,
        commands: NamedDependency[Commands],
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
        outcome: Outcome[int] = await commands.run(command)
        body = AttendanceOut(session_id, len(attendance), outcome.result)
        return answer(outcome, body, version=outcome.result)

    @post(
        "/cohorts/{cohort_id:uuid}/sessions/{session_id:uuid}/feedback",
        guards=[requires_tenant],
        operation_id="giveFeedback",
        summary="Rate a session you attended (your own member token; a second rating replaces "
        "the first)",
        status_code=200,
    )
    async def give_feedback(
        self,
        commands: NamedDependency[Commands],
        principal: NamedDependency[Principal],
        cohort_id: FromPath[UUID],
        session_id: FromPath[UUID],
        data: JSONBody[FeedbackIn],
    ) -> Response[FeedbackOut]:
        member_id = own_member_id(principal)
        command = GiveFeedback(
            cohort_id, session_id, member_id, data.content, data.delivery, data.interaction
        )
        outcome: Outcome[int] = await commands.run(command)
        body = FeedbackOut(session_id, member_id, outcome.result)
        return answer(outcome, body, version=outcome.result)

    @get(
        "/me/sessions",
        guards=[requires_tenant],
        operation_id="listMySessions",
        summary="Sessions of the cohorts where you hold a seat, in time order (a member token)",
    )
    async def my_sessions(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> MySessionPage:
        member_id = own_member_id(principal)
        await reads.after([COHORTS.info])
        async with reads.session() as conn:
            page = await queries.sessions_of_member(conn, member_id, limit=limit, cursor=cursor)
        return MySessionPage([MySessionOut.of(row) for row in page.items], page.next_cursor)
