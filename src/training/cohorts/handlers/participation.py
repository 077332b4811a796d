"""Who is in which open cohort, from the event store: the records enrolment and deactivation
share (ADR 0025).

Every command that places people in a cohort writes each placed person's ``Participation``;
deactivating a member writes it too (closing it) after withdrawing them from every cohort
it lists. The two writing the same record is what makes them conflict when they race, so
the one that loses runs again on the other's outcome: an enrolment then finds the member
deactivated, a deactivation finds the new cohort and withdraws the member from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from training.cohorts.domain.cohorts import Cohort
from training.cohorts.domain.participation import CurriculumEnrolments, Participation
from training.core.bus import UnitOfWork

# The reason a deactivation gives the cohorts it withdraws the member from.
DEACTIVATED = "member deactivated"


def curriculum_enrolments(
    uow: UnitOfWork, tenant_id: UUID, curriculum_id: UUID
) -> CurriculumEnrolments:
    """Who is in an open cohort of the curriculum; a new record (saved with the rest) when
    nobody has been yet."""
    return uow.get_or_add(
        CurriculumEnrolments,
        CurriculumEnrolments.create_id(tenant_id, curriculum_id),
        lambda: CurriculumEnrolments.open(tenant_id, curriculum_id),
    )


def participation(uow: UnitOfWork, tenant_id: UUID, member_id: UUID) -> Participation:
    """One member's record; a new one (saved with the rest) when they have none yet."""
    return uow.get_or_add(
        Participation,
        Participation.create_id(tenant_id, member_id),
        lambda: Participation.open(tenant_id, member_id),
    )


def participations(
    uow: UnitOfWork, tenant_id: UUID, member_ids: Sequence[UUID]
) -> dict[UUID, Participation | None]:
    """Each member's record (None for a member who has none yet), loaded with one query, for
    a command about many people. Load them before anything else in the unit of work reads
    one of them."""
    wanted = {Participation.create_id(tenant_id, m): m for m in dict.fromkeys(member_ids)}
    found = uow.get_many(Participation, wanted)
    return {member_id: found.get(record_id) for record_id, member_id in wanted.items()}


def join(
    uow: UnitOfWork,
    tenant_id: UUID,
    records: dict[UUID, Participation | None],
    member_id: UUID,
    cohort_id: UUID,
) -> None:
    """Lists the cohort on the member's record, opening the record if they have none."""
    record = records[member_id]
    if record is None:
        record = Participation.open(tenant_id, member_id, first_cohort=cohort_id)
        records[member_id] = record
        uow.add(record)
    else:
        record.join(cohort_id)


def leave(uow: UnitOfWork, tenant_id: UUID, member_id: UUID, cohort_id: UUID) -> None:
    """Takes the cohort off the member's record (members placed before records were kept
    have none: nothing to update)."""
    record_id = Participation.create_id(tenant_id, member_id)
    if uow.exists(record_id):
        uow.get(Participation, record_id).leave(cohort_id)


def withdraw_member(
    uow: UnitOfWork, tenant_id: UUID, cohort: Cohort, member_id: UUID, reason: str
) -> UUID | None:
    """Takes the member out of the cohort, freeing their place for the first person waiting;
    answers who was promoted, if anyone. The caller updates the member's record. The reason
    is kept beside the events (it may name people)."""
    withdrawal = cohort.withdraw(member_id, reason)
    uow.keep_cohort_reason(cohort, withdrawal.version, (member_id,), withdrawal.reason, member_id)
    curriculum_enrolments(uow, tenant_id, cohort.curriculum_id).leave((member_id,))
    return withdrawal.promoted


def withdraw_from_every_cohort(uow: UnitOfWork, tenant_id: UUID, member_id: UUID) -> None:
    """For a deactivation: withdraws the member from every open cohort they are in, enrolled
    or waiting, and closes their record so that no enrolment places them until reactivated.
    """
    record = participation(uow, tenant_id, member_id)
    withdrawn = []
    for cohort_id in record.cohorts:
        cohort = uow.get(Cohort, cohort_id)
        # The record may list a cohort that was completed or cancelled since.
        if cohort.is_open and cohort.place(member_id) is not None:
            withdraw_member(uow, tenant_id, cohort, member_id, DEACTIVATED)
            withdrawn.append(cohort_id)
    record.close(tuple(withdrawn))


def reopen_participation(uow: UnitOfWork, tenant_id: UUID, member_id: UUID) -> None:
    """For a reactivation: the member may join cohorts again."""
    record_id = Participation.create_id(tenant_id, member_id)
    if uow.exists(record_id):
        uow.get(Participation, record_id).reopen()
