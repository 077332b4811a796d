"""A cohort's life: schedule it, change its capacity, start, complete or cancel it; its live
sessions (attendance, feedback), its people's progress, and the tenant's training policy.

Placing people in a cohort is ``enrolments``; what every cohort command answers is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID, uuid4

from training.cohorts.domain.cohorts import Attendance, Cohort, Session, cleaned_reason
from training.cohorts.domain.policy import TrainingPolicy
from training.cohorts.handlers.participation import curriculum_enrolments
from training.cohorts.queries import training_policy
from training.core.application import TrainingApplication
from training.core.bus import Handler, UnitOfWork
from training.core.errors import Forbidden, NotFound, RuleViolated
from training.curricula.domain import PublishedVersion
from training.curricula.queries import visible_curriculum
from training.people.queries import active_members


@dataclass(frozen=True)
class ScheduleCohort:
    name: str
    curriculum_id: UUID
    curriculum_version: int
    starts_on: date
    ends_on: date
    timezone: str
    capacity: int
    facilitators: tuple[UUID, ...] = ()


@dataclass(frozen=True)
class ChangeCapacity:
    cohort_id: UUID
    capacity: int
    expected_version: int | None = None


@dataclass(frozen=True)
class StartCohort:
    cohort_id: UUID


@dataclass(frozen=True)
class CompleteCohort:
    cohort_id: UUID


@dataclass(frozen=True)
class CancelCohort:
    cohort_id: UUID
    reason: str


@dataclass(frozen=True)
class ScheduleSession:
    cohort_id: UUID
    title: str
    starts_at: datetime
    duration_minutes: int
    join_url: str


@dataclass(frozen=True)
class RecordAttendance:
    cohort_id: UUID
    session_id: UUID
    attendance: tuple[Attendance, ...]
    comments: int
    questions: int
    reactions: int


@dataclass(frozen=True)
class GiveFeedback:
    cohort_id: UUID
    session_id: UUID
    member_id: UUID
    content: int
    delivery: int
    interaction: int


@dataclass(frozen=True)
class CompleteModule:
    cohort_id: UUID
    member_id: UUID
    module_key: str
    completed_on: date


@dataclass(frozen=True)
class ChangeTrainingPolicy:
    at_risk_threshold: int
    retake_cooldown_days: int


# -- what the commands answer ----------------------------------------------------------------
# A command's result is pickled with its idempotent outcome (core.idempotency_store) and read
# back by its module and class name: a result class moved from here needs its old module in
# core.moved_modules.


@dataclass(frozen=True)
class CohortSnapshot:
    """A cohort as a command left it."""

    cohort_id: UUID
    name: str
    status: str
    capacity: int
    enrolled: int
    waitlisted: int
    version: int

    @classmethod
    def of(cls, cohort: Cohort) -> CohortSnapshot:
        return cls(
            cohort.id,
            cohort.name,
            str(cohort.status),
            cohort.capacity,
            len(cohort.enrolled),
            len(cohort.waitlist),
            cohort.version,
        )


@dataclass(frozen=True)
class EnrolmentOutcome:
    """Who an enrolment (or a transfer) seated and who it waitlisted, in order."""

    cohort: CohortSnapshot
    enrolled: tuple[UUID, ...]
    waitlisted: tuple[UUID, ...]


# -- handlers --------------------------------------------------------------------------------


def not_an_active_member(member_id: UUID, field: str) -> RuleViolated:
    return RuleViolated(f"{member_id} is not an active member of this tenant", field=field)


def check_active_members(uow: UnitOfWork, member_ids: tuple[UUID, ...], field: str) -> None:
    active = active_members(uow, member_ids)
    for index, member_id in enumerate(member_ids):
        if member_id not in active:
            raise not_an_active_member(member_id, f"{field}[{index}]")


def usable_curriculum_version(
    app: TrainingApplication, tenant_id: UUID, curriculum_id: UUID, version: int
) -> PublishedVersion:
    """A published version of a curriculum the tenant may use; else a 422 naming the field."""
    try:
        curriculum = visible_curriculum(app, tenant_id, curriculum_id)
    except NotFound as error:
        raise RuleViolated(error.detail, field="curriculum_id") from None
    try:
        return curriculum.version_of(version)
    except NotFound as error:
        raise RuleViolated(error.detail, field="curriculum_version") from None


def schedule_cohort(command: ScheduleCohort, uow: UnitOfWork) -> CohortSnapshot:
    tenant_id = uow.require_tenant()
    version = usable_curriculum_version(
        uow.app, tenant_id, command.curriculum_id, command.curriculum_version
    )
    check_active_members(uow, command.facilitators, "facilitators")
    cohort = Cohort.schedule(
        tenant_id=tenant_id,
        name=command.name,
        curriculum_id=command.curriculum_id,
        curriculum_version=version.version,
        module_keys=tuple(module.key for module in version.modules),
        starts_on=command.starts_on,
        ends_on=command.ends_on,
        timezone=command.timezone,
        capacity=command.capacity,
        facilitators=command.facilitators,
    )
    uow.add(cohort)
    return CohortSnapshot.of(cohort)


def change_capacity(command: ChangeCapacity, uow: UnitOfWork) -> CohortSnapshot:
    uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id, expected_version=command.expected_version)
    cohort.change_capacity(command.capacity)
    return CohortSnapshot.of(cohort)


def start_cohort(command: StartCohort, uow: UnitOfWork) -> CohortSnapshot:
    uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id)
    cohort.start()
    return CohortSnapshot.of(cohort)


def complete_cohort(command: CompleteCohort, uow: UnitOfWork) -> CohortSnapshot:
    tenant_id = uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id)
    everyone = (*cohort.enrolled, *cohort.waitlist)
    cohort.complete()
    # Finished: these people may join another cohort of the same curriculum again.
    curriculum_enrolments(uow, tenant_id, cohort.curriculum_id).leave(everyone)
    return CohortSnapshot.of(cohort)


def cancel_cohort(command: CancelCohort, uow: UnitOfWork) -> CohortSnapshot:
    tenant_id = uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id)
    withdrawn = cohort.cancel(command.reason)
    # The reason is kept beside the events, by the version of the Cancelled event.
    uow.keep_cohort_reason(cohort, cohort.version, withdrawn, cleaned_reason(command.reason))
    curriculum_enrolments(uow, tenant_id, cohort.curriculum_id).leave(withdrawn)
    return CohortSnapshot.of(cohort)


def schedule_session(command: ScheduleSession, uow: UnitOfWork) -> UUID:
    uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id)
    session_id = uuid4()
    cohort.schedule_session(
        Session(
            session_id,
            command.title,
            command.starts_at,
            command.duration_minutes,
            command.join_url,
        )
    )
    return session_id


def record_attendance(command: RecordAttendance, uow: UnitOfWork) -> int:
    uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id)
    cohort.record_attendance(
        command.session_id,
        command.attendance,
        command.comments,
        command.questions,
        command.reactions,
    )
    return int(cohort.version)


def give_feedback(command: GiveFeedback, uow: UnitOfWork) -> int:
    uow.require_tenant()
    if uow.context.actor.id != str(command.member_id):
        raise Forbidden("people give feedback for themselves")
    cohort = uow.get(Cohort, command.cohort_id)
    cohort.give_feedback(
        command.session_id,
        command.member_id,
        command.content,
        command.delivery,
        command.interaction,
    )
    return int(cohort.version)


def complete_module(command: CompleteModule, uow: UnitOfWork) -> int:
    uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id)
    cohort.complete_module(command.member_id, command.module_key, command.completed_on)
    return int(cohort.version)


def change_training_policy(command: ChangeTrainingPolicy, uow: UnitOfWork) -> TrainingPolicy:
    tenant_id = uow.require_tenant()
    current = training_policy(uow, tenant_id)
    current.change(command.at_risk_threshold, command.retake_cooldown_days)
    return current


# -- queries ---------------------------------------------------------------------------------


def version_written_at(app: TrainingApplication, cohort_id: UUID, position: int | None) -> int:
    """The cohort's version after a command whose last event, written to the cohort, is at
    ``position`` (scheduling a session answers the session's id, not the version)."""
    if position is not None:
        for notification in app.recorder.select_notifications(start=position, limit=1):
            if notification.id == position and notification.originator_id == cohort_id:
                return int(notification.originator_version)
    msg = f"the cohort {cohort_id} has no event at position {position}"
    raise LookupError(msg)


HANDLERS: dict[type, Handler] = {
    ScheduleCohort: schedule_cohort,
    ChangeCapacity: change_capacity,
    StartCohort: start_cohort,
    CompleteCohort: complete_cohort,
    CancelCohort: cancel_cohort,
    ScheduleSession: schedule_session,
    RecordAttendance: record_attendance,
    GiveFeedback: give_feedback,
    CompleteModule: complete_module,
    ChangeTrainingPolicy: change_training_policy,
}
