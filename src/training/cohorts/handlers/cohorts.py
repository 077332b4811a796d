"""Cohort use cases: schedule, enrol, transfer, run live sessions, record progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID, uuid4

from training.cohorts.domain.calendar import CalendarFeed, FeedKind
from training.cohorts.domain.cohorts import (
    Attendance,
    Cohort,
    Placement,
    Session,
    cleaned_reason,
)
from training.cohorts.domain.participation import Participation
from training.cohorts.domain.policy import TrainingPolicy
from training.cohorts.handlers.participation import (
    DEACTIVATED,
    join,
    leave,
    participations,
    registry,
    withdraw_member,
)
from training.cohorts.queries import policy
from training.core.bus import Handler, UnitOfWork
from training.core.credentials import hash_secret, new_secret
from training.core.errors import Forbidden, RuleViolated
from training.curricula.queries import visible_curriculum
from training.people.queries import seat_roster


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
class Enrol:
    cohort_id: UUID
    member_ids: tuple[UUID, ...]


@dataclass(frozen=True)
class Withdraw:
    cohort_id: UUID
    member_id: UUID
    reason: str


@dataclass(frozen=True)
class Transfer:
    member_id: UUID
    from_cohort_id: UUID
    to_cohort_id: UUID
    reason: str


@dataclass(frozen=True)
class RecordParticipation:
    """Brings the participation records of an open cohort's people up to date: for cohorts
    whose people were placed before records were kept (ADR 0025). Someone deactivated
    meanwhile is withdrawn, as their deactivation would have done."""

    cohort_id: UUID


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


@dataclass(frozen=True)
class RotateCalendarFeed:
    kind: FeedKind
    subject_id: UUID


@dataclass(frozen=True)
class CohortSnapshot:
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
    cohort: CohortSnapshot
    enrolled: tuple[UUID, ...]
    waitlisted: tuple[UUID, ...]


@dataclass(frozen=True)
class IssuedFeed:
    feed_id: UUID
    token: str


def _not_active(member_id: UUID, field: str) -> RuleViolated:
    return RuleViolated(f"{member_id} is not an active member of this tenant", field=field)


def check_active_members(
    uow: UnitOfWork, tenant_id: UUID, member_ids: tuple[UUID, ...], field: str
) -> None:
    roster = seat_roster(uow, tenant_id)
    for index, member_id in enumerate(member_ids):
        if not roster.is_active(member_id):
            raise _not_active(member_id, f"{field}[{index}]")


def schedule_cohort(command: ScheduleCohort, uow: UnitOfWork) -> CohortSnapshot:
    tenant_id = uow.require_tenant()
    curriculum = visible_curriculum(uow.app, tenant_id, command.curriculum_id)
    version = curriculum.version_of(command.curriculum_version)
    check_active_members(uow, tenant_id, command.facilitators, "facilitators")
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
    registry(uow, tenant_id, cohort.curriculum_id).leave(everyone)
    return CohortSnapshot.of(cohort)


def cancel_cohort(command: CancelCohort, uow: UnitOfWork) -> CohortSnapshot:
    tenant_id = uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id)
    withdrawn = cohort.cancel(command.reason)
    # The reason is kept beside the events, by the version of the Cancelled event.
    uow.keep_cohort_reason(cohort, cohort.version, withdrawn, cleaned_reason(command.reason))
    registry(uow, tenant_id, cohort.curriculum_id).leave(withdrawn)
    return CohortSnapshot.of(cohort)


def _enrol(
    uow: UnitOfWork,
    tenant_id: UUID,
    cohort: Cohort,
    member_ids: tuple[UUID, ...],
    records: dict[UUID, Participation | None],
) -> dict[UUID, Placement]:
    """Places the members (``records`` holds each one's participation record).

    The roster says who is active now; a member's record says whether they were deactivated
    while this command ran, because the deactivation writes it and so does the placement:
    if the deactivation commits first, this save conflicts and runs again.
    """
    check_active_members(uow, tenant_id, member_ids, "member_ids")
    for index, member_id in enumerate(member_ids):
        record = records[member_id]
        if record is not None and record.closed:
            raise _not_active(member_id, f"member_ids[{index}]")
    enrolments = registry(uow, tenant_id, cohort.curriculum_id)
    elsewhere = [m for m in member_ids if enrolments.cohort_of.get(m, cohort.id) != cohort.id]
    if elsewhere:
        index = member_ids.index(elsewhere[0])
        raise RuleViolated(
            f"{len(elsewhere)} of them are already in another open cohort of this curriculum, "
            f"first {elsewhere[0]}",
            field=f"member_ids[{index}]",
        )
    placements = cohort.enrol(member_ids)
    enrolments.join(cohort.id, tuple(placements))
    for member_id in placements:
        join(uow, tenant_id, records, member_id, cohort.id)
    return placements


def enrol(command: Enrol, uow: UnitOfWork) -> EnrolmentOutcome:
    tenant_id = uow.require_tenant()
    records = participations(uow, tenant_id, command.member_ids)
    cohort = uow.get(Cohort, command.cohort_id)
    placements = _enrol(uow, tenant_id, cohort, command.member_ids, records)
    return EnrolmentOutcome(
        CohortSnapshot.of(cohort),
        tuple(m for m, p in placements.items() if p is Placement.ENROLLED),
        tuple(m for m, p in placements.items() if p is Placement.WAITLISTED),
    )


def withdraw(command: Withdraw, uow: UnitOfWork) -> CohortSnapshot:
    tenant_id = uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id)
    withdraw_member(uow, tenant_id, cohort, command.member_id, command.reason)
    leave(uow, tenant_id, command.member_id, cohort.id)
    return CohortSnapshot.of(cohort)


def transfer(command: Transfer, uow: UnitOfWork) -> EnrolmentOutcome:
    """Withdraw from one cohort and enrol into another in one transaction: both or neither."""
    tenant_id = uow.require_tenant()
    if command.from_cohort_id == command.to_cohort_id:
        raise RuleViolated("a transfer needs two different cohorts", field="to_cohort_id")
    records = participations(uow, tenant_id, (command.member_id,))
    source = uow.get(Cohort, command.from_cohort_id)
    target = uow.get(Cohort, command.to_cohort_id)
    withdraw_member(uow, tenant_id, source, command.member_id, f"transferred: {command.reason}")
    record = records[command.member_id]
    if record is not None:
        record.leave(source.id)
    placements = _enrol(uow, tenant_id, target, (command.member_id,), records)
    placement = placements[command.member_id]
    return EnrolmentOutcome(
        CohortSnapshot.of(target),
        (command.member_id,) if placement is Placement.ENROLLED else (),
        (command.member_id,) if placement is Placement.WAITLISTED else (),
    )


def record_participation(command: RecordParticipation, uow: UnitOfWork) -> int:
    """Answers how many records it changed (none when run again)."""
    tenant_id = uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id)
    if not cohort.is_open:
        return 0
    everyone = (*cohort.enrolled, *cohort.waitlist)
    records = participations(uow, tenant_id, everyone)
    roster = seat_roster(uow, tenant_id)
    changed = 0
    for member_id in everyone:
        record = records[member_id]
        if roster.is_active(member_id) and not (record is not None and record.closed):
            if record is None or cohort.id not in record.cohorts:
                join(uow, tenant_id, records, member_id, cohort.id)
                changed += 1
        else:
            withdraw_member(uow, tenant_id, cohort, member_id, DEACTIVATED)
            if record is not None:
                record.leave(cohort.id)
            changed += 1
    return changed


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
    current = policy(uow, tenant_id)
    current.change(command.at_risk_threshold, command.retake_cooldown_days)
    return current


def rotate_calendar_feed(command: RotateCalendarFeed, uow: UnitOfWork) -> IssuedFeed:
    tenant_id = uow.require_tenant()
    if command.kind is FeedKind.COHORT:
        uow.get(Cohort, command.subject_id)  # the cohort exists in this tenant
    token = new_secret()
    feed_id = CalendarFeed.create_id(tenant_id, command.kind, command.subject_id)
    if uow.exists(feed_id):
        uow.get(CalendarFeed, feed_id).rotate(hash_secret(token))
    else:
        uow.add(CalendarFeed.issue(tenant_id, command.kind, command.subject_id, hash_secret(token)))
    return IssuedFeed(feed_id, token)


HANDLERS: dict[type, Handler] = {
    ScheduleCohort: schedule_cohort,
    ChangeCapacity: change_capacity,
    StartCohort: start_cohort,
    CompleteCohort: complete_cohort,
    CancelCohort: cancel_cohort,
    Enrol: enrol,
    Withdraw: withdraw,
    Transfer: transfer,
    RecordParticipation: record_participation,
    ScheduleSession: schedule_session,
    RecordAttendance: record_attendance,
    GiveFeedback: give_feedback,
    CompleteModule: complete_module,
    ChangeTrainingPolicy: change_training_policy,
    RotateCalendarFeed: rotate_calendar_feed,
}
