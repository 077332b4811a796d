"""The cohorts' read model: how cohort and training-policy events become rows.

Each event's rows are written in one transaction scoped to the event's tenant, together with
the tracking position. An enrolment of a thousand people is one event and so one transaction
(``executemany``, which psycopg sends as one pipeline). Every event of a cohort sets the
cohort row's version; the rows of what it recorded (people, sessions, attendance, feedback,
completed modules) are written beside it in the same transaction.
"""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import Cursor

from training.cohorts.domain.cohorts import Cohort
from training.cohorts.domain.policy import TrainingPolicy
from training.core.views import ProjectionSpec, TenantScopedView, Writer

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

    def cohort_scheduled(self, e: Cohort.Scheduled, tracking: Tracking) -> None:
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

    def cohort_changed(
        self,
        e: Cohort.Event,
        tracking: Tracking,
        columns: dict[str, Any],
        other_rows: Writer | None = None,
    ) -> None:
        """Sets ``columns`` and the new version on the cohort's row; ``other_rows(cur)`` then
        writes the rows of what the event recorded beside the cohort."""
        # Column names come from this module only, never from input.
        assignments = "".join(f", {column} = %({column})s" for column in columns)

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.cohorts SET version = %(version)s, updated_at = %(at)s"
                f"{assignments} WHERE cohort_id = %(id)s",
                {
                    "version": e.originator_version,
                    "at": e.timestamp,
                    "id": e.originator_id,
                    **columns,
                },
            )
            if other_rows is not None:
                other_rows(cur)

        self.write(tracking, e.tenant_id, rows)

    def people_placed(
        self, e: Cohort.Enrolled | Cohort.Waitlisted, tracking: Tracking, status: str
    ) -> None:
        """Seated (``status`` enrolled) or waitlisted people, numbered after everyone who
        arrived in the cohort before them."""

        def enrolments(cur: Cursor[Any]) -> None:
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

        self.cohort_changed(e, tracking, {}, enrolments)

    def people_withdrawn(self, e: Cohort.Event, tracking: Tracking, members: list[UUID]) -> None:
        def enrolments(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.cohort_enrolments SET status = 'withdrawn', withdrawn_at = %s "
                "WHERE cohort_id = %s AND member_id = ANY(%s)",
                (e.timestamp, e.originator_id, members),
            )

        columns: dict[str, Any] = {}
        if isinstance(e, Cohort.Cancelled):
            columns = {"status": "cancelled"}
        self.cohort_changed(e, tracking, columns, enrolments)

    def person_promoted(self, e: Cohort.Promoted, tracking: Tracking) -> None:
        def enrolment(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.cohort_enrolments SET status = 'enrolled', enrolled_at = %s, "
                "promoted_version = %s WHERE cohort_id = %s AND member_id = %s",
                (e.timestamp, e.originator_version, e.originator_id, e.member_id),
            )

        self.cohort_changed(e, tracking, {}, enrolment)

    def session_scheduled(self, e: Cohort.SessionScheduled, tracking: Tracking) -> None:
        session = e.session

        def session_row(cur: Cursor[Any]) -> None:
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

        self.cohort_changed(e, tracking, {}, session_row)

    def attendance_recorded(self, e: Cohort.AttendanceRecorded, tracking: Tracking) -> None:
        """An import replaces the session's earlier one; several visits of one person merge
        into one row from their first join to their last leave."""

        def attendance(cur: Cursor[Any]) -> None:
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

        self.cohort_changed(e, tracking, {}, attendance)

    def feedback_given(self, e: Cohort.FeedbackGiven, tracking: Tracking) -> None:
        def feedback(cur: Cursor[Any]) -> None:
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

        self.cohort_changed(e, tracking, {}, feedback)

    def module_completed(self, e: Cohort.ModuleCompleted, tracking: Tracking) -> None:
        def completion(cur: Cursor[Any]) -> None:
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

        self.cohort_changed(e, tracking, {}, completion)

    def policy_set(
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
        self.view.cohort_scheduled(e, tracking)

    @process_event.register
    def _(self, e: Cohort.CapacityChanged, tracking: Tracking) -> None:
        self.view.cohort_changed(e, tracking, {"capacity": e.capacity})

    @process_event.register
    def _(self, e: Cohort.Started, tracking: Tracking) -> None:
        self.view.cohort_changed(e, tracking, {"status": "running"})

    @process_event.register
    def _(self, e: Cohort.Completed, tracking: Tracking) -> None:
        self.view.cohort_changed(e, tracking, {"status": "completed"})

    @process_event.register
    def _(self, e: Cohort.Cancelled, tracking: Tracking) -> None:
        self.view.people_withdrawn(e, tracking, list(e.withdrawn))

    @process_event.register
    def _(self, e: Cohort.Enrolled, tracking: Tracking) -> None:
        self.view.people_placed(e, tracking, "enrolled")

    @process_event.register
    def _(self, e: Cohort.Waitlisted, tracking: Tracking) -> None:
        self.view.people_placed(e, tracking, "waitlisted")

    @process_event.register
    def _(self, e: Cohort.Withdrawn, tracking: Tracking) -> None:
        self.view.people_withdrawn(e, tracking, [e.member_id])

    @process_event.register
    def _(self, e: Cohort.Promoted, tracking: Tracking) -> None:
        self.view.person_promoted(e, tracking)

    @process_event.register
    def _(self, e: Cohort.SessionScheduled, tracking: Tracking) -> None:
        self.view.session_scheduled(e, tracking)

    @process_event.register
    def _(self, e: Cohort.AttendanceRecorded, tracking: Tracking) -> None:
        self.view.attendance_recorded(e, tracking)

    @process_event.register
    def _(self, e: Cohort.FeedbackGiven, tracking: Tracking) -> None:
        self.view.feedback_given(e, tracking)

    @process_event.register
    def _(self, e: Cohort.ModuleCompleted, tracking: Tracking) -> None:
        self.view.module_completed(e, tracking)

    @process_event.register
    def _(self, e: TrainingPolicy.Adopted, tracking: Tracking) -> None:
        self.view.policy_set(e, tracking)

    @process_event.register
    def _(self, e: TrainingPolicy.Changed, tracking: Tracking) -> None:
        self.view.policy_set(e, tracking)


# The read model as the runners and read-your-writes know it.
COHORTS = ProjectionSpec(CohortsProjection, CohortsView)
