"""The data of each report, built from the read models in a transaction of its tenant.

See ``SqlReportSources.individual``, ``cohort`` and ``effectiveness`` for what each report
shows. A read model that has not caught up with what the report needs yet (the tracks view
behind the re-plan that queued the report) makes the worker wait (``NotReady``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from psycopg import Connection
from psycopg.rows import class_row

from training.assessments.domain.profile import Measurement, combine, evidence_measurement
from training.assessments.queries import starter_bank
from training.assessments.views import LATEST_SCORING
from training.cohorts.domain.policy import DEFAULT_AT_RISK_THRESHOLD
from training.cohorts.views.cohorts import COHORT_COLUMNS, CohortRecord
from training.cohorts.views.sessions import (
    FROM_SESSIONS,
    MAX_FEED_SESSIONS,
    SESSION_COLUMNS,
    attendance_rate,
    content_satisfaction,
    interaction_index,
)
from training.cohorts.views.sessions import SessionRow as CohortSession
from training.core.mapper import MsgspecMapper, PassThroughTranscoder
from training.people.views import ERASED
from training.planning.domain.planner import Plan
from training.planning.domain.tracks import TrainingTrack
from training.planning.views.plan_rows import due_dates
from training.reports.domain.effectiveness import MIN_GROUP, summarise_changes
from training.reports.domain.requests import ReportKind
from training.reports.queue import SqlReportQueue
from training.reports.worker import Built, NotReady, QueuedReport
from training.skills.queries import default_framework

if TYPE_CHECKING:
    from training.reports.rendering import (
        EffectivenessReport,
        LevelDistribution,
        ProfileRow,
    )
    from training.reports.rendering.documents import PlanItem

REPLANNED_TOPIC = get_topic(TrainingTrack.Replanned)
RATING_SE = 1.0  # logits: a reviewer's rating counts as one observation (as in the planner)
UNKNOWN = "(unknown)"


@cache
def logits_per_level() -> float:
    """The mean width of the inner level bands of the cut scores: SE logits -> SE levels."""
    cuts = starter_bank().cut_scores.thresholds
    return (cuts[-1] - cuts[0]) / (len(cuts) - 1)


def _today_in(timezone: str) -> date:
    try:
        return datetime.now(ZoneInfo(timezone)).date()
    except (KeyError, ValueError):
        return datetime.now(UTC).date()


def expected_percent(starts_on: date, ends_on: date, today: date) -> float:
    """Days of the window elapsed by the end of ``today`` over its days, in % (as the API's
    cohort progress computes it)."""
    if today < starts_on:
        return 0.0
    if today >= ends_on:
        return 100.0
    total = (ends_on - starts_on).days + 1
    return round(((today - starts_on).days + 1) * 100 / total, 2)


_MAPPER = MsgspecMapper(transcoder=PassThroughTranscoder())


def _ref(value: Any) -> tuple[str, str]:
    return str(value[0]), str(value[1])


class SqlReportSources:
    """Builds a report's data from the read models, in a transaction of its tenant."""

    def __init__(self, queue: SqlReportQueue) -> None:
        self.queue = queue

    def build(self, job: QueuedReport, generated_at: datetime) -> Built:
        with self.queue.scoped(job.tenant_id) as conn:
            conn.execute("SET TRANSACTION READ ONLY")
            if job.kind is ReportKind.INDIVIDUAL:
                assert job.subject_id is not None
                return self.individual(conn, job, job.subject_id, generated_at)
            if job.kind is ReportKind.COHORT:
                assert job.subject_id is not None
                return self.cohort(conn, job.subject_id, generated_at)
            return Built(self.effectiveness(conn, generated_at))

    # -- shared ---------------------------------------------------------------------------

    @staticmethod
    def tenant_name(conn: Connection[Any]) -> str:
        row = conn.execute(
            "SELECT name FROM training.tenants WHERE tenant_id = training.current_tenant()"
        ).fetchone()
        return str(row[0]) if row else UNKNOWN

    @staticmethod
    def skill_names(conn: Connection[Any]) -> dict[str, str]:
        names = {skill.code: skill.name for skill in default_framework().skills}
        names.update(
            {str(c): str(n) for c, n in conn.execute("SELECT code, name FROM training.skills")}
        )
        return names

    @staticmethod
    def module_titles(conn: Connection[Any], refs: Sequence[tuple[str, str]]) -> dict[Any, str]:
        """Titles of modules, from their latest version in the curricula read model."""
        ids = sorted({curriculum for curriculum, _ in refs})
        if not ids:
            return {}
        rows = conn.execute(
            "SELECT DISTINCT ON (curriculum_id, key) curriculum_id::text, key, title "
            "FROM training.curriculum_modules WHERE curriculum_id::text = ANY(%s) "
            "ORDER BY curriculum_id, key, version DESC",
            (ids,),
        ).fetchall()
        return {(str(r[0]), str(r[1])): str(r[2]) for r in rows}

    # -- individual -----------------------------------------------------------------------

    def individual(
        self, conn: Connection[Any], job: QueuedReport, member_id: UUID, generated_at: datetime
    ) -> Built:
        """A member's skill profile, the plan of one version of their track and its changes.

        * Profile rows: the skill profile from assessments and reviewers' evidence where
          there is one (latest assessment and evidence, combined as the profile API does);
          for the other skills the plan targets, the level the planner used (a reviewer's
          rating). Targets and gaps come from the plan's targets.
        * Plan rows: ``track_modules`` (reasons and due dates) when the track is still at
          that version, else the version's own ``Replanned`` event, whose due dates are
          computed as the tracks view computes them.
        * "What changed": the diff of ``track_plans`` for that version.

        The automatic report of plan version N waits (``NotReady``) until the tracks view
        holds N. A report asked for by a person shows the track's current version.
        """
        from training.reports.rendering import IndividualReport

        member = conn.execute(
            f"SELECT CASE WHEN m.erased THEN '{ERASED}' ELSE "
            "coalesce(p.display_name, m.external_id) END, m.job_title, m.team, m.erased, "
            "m.language FROM training.members m "
            "LEFT JOIN training.people p ON p.member_id = m.member_id WHERE m.member_id = %s",
            (member_id,),
        ).fetchone()
        if member is None:
            raise NotReady(f"member {member_id} is not in the members view yet")
        track = conn.execute(
            "SELECT plan_version FROM training.tracks WHERE member_id = %s", (member_id,)
        ).fetchone()
        current = int(track[0]) if track else None
        version = job.for_plan_version or current
        if version is not None and (current is None or current < version):
            raise NotReady(f"the tracks view has not reached plan version {version} yet")
        names = self.skill_names(conn)
        plan: Plan | None = None
        starts_on: date | None = None
        items: tuple[PlanItem, ...] = ()
        changes: tuple[str, ...] = ()
        if version is not None:
            plan, starts_on = self._replanned(conn, job.tenant_id, member_id, version)
            if version == current:
                items = self._current_plan(conn, member_id)
            else:
                items = self._plan_items(plan, starts_on)
            changes = self._changes(conn, member_id, version, plan)
        profile = self._profile(conn, member_id, plan, names, generated_at)
        name, job_title, team, erased, language = member
        return Built(
            IndividualReport(
                tenant_name=self.tenant_name(conn),
                member_name=str(name) if name else UNKNOWN,
                job_title=job_title,
                team=team,
                generated_at=generated_at,
                profile=profile,
                plan=items,
                changes=changes,
                plan_version=version or 0,
                previous_plan_version=version - 1 if version and version > 1 else None,
                language=language or "en",
            ),
            plan_version=version,
            named_members=() if erased else (member_id,),
        )

    @staticmethod
    def _replanned(
        conn: Connection[Any], tenant_id: UUID, member_id: UUID, version: int
    ) -> tuple[Plan, date]:
        """The plan and start day of one plan version, from the planning process's event."""
        track_id = TrainingTrack.create_id(tenant_id, member_id)
        row = conn.execute(
            "SELECT originator_version, state FROM training.planning_events "
            "WHERE originator_id = %s AND topic = %s "
            "AND (convert_from(state, 'UTF8')::jsonb ->> 'plan_version')::int = %s",
            (track_id, REPLANNED_TOPIC, version),
        ).fetchone()
        if row is None:
            raise NotReady(f"plan version {version} of the track is not stored yet")
        event = _MAPPER.to_domain_event(
            StoredEvent(track_id, int(row[0]), REPLANNED_TOPIC, bytes(row[1]))
        )
        assert isinstance(event, TrainingTrack.Replanned)
        return event.plan, event.starts_on

    @staticmethod
    def _current_plan(conn: Connection[Any], member_id: UUID) -> tuple[PlanItem, ...]:
        from training.reports.rendering import PlanItem

        rows = conn.execute(
            "SELECT position, title, minutes, due_on, reason FROM training.track_modules "
            "WHERE member_id = %s ORDER BY position",
            (member_id,),
        ).fetchall()
        return tuple(PlanItem(int(r[0]), str(r[1]), int(r[2]), r[3], str(r[4])) for r in rows)

    @staticmethod
    def _plan_items(plan: Plan, starts_on: date) -> tuple[PlanItem, ...]:
        from training.reports.rendering import PlanItem

        return tuple(
            PlanItem(m.order, m.title, m.minutes, due, m.reason)
            for m, due in zip(plan.modules, due_dates(plan, starts_on), strict=True)
        )

    def _changes(
        self, conn: Connection[Any], member_id: UUID, version: int, plan: Plan
    ) -> tuple[str, ...]:
        row = conn.execute(
            "SELECT added, removed, reordered FROM training.track_plans "
            "WHERE member_id = %s AND plan_version = %s",
            (member_id, version),
        ).fetchone()
        if row is None:
            raise NotReady(f"the tracks view holds no diff of plan version {version} yet")
        added, removed, reordered = row
        titles: dict[Any, str] = {(m.curriculum_id, m.key): m.title for m in plan.modules}
        missing = [_ref(r[0]) for r in removed if _ref(r[0]) not in titles]
        titles.update(self.module_titles(conn, missing))

        def title(ref: Any) -> str:
            key = _ref(ref)
            return titles.get(key, key[1])

        lines = [f"added '{title(ref)}': {reason}" for ref, reason in added]
        lines += [f"removed '{title(ref)}': {why}" for ref, why in removed]
        lines += [
            f"moved '{title(ref)}' from step {old} to step {new}" for ref, old, new in reordered
        ]
        return tuple(lines)

    @staticmethod
    def _profile(
        conn: Connection[Any],
        member_id: UUID,
        plan: Plan | None,
        names: dict[str, str],
        as_of: datetime,
    ) -> tuple[ProfileRow, ...]:
        from training.reports.rendering import ProfileRow

        cut_scores = starter_bank().cut_scores
        measurements: dict[str, list[Measurement]] = defaultdict(list)
        for attempt_id, skill, theta, se, completed_at in conn.execute(
            "SELECT a.attempt_id, a.skill, s.theta, s.se, a.completed_at "
            f"FROM training.assessment_attempts a {LATEST_SCORING} "
            "WHERE a.member_id = %(member)s AND a.status = 'completed' "
            "ORDER BY a.skill, a.completed_at, a.attempt_id",
            {"member": member_id, "as_of": None},
        ):
            measurements[str(skill)].append(
                Measurement("assessment", str(attempt_id), theta, se, completed_at)
            )
        for evidence_id, kind, skill, level, recorded_at in conn.execute(
            "SELECT evidence_id, kind, skill, observed_level::int, recorded_at "
            "FROM training.skill_evidence WHERE member_id = %s",
            (member_id,),
        ):
            measurements[str(skill)].append(
                evidence_measurement(str(kind), str(evidence_id), level, recorded_at, cut_scores)
            )
        entries = {
            skill: entry
            for skill, found in measurements.items()
            if (entry := combine(skill, found, as_of, cut_scores)) is not None
        }
        targets = {gap.skill: gap for gap in (plan.targets if plan else ())}
        rows = []
        for skill in set(entries) | set(targets):
            entry, gap = entries.get(skill), targets.get(skill)
            if entry is not None:
                level, se = entry.level, entry.se
            else:
                assert gap is not None
                level, se = gap.current, RATING_SE
            target = gap.target if gap is not None else None
            rows.append(
                ProfileRow(
                    skill=names.get(skill, skill),
                    level=level,
                    se_levels=round(se / logits_per_level(), 2),
                    target=target,
                    gap=max(target - level, 0) if target is not None else None,
                )
            )
        return tuple(sorted(rows, key=lambda r: r.skill.lower()))

    # -- cohort ---------------------------------------------------------------------------

    def cohort(self, conn: Connection[Any], cohort_id: UUID, generated_at: datetime) -> Built:
        """Roster and progress (as the cohort progress API computes them), the live
        sessions with their metrics, and the cohort's levels per skill (the latest result of
        each enrolled person); a skill fewer than 5 people have a level for is suppressed."""
        from training.reports.rendering import (
            CohortReport,
            RosterRow,
            SessionRow,
            level_distribution,
        )

        with conn.cursor(row_factory=class_row(CohortRecord)) as cur:
            cohort = cur.execute(
                f"SELECT {COHORT_COLUMNS} FROM training.cohorts c WHERE c.cohort_id = %s",
                (cohort_id,),
            ).fetchone()
        if cohort is None:
            raise NotReady(f"cohort {cohort_id} is not in the cohorts view yet")
        title = conn.execute(
            "SELECT title FROM training.curricula WHERE curriculum_id = %s",
            (cohort.curriculum_id,),
        ).fetchone()
        policy = conn.execute(
            "SELECT at_risk_threshold FROM training.training_policies "
            "WHERE tenant_id = training.current_tenant()"
        ).fetchone()
        threshold = int(policy[0]) if policy else DEFAULT_AT_RISK_THRESHOLD
        expected = expected_percent(cohort.starts_on, cohort.ends_on, _today_in(cohort.timezone))
        roster = []
        named: list[UUID] = []
        for member_id, erased, name, status, completed in conn.execute(
            "SELECT e.member_id, coalesce(m.erased, false), CASE WHEN m.erased THEN "
            f"'{ERASED}' ELSE coalesce(p.display_name, m.external_id, '{UNKNOWN}') END, "
            "e.status, e.modules_completed FROM training.cohort_enrolments e "
            "LEFT JOIN training.members m ON m.member_id = e.member_id "
            "LEFT JOIN training.people p ON p.member_id = e.member_id "
            "WHERE e.cohort_id = %s ORDER BY e.position",
            (cohort_id,),
        ):
            percent = min(round(completed * 100 / max(cohort.module_count, 1), 2), 100.0)
            if not erased:
                named.append(member_id)
            roster.append(
                RosterRow(
                    name=str(name),
                    status=str(status),
                    percent_complete=percent,
                    at_risk=status == "enrolled" and expected - percent > threshold,
                )
            )
        with conn.cursor(row_factory=class_row(CohortSession)) as cur:
            sessions = cur.execute(
                f"SELECT {SESSION_COLUMNS} FROM {FROM_SESSIONS} WHERE s.cohort_id = %s "
                "ORDER BY s.starts_at, s.session_id LIMIT %s",
                (cohort_id, MAX_FEED_SESSIONS),
            ).fetchall()
        names = self.skill_names(conn)
        levels: dict[str, list[int]] = defaultdict(list)
        for skill, level in conn.execute(
            "SELECT DISTINCT ON (a.member_id, a.skill) a.skill, s.level "
            f"FROM training.assessment_attempts a {LATEST_SCORING} "
            "WHERE a.status = 'completed' AND a.member_id IN (SELECT e.member_id "
            "FROM training.cohort_enrolments e WHERE e.cohort_id = %(cohort)s "
            "AND e.status = 'enrolled') "
            "ORDER BY a.member_id, a.skill, a.completed_at DESC, a.attempt_id DESC",
            {"cohort": cohort_id, "as_of": None},
        ):
            levels[names.get(str(skill), str(skill))].append(int(level))
        distribution: list[LevelDistribution | Any] = [
            level_distribution(skill, levels[skill]) for skill in sorted(levels, key=str.lower)
        ]
        report = CohortReport(
            tenant_name=self.tenant_name(conn),
            cohort_name=cohort.name,
            curriculum_title=str(title[0]) if title else UNKNOWN,
            window=(cohort.starts_on, cohort.ends_on),
            roster=tuple(roster),
            sessions=tuple(
                SessionRow(
                    title=s.title,
                    starts_at=s.starts_at,
                    attendance_rate=attendance_rate(s),
                    interaction_index=interaction_index(s),
                    content_satisfaction=content_satisfaction(s),
                )
                for s in sessions
            ),
            skill_distribution=tuple(distribution),
            generated_at=generated_at,
        )
        return Built(report, named_members=tuple(named))

    # -- effectiveness --------------------------------------------------------------------

    def effectiveness(self, conn: Connection[Any], generated_at: datetime) -> EffectivenessReport:
        """Per skill, the level before and after: each person's first and latest completed
        assessment of the skill (each at its latest scoring); people with one result are not
        counted, groups of fewer than 5 are suppressed. Completion per cohort: enrolled
        people who completed every module of the pinned version; cohorts of fewer than 5
        people are shown only pooled together (when the pool reaches 5), cancelled cohorts
        not at all. The period runs from the first completed assessment to today."""
        from training.reports.rendering import CompletionRate, EffectivenessReport

        names = self.skill_names(conn)
        pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for skill, pre, post in conn.execute(
            "WITH results AS (SELECT a.member_id, a.skill, s.level, a.completed_at, "
            f"a.attempt_id FROM training.assessment_attempts a {LATEST_SCORING} "
            "WHERE a.status = 'completed') "
            "SELECT skill, (array_agg(level ORDER BY completed_at, attempt_id))[1], "
            "(array_agg(level ORDER BY completed_at DESC, attempt_id DESC))[1] "
            "FROM results GROUP BY skill, member_id HAVING count(*) >= 2",
            {"as_of": None},
        ):
            pairs[names.get(str(skill), str(skill))].append((float(pre), float(post)))
        first = conn.execute(
            "SELECT min(completed_at) FROM training.assessment_attempts WHERE status = 'completed'"
        ).fetchone()
        today = generated_at.date()
        start = first[0].date() if first and first[0] else today
        rates, small_enrolled, small_completed, small_cohorts = [], 0, 0, 0
        for name, enrolled, completed in conn.execute(
            "SELECT c.name, count(e.member_id) FILTER (WHERE e.status = 'enrolled'), "
            "count(e.member_id) FILTER (WHERE e.status = 'enrolled' "
            "AND e.modules_completed >= c.module_count) "
            "FROM training.cohorts c LEFT JOIN training.cohort_enrolments e "
            "ON e.cohort_id = c.cohort_id WHERE c.status <> 'cancelled' "
            "GROUP BY c.cohort_id, c.name, c.starts_on ORDER BY c.starts_on, c.name"
        ):
            if enrolled >= MIN_GROUP:
                rates.append(CompletionRate(str(name), int(enrolled), int(completed)))
            elif enrolled:
                small_cohorts += 1
                small_enrolled += int(enrolled)
                small_completed += int(completed)
        if small_enrolled >= MIN_GROUP:
            rates.append(
                CompletionRate(
                    f"{small_cohorts} cohorts of fewer than {MIN_GROUP} people, together",
                    small_enrolled,
                    small_completed,
                )
            )
        return EffectivenessReport(
            tenant_name=self.tenant_name(conn),
            period=(min(start, today), today),
            changes=summarise_changes({skill: pairs[skill] for skill in sorted(pairs)}),
            completion_rates=tuple(rates),
            generated_at=generated_at,
        )
