"""Read model of cohorts, their enrolments, live sessions and progress, and the queries over it.

Each event's rows are written in one transaction scoped to the event's tenant, together with
the tracking position. An enrolment of a thousand people is one event and so one transaction
(``executemany``, which psycopg sends as one pipeline). ``position`` numbers people in the
order they arrived in a cohort; the waitlist is the waitlisted rows in that order, exactly as
the aggregate keeps it. Session metrics are computed at read time from the imported counts,
attendance and feedback, so a late import or a withdrawal is reflected at once.

Why a cohort was cancelled or a person withdrawn is not in the events (it may name people):
the queries read it from ``training.cohort_reasons``, written with the events, where an
erasure deletes or redacts it. An enrolment withdrawn shows the reason of the latest event
that withdrew that person: their own withdrawal, or the cohort's cancellation.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import AsyncConnection, Cursor
from psycopg.rows import class_row

from training.cohorts.domain.cohorts import Cohort
from training.cohorts.domain.policy import (
    DEFAULT_AT_RISK_THRESHOLD,
    DEFAULT_RETAKE_COOLDOWN_DAYS,
    TrainingPolicy,
)
from training.core.pagination import (
    BIGINT,
    DATE,
    TIMESTAMP,
    UUID_KEY,
    InvalidCursor,
    Page,
    decode_cursor,
    page_of,
)
from training.core.views import ProjectionSpec, TenantScopedView, Writer

# -- records ---------------------------------------------------------------------------------


class CohortRecord(msgspec.Struct, kw_only=True):
    cohort_id: UUID
    name: str
    curriculum_id: UUID
    curriculum_version: int
    module_count: int
    starts_on: date
    ends_on: date
    timezone: str
    capacity: int
    status: str
    facilitators: list[UUID]
    cancel_reason: str | None
    enrolled: int
    waitlisted: int
    version: int
    created_at: datetime
    updated_at: datetime


class CohortSummary(CohortRecord, kw_only=True):
    withdrawn: int
    sessions: int
    average_completion_percent: float | None
    average_attendance_rate: float | None


class EnrolmentRecord(msgspec.Struct, kw_only=True):
    member_id: UUID
    external_id: str | None
    status: str
    position: int
    waitlist_position: int | None
    enrolled_at: datetime | None
    waitlisted_at: datetime | None
    withdrawn_at: datetime | None
    withdrawn_reason: str | None
    modules_completed: int


class SessionRow(msgspec.Struct, kw_only=True):
    session_id: UUID
    cohort_id: UUID
    cohort_name: str
    cohort_status: str
    title: str
    starts_at: datetime
    duration_minutes: int
    join_url: str
    comments: int
    questions: int
    reactions: int
    attendance_recorded: bool
    attendees: int
    enrolled: int
    feedback_count: int
    content_satisfaction: float | None


class ProgressRow(msgspec.Struct, kw_only=True):
    member_id: UUID
    external_id: str | None
    position: int
    modules_completed: int


class MyCohortRow(CohortRecord, kw_only=True):
    placement: str
    waitlist_position: int | None


class PolicyRecord(msgspec.Struct, kw_only=True):
    at_risk_threshold: int
    retake_cooldown_days: int
    version: int | None


DEFAULT_POLICY = PolicyRecord(
    at_risk_threshold=DEFAULT_AT_RISK_THRESHOLD,
    retake_cooldown_days=DEFAULT_RETAKE_COOLDOWN_DAYS,
    version=None,
)

# -- the view --------------------------------------------------------------------------------

UPSERT_ENROLMENT = (
    "INSERT INTO training.cohort_enrolments (cohort_id, member_id, tenant_id, status, position, "
    "enrolled_at, waitlisted_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (cohort_id, member_id) DO UPDATE SET status = EXCLUDED.status, "
    "position = EXCLUDED.position, enrolled_at = EXCLUDED.enrolled_at, "
    "waitlisted_at = EXCLUDED.waitlisted_at, withdrawn_at = NULL, "
    "promoted_version = NULL"
)

UPSERT_ATTENDANCE = (
    "INSERT INTO training.session_attendance (session_id, member_id, tenant_id, joined_at, "
    "left_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (session_id, member_id) DO UPDATE SET "
    "joined_at = least(training.session_attendance.joined_at, EXCLUDED.joined_at), "
    "left_at = greatest(training.session_attendance.left_at, EXCLUDED.left_at)"
)


class CohortsView(TenantScopedView):
    tables = (
        "training.cohorts",
        "training.cohort_enrolments",
        "training.cohort_sessions",
        "training.session_attendance",
        "training.session_feedback",
        "training.cohort_module_completions",
        "training.training_policies",
    )

    def insert(self, e: Cohort.Scheduled, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.cohorts (cohort_id, tenant_id, name, curriculum_id, "
                "curriculum_version, module_count, starts_on, ends_on, timezone, capacity, "
                "status, facilitators, version, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'planned', %s, %s, %s, %s)",
                (
                    e.originator_id,
                    e.tenant_id,
                    e.name,
                    e.curriculum_id,
                    e.curriculum_version,
                    len(e.module_keys),
                    e.starts_on,
                    e.ends_on,
                    e.timezone,
                    e.capacity,
                    list(e.facilitators),
                    e.originator_version,
                    e.timestamp,
                    e.timestamp,
                ),
            )

        self.write(tracking, e.tenant_id, rows)

    def update(
        self,
        e: Cohort.Event,
        tracking: Tracking,
        changes: dict[str, Any],
        more: Writer | None = None,
    ) -> None:
        """Sets ``changes`` on the cohort row, then ``more(cur)`` writes the other rows."""
        # Column names come from this module only, never from input.
        assignments = "".join(f", {column} = %({column})s" for column in changes)

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.cohorts SET version = %(version)s, updated_at = %(at)s"
                f"{assignments} WHERE cohort_id = %(id)s",
                {
                    "version": e.originator_version,
                    "at": e.timestamp,
                    "id": e.originator_id,
                    **changes,
                },
            )
            if more is not None:
                more(cur)

        self.write(tracking, e.tenant_id, rows)

    def place(
        self, e: Cohort.Enrolled | Cohort.Waitlisted, tracking: Tracking, status: str
    ) -> None:
        def more(cur: Cursor[Any]) -> None:
            cur.execute(
                "SELECT coalesce(max(position), 0) AS last FROM training.cohort_enrolments "
                "WHERE cohort_id = %s",
                (e.originator_id,),
            )
            row = cur.fetchone()
            last = int(row["last"]) if row else 0  # the datastore's rows are dicts
            seated = status == "enrolled"
            cur.executemany(
                UPSERT_ENROLMENT,
                [
                    (
                        e.originator_id,
                        member_id,
                        e.tenant_id,
                        status,
                        last + offset,
                        e.timestamp if seated else None,
                        None if seated else e.timestamp,
                    )
                    for offset, member_id in enumerate(e.member_ids, start=1)
                ],
            )

        self.update(e, tracking, {}, more)

    def withdraw(self, e: Cohort.Event, tracking: Tracking, members: list[UUID]) -> None:
        def more(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.cohort_enrolments SET status = 'withdrawn', withdrawn_at = %s "
                "WHERE cohort_id = %s AND member_id = ANY(%s)",
                (e.timestamp, e.originator_id, members),
            )

        changes: dict[str, Any] = {}
        if isinstance(e, Cohort.Cancelled):
            changes = {"status": "cancelled"}
        self.update(e, tracking, changes, more)

    def promote(self, e: Cohort.Promoted, tracking: Tracking) -> None:
        def more(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.cohort_enrolments SET status = 'enrolled', enrolled_at = %s, "
                "promoted_version = %s WHERE cohort_id = %s AND member_id = %s",
                (e.timestamp, e.originator_version, e.originator_id, e.member_id),
            )

        self.update(e, tracking, {}, more)

    def schedule_session(self, e: Cohort.SessionScheduled, tracking: Tracking) -> None:
        session = e.session

        def more(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.cohort_sessions (session_id, cohort_id, tenant_id, title, "
                "starts_at, duration_minutes, join_url) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    session.session_id,
                    e.originator_id,
                    e.tenant_id,
                    session.title,
                    session.starts_at,
                    session.duration_minutes,
                    session.join_url,
                ),
            )

        self.update(e, tracking, {}, more)

    def record_attendance(self, e: Cohort.AttendanceRecorded, tracking: Tracking) -> None:
        """An import replaces the session's earlier one; several visits of one person merge
        into one row from their first join to their last leave."""

        def more(cur: Cursor[Any]) -> None:
            cur.execute(
                "DELETE FROM training.session_attendance WHERE session_id = %s", (e.session_id,)
            )
            if e.attendance:
                cur.executemany(
                    UPSERT_ATTENDANCE,
                    [
                        (e.session_id, a.member_id, e.tenant_id, a.joined_at, a.left_at)
                        for a in e.attendance
                    ],
                )
            cur.execute(
                "UPDATE training.cohort_sessions SET comments = %s, questions = %s, "
                "reactions = %s, attendance_recorded = true WHERE session_id = %s",
                (e.comments, e.questions, e.reactions, e.session_id),
            )

        self.update(e, tracking, {}, more)

    def give_feedback(self, e: Cohort.FeedbackGiven, tracking: Tracking) -> None:
        def more(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.session_feedback (session_id, member_id, tenant_id, "
                "content, delivery, interaction, given_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (session_id, member_id) DO UPDATE SET content = EXCLUDED.content, "
                "delivery = EXCLUDED.delivery, interaction = EXCLUDED.interaction, "
                "given_at = EXCLUDED.given_at",
                (
                    e.session_id,
                    e.member_id,
                    e.tenant_id,
                    e.content,
                    e.delivery,
                    e.interaction,
                    e.timestamp,
                ),
            )

        self.update(e, tracking, {}, more)

    def complete_module(self, e: Cohort.ModuleCompleted, tracking: Tracking) -> None:
        def more(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.cohort_module_completions (cohort_id, member_id, "
                "module_key, tenant_id, completed_on) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (e.originator_id, e.member_id, e.module_key, e.tenant_id, e.completed_on),
            )
            cur.execute(
                "UPDATE training.cohort_enrolments SET modules_completed = ("
                "  SELECT count(*) FROM training.cohort_module_completions c "
                "  WHERE c.cohort_id = %(cohort)s AND c.member_id = %(member)s) "
                "WHERE cohort_id = %(cohort)s AND member_id = %(member)s",
                {"cohort": e.originator_id, "member": e.member_id},
            )

        self.update(e, tracking, {}, more)

    def set_policy(
        self, e: TrainingPolicy.Adopted | TrainingPolicy.Changed, tracking: Tracking
    ) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.training_policies (tenant_id, at_risk_threshold, "
                "retake_cooldown_days, version, updated_at) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (tenant_id) DO UPDATE SET "
                "at_risk_threshold = EXCLUDED.at_risk_threshold, "
                "retake_cooldown_days = EXCLUDED.retake_cooldown_days, "
                "version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
                (
                    e.tenant_id,
                    e.at_risk_threshold,
                    e.retake_cooldown_days,
                    e.originator_version,
                    e.timestamp,
                ),
            )

        self.write(tracking, e.tenant_id, rows)


class CohortsProjection(Projection[CohortsView]):
    name = "cohorts"
    topics = tuple(
        get_topic(cls)
        for cls in (
            Cohort.Scheduled,
            Cohort.CapacityChanged,
            Cohort.Started,
            Cohort.Completed,
            Cohort.Cancelled,
            Cohort.Enrolled,
            Cohort.Waitlisted,
            Cohort.Withdrawn,
            Cohort.Promoted,
            Cohort.SessionScheduled,
            Cohort.AttendanceRecorded,
            Cohort.FeedbackGiven,
            Cohort.ModuleCompleted,
            TrainingPolicy.Adopted,
            TrainingPolicy.Changed,
        )
    )

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, e: Cohort.Scheduled, tracking: Tracking) -> None:
        self.view.insert(e, tracking)

    @process_event.register
    def _(self, e: Cohort.CapacityChanged, tracking: Tracking) -> None:
        self.view.update(e, tracking, {"capacity": e.capacity})

    @process_event.register
    def _(self, e: Cohort.Started, tracking: Tracking) -> None:
        self.view.update(e, tracking, {"status": "running"})

    @process_event.register
    def _(self, e: Cohort.Completed, tracking: Tracking) -> None:
        self.view.update(e, tracking, {"status": "completed"})

    @process_event.register
    def _(self, e: Cohort.Cancelled, tracking: Tracking) -> None:
        self.view.withdraw(e, tracking, list(e.withdrawn))

    @process_event.register
    def _(self, e: Cohort.Enrolled, tracking: Tracking) -> None:
        self.view.place(e, tracking, "enrolled")

    @process_event.register
    def _(self, e: Cohort.Waitlisted, tracking: Tracking) -> None:
        self.view.place(e, tracking, "waitlisted")

    @process_event.register
    def _(self, e: Cohort.Withdrawn, tracking: Tracking) -> None:
        self.view.withdraw(e, tracking, [e.member_id])

    @process_event.register
    def _(self, e: Cohort.Promoted, tracking: Tracking) -> None:
        self.view.promote(e, tracking)

    @process_event.register
    def _(self, e: Cohort.SessionScheduled, tracking: Tracking) -> None:
        self.view.schedule_session(e, tracking)

    @process_event.register
    def _(self, e: Cohort.AttendanceRecorded, tracking: Tracking) -> None:
        self.view.record_attendance(e, tracking)

    @process_event.register
    def _(self, e: Cohort.FeedbackGiven, tracking: Tracking) -> None:
        self.view.give_feedback(e, tracking)

    @process_event.register
    def _(self, e: Cohort.ModuleCompleted, tracking: Tracking) -> None:
        self.view.complete_module(e, tracking)

    @process_event.register
    def _(self, e: TrainingPolicy.Adopted, tracking: Tracking) -> None:
        self.view.set_policy(e, tracking)

    @process_event.register
    def _(self, e: TrainingPolicy.Changed, tracking: Tracking) -> None:
        self.view.set_policy(e, tracking)


# -- queries ---------------------------------------------------------------------------------
# They run in a transaction scoped to the caller's tenant (ReadStore.session): row-level
# security hides every other tenant's rows, so another tenant's id reads as missing.

COUNTS = (
    "(SELECT count(*) FROM training.cohort_enrolments x "
    " WHERE x.cohort_id = c.cohort_id AND x.status = 'enrolled')::int AS enrolled, "
    "(SELECT count(*) FROM training.cohort_enrolments x "
    " WHERE x.cohort_id = c.cohort_id AND x.status = 'waitlisted')::int AS waitlisted"
)
# A cohort is cancelled once: its reason is the one row of the cohort about nobody.
CANCEL_REASON = (
    "(SELECT x.reason FROM training.cohort_reasons x "
    " WHERE x.cohort_id = c.cohort_id AND x.member_id IS NULL "
    " ORDER BY x.version DESC LIMIT 1) AS cancel_reason"
)
COHORT_COLUMNS = (
    "c.cohort_id, c.name, c.curriculum_id, c.curriculum_version, c.module_count, c.starts_on, "
    f"c.ends_on, c.timezone, c.capacity, c.status, c.facilitators, {CANCEL_REASON}, "
    f"{COUNTS}, c.version, c.created_at, c.updated_at"
)
# The reason of the latest event that withdrew the person (their withdrawal or the cohort's
# cancellation), while they are withdrawn.
WITHDRAWN_REASON = (
    "CASE WHEN r.status = 'withdrawn' THEN "
    "(SELECT x.reason FROM training.cohort_reasons x "
    " WHERE x.cohort_id = r.cohort_id AND r.member_id = ANY(x.withdrawn) "
    " ORDER BY x.version DESC LIMIT 1) END AS withdrawn_reason"
)

# Session metrics: attendees are distinct people still enrolled in the cohort; feedback is
# the mean, over the entries, of the mean of an entry's three ratings.
SESSION_COLUMNS = (
    "s.session_id, s.cohort_id, c.name AS cohort_name, c.status AS cohort_status, s.title, "
    "s.starts_at, s.duration_minutes, s.join_url, s.comments, s.questions, s.reactions, "
    "s.attendance_recorded, "
    "(SELECT count(*) FROM training.session_attendance a "
    " JOIN training.cohort_enrolments x ON x.cohort_id = s.cohort_id "
    "  AND x.member_id = a.member_id AND x.status = 'enrolled' "
    " WHERE a.session_id = s.session_id)::int AS attendees, "
    "(SELECT count(*) FROM training.cohort_enrolments x "
    " WHERE x.cohort_id = s.cohort_id AND x.status = 'enrolled')::int AS enrolled, "
    "(SELECT count(*) FROM training.session_feedback f "
    " WHERE f.session_id = s.session_id)::int AS feedback_count, "
    "(SELECT avg((f.content + f.delivery + f.interaction) / 3.0) "
    " FROM training.session_feedback f WHERE f.session_id = s.session_id)::float8 "
    " AS content_satisfaction"
)
FROM_SESSIONS = "training.cohort_sessions s JOIN training.cohorts c ON c.cohort_id = s.cohort_id"

MAX_FEED_SESSIONS = 2000


def _after_time(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The (timestamp, id) a cursor of the time-ordered queries names."""
    if cursor is None:
        return None
    values = decode_cursor(cursor, TIMESTAMP, UUID_KEY)
    refused = InvalidCursor("the cursor is not one this API returned")
    try:
        at = datetime.fromisoformat(str(values[0]))
        key = UUID(str(values[1]))
    except ValueError:
        raise refused from None
    if at.tzinfo is None:
        raise refused
    return at, key


def _after_position(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    value = decode_cursor(cursor, BIGINT)[0]
    if type(value) is not int or not 0 <= value < 2**62:
        raise InvalidCursor("the cursor is not one this API returned")
    return value


def _time_key(at: datetime, key: UUID) -> list[Any]:
    return [at.isoformat(), str(key)]


async def get_cohort(conn: AsyncConnection[Any], cohort_id: UUID) -> CohortRecord | None:
    async with conn.cursor(row_factory=class_row(CohortRecord)) as cur:
        await cur.execute(
            f"SELECT {COHORT_COLUMNS} FROM training.cohorts c WHERE c.cohort_id = %s",
            (cohort_id,),
        )
        return await cur.fetchone()


async def cohort_summary(conn: AsyncConnection[Any], cohort_id: UUID) -> CohortSummary | None:
    """A cohort with its counts, average completion and average attendance rate."""
    async with conn.cursor(row_factory=class_row(CohortSummary)) as cur:
        await cur.execute(
            f"SELECT {COHORT_COLUMNS}, "
            "(SELECT count(*) FROM training.cohort_enrolments x "
            " WHERE x.cohort_id = c.cohort_id AND x.status = 'withdrawn')::int AS withdrawn, "
            "(SELECT count(*) FROM training.cohort_sessions s "
            " WHERE s.cohort_id = c.cohort_id)::int AS sessions, "
            "(SELECT round(avg(x.modules_completed) * 100.0 / nullif(c.module_count, 0), 2) "
            " FROM training.cohort_enrolments x "
            " WHERE x.cohort_id = c.cohort_id AND x.status = 'enrolled')::float8 "
            " AS average_completion_percent, "
            "NULL::float8 AS average_attendance_rate "
            "FROM training.cohorts c WHERE c.cohort_id = %s",
            (cohort_id,),
        )
        summary = await cur.fetchone()
    if summary is None:
        return None
    rates = [
        rate
        for session in await sessions_of(conn, cohort_id)
        if (rate := attendance_rate(session)) is not None
    ]
    if rates:
        summary.average_attendance_rate = round(sum(rates) / len(rates), 4)
    return summary


async def list_cohorts(
    conn: AsyncConnection[Any],
    *,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    curriculum_id: UUID | None = None,
) -> Page[CohortRecord]:
    """Cohorts in the order they were scheduled."""
    after = _after_time(cursor)
    async with conn.cursor(row_factory=class_row(CohortRecord)) as cur:
        await cur.execute(
            f"SELECT {COHORT_COLUMNS} FROM training.cohorts c "
            "WHERE (%(status)s::text IS NULL OR c.status = %(status)s) "
            "AND (%(curriculum)s::uuid IS NULL OR c.curriculum_id = %(curriculum)s) "
            "AND (%(after_at)s::timestamptz IS NULL "
            "     OR (c.created_at, c.cohort_id) > (%(after_at)s::timestamptz, %(after_id)s)) "
            "ORDER BY c.created_at, c.cohort_id LIMIT %(limit)s",
            {
                "status": status,
                "curriculum": curriculum_id,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: _time_key(r.created_at, r.cohort_id))


async def list_enrolments(
    conn: AsyncConnection[Any],
    cohort_id: UUID,
    *,
    limit: int,
    cursor: str | None,
    status: str | None = None,
) -> Page[EnrolmentRecord]:
    """People of a cohort in the order they arrived; waitlisted ones carry their place."""
    after = _after_position(cursor)
    async with conn.cursor(row_factory=class_row(EnrolmentRecord)) as cur:
        await cur.execute(
            "WITH ranked AS ("
            "  SELECT e.*, CASE WHEN e.status = 'waitlisted' THEN "
            "    row_number() OVER (PARTITION BY e.status ORDER BY e.position) END "
            "    AS waitlist_position "
            "  FROM training.cohort_enrolments e WHERE e.cohort_id = %(cohort)s "
            "  AND (%(status)s::text IS NULL OR e.status = %(status)s)) "
            "SELECT r.member_id, m.external_id, r.status, r.position, "
            "r.waitlist_position::int AS waitlist_position, r.enrolled_at, r.waitlisted_at, "
            f"r.withdrawn_at, {WITHDRAWN_REASON}, r.modules_completed "
            "FROM ranked r LEFT JOIN training.members m ON m.member_id = r.member_id "
            "WHERE (%(after)s::bigint IS NULL OR r.position > %(after)s) "
            "ORDER BY r.position LIMIT %(limit)s",
            {"cohort": cohort_id, "status": status, "after": after, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.position])


async def sessions_of(conn: AsyncConnection[Any], cohort_id: UUID) -> list[SessionRow]:
    async with conn.cursor(row_factory=class_row(SessionRow)) as cur:
        await cur.execute(
            f"SELECT {SESSION_COLUMNS} FROM {FROM_SESSIONS} WHERE s.cohort_id = %s "
            "ORDER BY s.starts_at, s.session_id LIMIT %s",
            (cohort_id, MAX_FEED_SESSIONS),
        )
        return await cur.fetchall()


async def list_sessions(
    conn: AsyncConnection[Any], cohort_id: UUID, *, limit: int, cursor: str | None
) -> Page[SessionRow]:
    after = _after_time(cursor)
    async with conn.cursor(row_factory=class_row(SessionRow)) as cur:
        await cur.execute(
            f"SELECT {SESSION_COLUMNS} FROM {FROM_SESSIONS} WHERE s.cohort_id = %(cohort)s "
            "AND (%(after_at)s::timestamptz IS NULL "
            "     OR (s.starts_at, s.session_id) > (%(after_at)s::timestamptz, %(after_id)s)) "
            "ORDER BY s.starts_at, s.session_id LIMIT %(limit)s",
            {
                "cohort": cohort_id,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: _time_key(r.starts_at, r.session_id))


async def sessions_of_member(
    conn: AsyncConnection[Any],
    member_id: UUID,
    *,
    limit: int = MAX_FEED_SESSIONS,
    cursor: str | None = None,
) -> Page[SessionRow]:
    """Sessions of the cohorts where the person holds a seat, in time order."""
    after = _after_time(cursor)
    async with conn.cursor(row_factory=class_row(SessionRow)) as cur:
        await cur.execute(
            f"SELECT {SESSION_COLUMNS} FROM {FROM_SESSIONS} "
            "JOIN training.cohort_enrolments me ON me.cohort_id = s.cohort_id "
            " AND me.member_id = %(member)s AND me.status = 'enrolled' "
            "WHERE (%(after_at)s::timestamptz IS NULL "
            "     OR (s.starts_at, s.session_id) > (%(after_at)s::timestamptz, %(after_id)s)) "
            "ORDER BY s.starts_at, s.session_id LIMIT %(limit)s",
            {
                "member": member_id,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: _time_key(r.starts_at, r.session_id))


async def session_exists(conn: AsyncConnection[Any], cohort_id: UUID, session_id: UUID) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM training.cohort_sessions WHERE cohort_id = %s AND session_id = %s",
        (cohort_id, session_id),
    )
    return await cur.fetchone() is not None


async def cohorts_of_member(
    conn: AsyncConnection[Any], member_id: UUID, *, limit: int, cursor: str | None
) -> Page[MyCohortRow]:
    """Cohorts where the person is enrolled or waiting, with their place on the waitlist."""
    after = decode_cursor(cursor, DATE, TIMESTAMP, UUID_KEY) if cursor else None
    async with conn.cursor(row_factory=class_row(MyCohortRow)) as cur:
        await cur.execute(
            f"SELECT {COHORT_COLUMNS}, me.status AS placement, "
            "CASE WHEN me.status = 'waitlisted' THEN ("
            "  SELECT count(*) FROM training.cohort_enrolments w WHERE w.cohort_id = c.cohort_id "
            "  AND w.status = 'waitlisted' AND w.position <= me.position)::int END "
            "  AS waitlist_position "
            "FROM training.cohorts c JOIN training.cohort_enrolments me "
            "  ON me.cohort_id = c.cohort_id AND me.member_id = %(member)s "
            "  AND me.status IN ('enrolled', 'waitlisted') "
            "WHERE (%(on)s::date IS NULL OR (c.starts_on, c.created_at, c.cohort_id) > "
            "  (%(on)s::date, %(at)s::timestamptz, %(id)s::uuid)) "
            "ORDER BY c.starts_on, c.created_at, c.cohort_id LIMIT %(limit)s",
            {
                "member": member_id,
                "on": after[0] if after else None,
                "at": after[1] if after else None,
                "id": after[2] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(
        rows, limit, lambda r: [r.starts_on.isoformat(), r.created_at.isoformat(), str(r.cohort_id)]
    )


async def progress_of(
    conn: AsyncConnection[Any], cohort_id: UUID, *, limit: int, cursor: str | None
) -> Page[ProgressRow]:
    """The people enrolled in a cohort (in arrival order) and how many modules each finished."""
    after = _after_position(cursor)
    async with conn.cursor(row_factory=class_row(ProgressRow)) as cur:
        await cur.execute(
            "SELECT e.member_id, m.external_id, e.position, e.modules_completed "
            "FROM training.cohort_enrolments e "
            "LEFT JOIN training.members m ON m.member_id = e.member_id "
            "WHERE e.cohort_id = %(cohort)s AND e.status = 'enrolled' "
            "AND (%(after)s::bigint IS NULL OR e.position > %(after)s) "
            "ORDER BY e.position LIMIT %(limit)s",
            {"cohort": cohort_id, "after": after, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.position])


async def training_policy(conn: AsyncConnection[Any]) -> PolicyRecord:
    """The tenant's policy, or the defaults when it never recorded one."""
    async with conn.cursor(row_factory=class_row(PolicyRecord)) as cur:
        await cur.execute(
            "SELECT at_risk_threshold, retake_cooldown_days, version "
            "FROM training.training_policies WHERE tenant_id = training.current_tenant()"
        )
        found = await cur.fetchone()
    return found or DEFAULT_POLICY


# -- metrics (documented in the API) ---------------------------------------------------------


def attendance_rate(session: SessionRow) -> float | None:
    """Distinct enrolled attendees / people enrolled in the cohort; None without an import."""
    if not session.attendance_recorded or session.enrolled == 0:
        return None
    return round(session.attendees / session.enrolled, 4)


def interaction_index(session: SessionRow) -> float | None:
    """(comments + questions + reactions) / duration in minutes: interactions per minute."""
    if not session.attendance_recorded:
        return None
    total = session.comments + session.questions + session.reactions
    return round(total / session.duration_minutes, 4)


def content_satisfaction(session: SessionRow) -> float | None:
    """Mean over feedback entries of the mean of the three 1-5 ratings; None without any."""
    if session.content_satisfaction is None:
        return None
    return round(session.content_satisfaction, 4)


async def withdrawal_reasons_of_member(
    conn: AsyncConnection[Any], member_id: UUID
) -> list[dict[str, Any]]:
    """Why the member was withdrawn from cohorts, oldest first (for the export of what is
    held about them; a cohort's cancellation reason is about the cohort)."""
    cur = await conn.execute(
        "SELECT cohort_id, reason, given_at FROM training.cohort_reasons "
        "WHERE member_id = %s ORDER BY given_at, cohort_id, version",
        (member_id,),
    )
    return [
        {"cohort_id": str(row[0]), "reason": row[1], "given_at": row[2]}
        for row in await cur.fetchall()
    ]


# The read model as the runners and read-your-writes know it.
COHORTS = ProjectionSpec(CohortsProjection, CohortsView)
