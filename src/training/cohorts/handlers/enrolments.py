"""Who is in a cohort: enrol people (in bulk), withdraw one, transfer one between cohorts, and
bring the participation records of an older cohort up to date.

An enrolment seats people in order while there is room and waitlists the rest; a withdrawal
frees a seat for the first person waiting. Every placement also writes the curriculum's
enrolments (nobody is in two open cohorts of one curriculum) and each placed person's
participation record (no deactivated member is placed): ``participation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from training.cohorts.domain.cohorts import Cohort, Placement
from training.cohorts.domain.participation import Participation
from training.cohorts.handlers.cohorts import (
    CohortSnapshot,
    EnrolmentOutcome,
    check_active_members,
    not_an_active_member,
)
from training.cohorts.handlers.participation import (
    DEACTIVATED,
    curriculum_enrolments,
    join,
    leave,
    participations,
    withdraw_member,
)
from training.core.application import TrainingApplication
from training.core.bus import Handler, UnitOfWork
from training.core.errors import RuleViolated
from training.people.queries import active_members


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


def place_members(
    uow: UnitOfWork,
    tenant_id: UUID,
    cohort: Cohort,
    member_ids: tuple[UUID, ...],
    records: dict[UUID, Participation | None],
) -> dict[UUID, Placement]:
    """Seats or waitlists the members (``records`` holds each one's participation record).

    The roster says who is active now; a member's record says whether they were deactivated
    while this command ran, because the deactivation writes it and so does the placement:
    if the deactivation commits first, this save conflicts and runs again.
    """
    check_active_members(uow, member_ids, "member_ids")
    for index, member_id in enumerate(member_ids):
        record = records[member_id]
        if record is not None and record.closed:
            raise not_an_active_member(member_id, f"member_ids[{index}]")
    enrolments = curriculum_enrolments(uow, tenant_id, cohort.curriculum_id)
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
    placements = place_members(uow, tenant_id, cohort, command.member_ids, records)
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
    placements = place_members(uow, tenant_id, target, (command.member_id,), records)
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
    active = active_members(uow, everyone)
    changed = 0
    for member_id in everyone:
        record = records[member_id]
        if member_id in active and not (record is not None and record.closed):
            if record is None or cohort.id not in record.cohorts:
                join(uow, tenant_id, records, member_id, cohort.id)
                changed += 1
        else:
            withdraw_member(uow, tenant_id, cohort, member_id, DEACTIVATED)
            if record is not None:
                record.leave(cohort.id)
            changed += 1
    return changed


# -- queries ---------------------------------------------------------------------------------


def promoted_by(app: TrainingApplication, cohort_id: UUID, version: int) -> UUID | None:
    """Who the cohort's event ``version`` seated from the waitlist, read from the event store.

    A withdrawal saves Withdrawn and, when someone was waiting, Promoted as its last event.
    """
    for event in app.events.get(cohort_id, gt=version - 1, lte=version):
        if isinstance(event, Cohort.Promoted):
            return event.member_id
    return None


HANDLERS: dict[type, Handler] = {
    Enrol: enrol,
    Withdraw: withdraw,
    Transfer: transfer,
    RecordParticipation: record_participation,
}
