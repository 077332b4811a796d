"""Read model of assessments: attempts, results, responses, evidence, parameter versions.

Each event's rows are written in one transaction scoped to the event's tenant, together with
the tracking position. An attempt's original result and each rescoring are separate rows of
``assessment_results`` (the first is never replaced). Item responses are kept for the
calibration alone; no query here that serves people returns them. Answer keys never reach
this model: a response records only whether it was right.
"""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import AsyncConnection, Cursor
from psycopg.rows import class_row

from training.assessments.domain.attempts import AssessmentAttempt, Result
from training.assessments.domain.evidence import SkillEvidence
from training.assessments.domain.items import ItemCalibration
from training.core.pagination import (
    INT,
    TIMESTAMP,
    UUID_KEY,
    InvalidCursor,
    Page,
    decode_cursor,
    page_of,
)
from training.core.views import ProjectionSpec, TenantScopedView

# -- records ---------------------------------------------------------------------------------


class AttemptRecord(msgspec.Struct, kw_only=True):
    attempt_id: UUID
    member_id: UUID
    skill: str
    status: str
    parameter_version: int
    answered: int
    theta: float | None
    se: float | None
    level: int | None
    started_at: datetime
    completed_at: datetime | None
    ended_at: datetime | None


class ScoredResult(msgspec.Struct, kw_only=True):
    """One scoring of a completed attempt, with when the attempt itself completed."""

    attempt_id: UUID
    member_id: UUID
    skill: str
    parameter_version: int
    theta: float
    se: float
    level: int
    items: int
    original: bool
    scored_at: datetime
    completed_at: datetime


class EvidenceRecord(msgspec.Struct, kw_only=True):
    evidence_id: UUID
    member_id: UUID
    kind: str
    skill: str
    observed_level: int
    link: str | None
    note: str
    recorded_at: datetime
    recorded_by: str


# A group's results per skill are shown only when at least this many people of the group
# have one (k-anonymity): the API, the pages and the reports alike.
MIN_GROUP = 5


class GroupSkillRow(msgspec.Struct, kw_only=True):
    skill: str
    people: int
    mean_level: float
    mean_se: float


class ParameterVersionRecord(msgspec.Struct, kw_only=True):
    version: int
    published_at: datetime
    responses_used: int


# -- the view --------------------------------------------------------------------------------

INSERT_RESULT = (
    "INSERT INTO training.assessment_results (attempt_id, parameter_version, tenant_id, "
    "member_id, skill, theta, se, level, items, original, scored_at) "
    "SELECT a.attempt_id, %(version)s, a.tenant_id, a.member_id, a.skill, %(theta)s, %(se)s, "
    "%(level)s, %(items)s, %(original)s, %(at)s "
    "FROM training.assessment_attempts a WHERE a.attempt_id = %(attempt)s"
)


def _result_row(e: AssessmentAttempt.Event, result: Result, *, original: bool) -> dict[str, Any]:
    return {
        "attempt": e.originator_id,
        "version": result.parameter_version,
        "theta": result.theta,
        "se": result.se,
        "level": result.level,
        "items": result.items,
        "original": original,
        "at": e.timestamp,
    }


class AssessmentsView(TenantScopedView):
    tables = (
        "training.assessment_attempts",
        "training.assessment_results",
        "training.assessment_responses",
        "training.skill_evidence_streams",
        "training.skill_evidence",
        "training.item_parameter_versions",
    )

    def attempt_started(self, e: AssessmentAttempt.Started, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.assessment_attempts (attempt_id, tenant_id, member_id, "
                "skill, status, parameter_version, started_at) "
                "VALUES (%s, %s, %s, %s, 'in_progress', %s, %s)",
                (
                    e.originator_id,
                    e.tenant_id,
                    e.member_id,
                    e.skill,
                    e.parameter_version,
                    e.timestamp,
                ),
            )

        self.write(tracking, e.tenant_id, rows)

    def response_recorded(self, e: AssessmentAttempt.ResponseRecorded, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            # One statement (one round trip): this runs for every answer of every engineer.
            cur.execute(
                "WITH a AS (UPDATE training.assessment_attempts SET answered = %(position)s "
                "  WHERE attempt_id = %(attempt)s "
                "  RETURNING attempt_id, tenant_id, member_id, skill) "
                "INSERT INTO training.assessment_responses (attempt_id, position, tenant_id, "
                "member_id, skill, item_id, correct, late, answered_at) "
                "SELECT a.attempt_id, %(position)s, a.tenant_id, a.member_id, a.skill, "
                "%(item)s, %(correct)s, %(late)s, %(at)s FROM a",
                {
                    "attempt": e.originator_id,
                    "position": e.position,
                    "item": e.item_id,
                    "correct": e.correct,
                    "late": e.late,
                    "at": e.timestamp,
                },
            )

        self.write(tracking, e.tenant_id, rows)

    def attempt_completed(self, e: AssessmentAttempt.Completed, tracking: Tracking) -> None:
        result: Result = e.result

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.assessment_attempts SET status = 'completed', theta = %s, "
                "se = %s, level = %s, completed_at = %s, ended_at = %s WHERE attempt_id = %s",
                (
                    result.theta,
                    result.se,
                    result.level,
                    e.timestamp,
                    e.timestamp,
                    e.originator_id,
                ),
            )
            cur.execute(INSERT_RESULT, _result_row(e, result, original=True))

        self.write(tracking, e.tenant_id, rows)

    def attempt_ended(self, e: AssessmentAttempt.Event, tracking: Tracking, status: str) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.assessment_attempts SET status = %s, ended_at = %s "
                "WHERE attempt_id = %s",
                (status, e.timestamp, e.originator_id),
            )

        self.write(tracking, e.tenant_id, rows)

    def attempt_rescored(self, e: AssessmentAttempt.Rescored, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(INSERT_RESULT, _result_row(e, e.result, original=False))

        self.write(tracking, e.tenant_id, rows)

    def evidence_opened(self, e: SkillEvidence.Opened, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.skill_evidence_streams (stream_id, tenant_id, member_id) "
                "VALUES (%s, %s, %s)",
                (e.originator_id, e.tenant_id, e.member_id),
            )

        self.write(tracking, e.tenant_id, rows)

    def evidence_recorded(self, e: SkillEvidence.EvidenceRecorded, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.skill_evidence (evidence_id, tenant_id, member_id, kind, "
                "skill, observed_level, link, note, recorded_at, recorded_by) "
                "SELECT %(id)s, s.tenant_id, s.member_id, %(kind)s, %(skill)s, %(level)s, "
                "%(link)s, %(note)s, %(at)s, %(by)s "
                "FROM training.skill_evidence_streams s WHERE s.stream_id = %(stream)s",
                {
                    "id": e.evidence_id,
                    "kind": str(e.kind),
                    "skill": e.skill,
                    "level": e.observed_level,
                    "link": e.link,
                    "note": e.note,
                    "at": e.timestamp,
                    "by": e.actor,
                    "stream": e.originator_id,
                },
            )

        self.write(tracking, e.tenant_id, rows)

    def parameters_published(
        self, e: ItemCalibration.ParametersPublished, tracking: Tracking
    ) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.item_parameter_versions (tenant_id, version, "
                "published_at, responses_used) VALUES (%s, %s, %s, %s)",
                (e.tenant_id, e.version, e.timestamp, e.responses_used),
            )

        self.write(tracking, e.tenant_id, rows)


class AssessmentsProjection(Projection[AssessmentsView]):
    name = "assessments"
    topics = tuple(
        get_topic(cls)
        for cls in (
            AssessmentAttempt.Started,
            AssessmentAttempt.ResponseRecorded,
            AssessmentAttempt.Completed,
            AssessmentAttempt.Abandoned,
            AssessmentAttempt.TimedOut,
            AssessmentAttempt.Rescored,
            SkillEvidence.Opened,
            SkillEvidence.EvidenceRecorded,
            ItemCalibration.ParametersPublished,
        )
    )

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, e: AssessmentAttempt.Started, tracking: Tracking) -> None:
        self.view.attempt_started(e, tracking)

    @process_event.register
    def _(self, e: AssessmentAttempt.ResponseRecorded, tracking: Tracking) -> None:
        self.view.response_recorded(e, tracking)

    @process_event.register
    def _(self, e: AssessmentAttempt.Completed, tracking: Tracking) -> None:
        self.view.attempt_completed(e, tracking)

    @process_event.register
    def _(self, e: AssessmentAttempt.Abandoned, tracking: Tracking) -> None:
        self.view.attempt_ended(e, tracking, "abandoned")

    @process_event.register
    def _(self, e: AssessmentAttempt.TimedOut, tracking: Tracking) -> None:
        self.view.attempt_ended(e, tracking, "timed_out")

    @process_event.register
    def _(self, e: AssessmentAttempt.Rescored, tracking: Tracking) -> None:
        self.view.attempt_rescored(e, tracking)

    @process_event.register
    def _(self, e: SkillEvidence.Opened, tracking: Tracking) -> None:
        self.view.evidence_opened(e, tracking)

    @process_event.register
    def _(self, e: SkillEvidence.EvidenceRecorded, tracking: Tracking) -> None:
        self.view.evidence_recorded(e, tracking)

    @process_event.register
    def _(self, e: ItemCalibration.ParametersPublished, tracking: Tracking) -> None:
        self.view.parameters_published(e, tracking)


# -- queries ---------------------------------------------------------------------------------
# They run in a transaction scoped to the caller's tenant (ReadStore.session): row-level
# security hides every other tenant's rows, so another tenant's id reads as missing.

ATTEMPT_COLUMNS = (
    "a.attempt_id, a.member_id, a.skill, a.status, a.parameter_version, a.answered, a.theta, "
    "a.se, a.level::int AS level, a.started_at, a.completed_at, a.ended_at"
)

# The latest scoring of each completed attempt known at %(as_of)s (NULL: now): a rescoring
# under newer item parameters supersedes the original for profiles and group views, while
# both stay stored.
LATEST_SCORING = (
    "JOIN LATERAL (SELECT r.parameter_version, r.theta, r.se, r.level::int AS level, r.items, "
    "  r.original, r.scored_at FROM training.assessment_results r "
    "  WHERE r.attempt_id = a.attempt_id "
    "  AND (%(as_of)s::timestamptz IS NULL OR r.scored_at <= %(as_of)s) "
    "  ORDER BY r.scored_at DESC, r.parameter_version DESC LIMIT 1) s ON true"
)


def _after_started(cursor: str | None) -> tuple[datetime, UUID] | None:
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


async def attempts_of_member(
    conn: AsyncConnection[Any],
    member_id: UUID,
    *,
    limit: int,
    cursor: str | None,
    skill: str | None = None,
) -> Page[AttemptRecord]:
    """A person's attempts, newest first."""
    after = _after_started(cursor)
    async with conn.cursor(row_factory=class_row(AttemptRecord)) as cur:
        await cur.execute(
            f"SELECT {ATTEMPT_COLUMNS} FROM training.assessment_attempts a "
            "WHERE a.member_id = %(member)s AND (%(skill)s::text IS NULL OR a.skill = %(skill)s) "
            "AND (%(after_at)s::timestamptz IS NULL "
            "     OR (a.started_at, a.attempt_id) < (%(after_at)s::timestamptz, %(after_id)s)) "
            "ORDER BY a.started_at DESC, a.attempt_id DESC LIMIT %(limit)s",
            {
                "member": member_id,
                "skill": skill,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.started_at.isoformat(), str(r.attempt_id)])


async def others_latest_thetas(
    conn: AsyncConnection[Any], skill: str, member_id: UUID
) -> list[float]:
    """θ of the latest completed attempt (its latest scoring) of every other member on ``skill``."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (a.member_id) s.theta FROM training.assessment_attempts a "
        f"{LATEST_SCORING} "
        "WHERE a.status = 'completed' AND a.skill = %(skill)s AND a.member_id <> %(member)s "
        "ORDER BY a.member_id, a.completed_at DESC, a.attempt_id DESC",
        {"skill": skill, "member": member_id, "as_of": None},
    )
    return [float(row[0]) for row in await cur.fetchall()]


async def results_of_member(
    conn: AsyncConnection[Any], member_id: UUID, as_of: datetime | None
) -> list[ScoredResult]:
    """The latest scoring, as known at ``as_of``, of each attempt the member completed by then."""
    async with conn.cursor(row_factory=class_row(ScoredResult)) as cur:
        await cur.execute(
            "SELECT a.attempt_id, a.member_id, a.skill, s.parameter_version, s.theta, s.se, "
            "s.level, s.items, s.original, s.scored_at, a.completed_at "
            f"FROM training.assessment_attempts a {LATEST_SCORING} "
            "WHERE a.member_id = %(member)s AND a.status = 'completed' "
            "AND (%(as_of)s::timestamptz IS NULL OR a.completed_at <= %(as_of)s) "
            "ORDER BY a.skill, a.completed_at, a.attempt_id",
            {"member": member_id, "as_of": as_of},
        )
        return await cur.fetchall()


async def evidence_of_member(
    conn: AsyncConnection[Any], member_id: UUID, as_of: datetime | None
) -> list[EvidenceRecord]:
    async with conn.cursor(row_factory=class_row(EvidenceRecord)) as cur:
        await cur.execute(
            "SELECT evidence_id, member_id, kind, skill, observed_level::int AS observed_level, "
            "link, note, recorded_at, recorded_by FROM training.skill_evidence "
            "WHERE member_id = %(member)s "
            "AND (%(as_of)s::timestamptz IS NULL OR recorded_at <= %(as_of)s) "
            "ORDER BY skill, recorded_at, evidence_id",
            {"member": member_id, "as_of": as_of},
        )
        return await cur.fetchall()


GROUP_SUMMARY = (
    "WITH latest AS ("
    "  SELECT DISTINCT ON (a.member_id, a.skill) a.member_id, a.skill, s.level, s.se "
    f"  FROM training.assessment_attempts a {LATEST_SCORING} "
    "  WHERE a.status = 'completed' AND a.member_id IN ({group}) "
    "  ORDER BY a.member_id, a.skill, a.completed_at DESC, a.attempt_id DESC) "
    "SELECT skill, count(*)::int AS people, avg(level)::float8 AS mean_level, "
    "avg(se)::float8 AS mean_se FROM latest GROUP BY skill ORDER BY skill"
)
TEAM_MEMBERS = (
    "SELECT m.member_id FROM training.members m "
    "WHERE m.team = %(team)s AND m.status = 'active' AND NOT m.erased"
)
COHORT_MEMBERS = (
    "SELECT e.member_id FROM training.cohort_enrolments e "
    "WHERE e.cohort_id = %(cohort)s AND e.status = 'enrolled'"
)


async def team_summary(conn: AsyncConnection[Any], team: str) -> list[GroupSkillRow]:
    """Per skill: active members of the team with a result, their mean level and mean SE."""
    async with conn.cursor(row_factory=class_row(GroupSkillRow)) as cur:
        await cur.execute(
            GROUP_SUMMARY.replace("{group}", TEAM_MEMBERS), {"team": team, "as_of": None}
        )
        return await cur.fetchall()


async def cohort_summary(conn: AsyncConnection[Any], cohort_id: UUID) -> list[GroupSkillRow]:
    """Per skill: people enrolled in the cohort with a result, mean level and mean SE."""
    async with conn.cursor(row_factory=class_row(GroupSkillRow)) as cur:
        await cur.execute(
            GROUP_SUMMARY.replace("{group}", COHORT_MEMBERS), {"cohort": cohort_id, "as_of": None}
        )
        return await cur.fetchall()


async def group_size(
    conn: AsyncConnection[Any], *, team: str | None, cohort_id: UUID | None
) -> int:
    query = TEAM_MEMBERS if team is not None else COHORT_MEMBERS
    cur = await conn.execute(
        f"SELECT count(*) FROM ({query}) g", {"team": team, "cohort": cohort_id}
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def calibration_responses(conn: AsyncConnection[Any]) -> list[tuple[str, float, bool]]:
    """(item, θ of the attempt's original result, correct) for every completed attempt."""
    cur = await conn.execute(
        "SELECT r.item_id, a.theta, r.correct FROM training.assessment_responses r "
        "JOIN training.assessment_attempts a ON a.attempt_id = r.attempt_id "
        "WHERE a.status = 'completed' AND a.theta IS NOT NULL "
        "ORDER BY r.attempt_id, r.position"
    )
    return [
        (str(item), float(theta), bool(correct)) for item, theta, correct in await cur.fetchall()
    ]


async def attempts_to_rescore(
    conn: AsyncConnection[Any], version: int, *, after: UUID | None, limit: int
) -> list[UUID]:
    """Completed attempts with no scoring under ``version`` yet, in id order."""
    cur = await conn.execute(
        "SELECT a.attempt_id FROM training.assessment_attempts a "
        "WHERE a.status = 'completed' AND a.parameter_version <> %(version)s "
        "AND (%(after)s::uuid IS NULL OR a.attempt_id > %(after)s) "
        "AND NOT EXISTS (SELECT 1 FROM training.assessment_results r "
        "  WHERE r.attempt_id = a.attempt_id AND r.parameter_version = %(version)s) "
        "ORDER BY a.attempt_id LIMIT %(limit)s",
        {"version": version, "after": after, "limit": limit},
    )
    return [UUID(str(row[0])) for row in await cur.fetchall()]


async def parameter_versions(
    conn: AsyncConnection[Any], *, limit: int, cursor: str | None
) -> Page[ParameterVersionRecord]:
    after = decode_cursor(cursor, INT)[0] if cursor else None
    async with conn.cursor(row_factory=class_row(ParameterVersionRecord)) as cur:
        await cur.execute(
            "SELECT version, published_at, responses_used FROM training.item_parameter_versions "
            "WHERE (%(after)s::int IS NULL OR version > %(after)s) ORDER BY version "
            "LIMIT %(limit)s",
            {"after": after, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.version])


# The read model as the runners and read-your-writes know it.
ASSESSMENTS = ProjectionSpec(AssessmentsProjection, AssessmentsView)
