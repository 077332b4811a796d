"""Live sessions as the cohorts' read model holds them, and their metrics.

Session metrics are computed at read time from the imported counts, attendance and feedback,
so a late import or a withdrawal is reflected at once. The queries run in a transaction
scoped to the caller's tenant (``ReadStore.session``): row-level security hides every other
tenant's rows, so another tenant's id reads as missing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import class_row

from training.cohorts.views.cursors import after_time, time_key
from training.core.pagination import Page, page_of


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
    after = after_time(cursor)
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
    return page_of(rows, limit, lambda r: time_key(r.starts_at, r.session_id))


async def sessions_of_member(
    conn: AsyncConnection[Any],
    member_id: UUID,
    *,
    limit: int = MAX_FEED_SESSIONS,
    cursor: str | None = None,
) -> Page[SessionRow]:
    """Sessions of the cohorts where the person holds a seat, in time order."""
    after = after_time(cursor)
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
    return page_of(rows, limit, lambda r: time_key(r.starts_at, r.session_id))


class MyFeedback(msgspec.Struct, kw_only=True):
    session_id: UUID
    content: int
    delivery: int
    interaction: int


async def sessions_attended_by(
    conn: AsyncConnection[Any], member_id: UUID, session_ids: list[UUID]
) -> set[UUID]:
    """Which of ``session_ids`` the person attended (by the imported attendance)."""
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT session_id FROM training.session_attendance "
            "WHERE member_id = %s AND session_id = ANY(%s)",
            (member_id, session_ids),
        )
        return {row[0] for row in await cur.fetchall()}


async def feedback_of_member(
    conn: AsyncConnection[Any], member_id: UUID, session_ids: list[UUID]
) -> dict[UUID, MyFeedback]:
    """The person's own ratings of ``session_ids``, by session."""
    async with conn.cursor(row_factory=class_row(MyFeedback)) as cur:
        await cur.execute(
            "SELECT session_id, content, delivery, interaction FROM training.session_feedback "
            "WHERE member_id = %s AND session_id = ANY(%s)",
            (member_id, session_ids),
        )
        return {row.session_id: row for row in await cur.fetchall()}


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
