"""Cohorts, their people, progress and the tenant's training policy, as the read model holds
them.

``position`` numbers people in the order they arrived in a cohort; the waitlist is the
waitlisted rows in that order, exactly as the aggregate keeps it. Why a cohort was cancelled
or a person withdrawn is not in the events (it may name people): the queries read it from
``training.cohort_reasons``, written with the events, where an erasure deletes or redacts it.
An enrolment withdrawn shows the reason of the latest event that withdrew that person: their
own withdrawal, or the cohort's cancellation.

The queries run in a transaction scoped to the caller's tenant (``ReadStore.session``):
row-level security hides every other tenant's rows, so another tenant's id reads as missing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import class_row

from training.cohorts.domain.policy import DEFAULT_AT_RISK_THRESHOLD, DEFAULT_RETAKE_COOLDOWN_DAYS
from training.cohorts.views.cursors import after_position, after_time, time_key
from training.cohorts.views.sessions import attendance_rate, sessions_of
from training.core.pagination import DATE, TIMESTAMP, UUID_KEY, Page, decode_cursor, page_of


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
    after = after_time(cursor)
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
    return page_of(rows, limit, lambda r: time_key(r.created_at, r.cohort_id))


async def list_enrolments(
    conn: AsyncConnection[Any],
    cohort_id: UUID,
    *,
    limit: int,
    cursor: str | None,
    status: str | None = None,
) -> Page[EnrolmentRecord]:
    """People of a cohort in the order they arrived; waitlisted ones carry their place."""
    after = after_position(cursor)
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
    after = after_position(cursor)
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
