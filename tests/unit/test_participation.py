"""Participation records: enrolment and deactivation share them, so neither skips the other.

Commands run through the real command bus on the in-memory event store. The races are
played deterministically: one command decides, the other commits, then the first saves.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.cohort_world import World, world
from training.cohorts.domain.cohorts import Cohort
from training.cohorts.domain.participation import Participation
from training.cohorts.handlers.cohorts import CancelCohort, CompleteCohort, StartCohort
from training.cohorts.handlers.enrolments import Enrol, RecordParticipation, Transfer, Withdraw
from training.core.bus import UnitOfWork
from training.core.errors import InvalidTransition, RuleViolated
from training.people.domain.members import Member
from training.people.domain.seats import SeatRoster
from training.people.handlers.members import DeactivateMember, ReactivateMember

# -- the record itself -------------------------------------------------------------------------


def test_a_record_lists_open_cohorts_until_closed_and_is_rebuilt_from_its_events() -> None:
    tenant, member = uuid.uuid4(), uuid.uuid4()
    first, second = uuid.uuid4(), uuid.uuid4()
    record = Participation.open(tenant, member, first_cohort=first)
    assert record.id == Participation.create_id(tenant, member)
    record.join(second)
    record.join(second)  # already listed: no event
    record.leave(first)
    record.leave(uuid.uuid4())  # never listed: no event
    assert record.cohorts == [second]
    record.close((second,))
    assert (record.cohorts, record.closed) == ([], True)
    with pytest.raises(InvalidTransition):
        record.join(first)
    record.reopen()
    record.join(first)
    events = record.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Opened",
        "Joined",
        "Left",
        "Closed",
        "Reopened",
        "Joined",
    ]
    copy = None
    for e in events:
        copy = e.mutate(copy)
    assert isinstance(copy, Participation)
    assert (copy.cohorts, copy.closed, copy.version) == ([first], False, record.version)


# -- the commands ------------------------------------------------------------------------------


def record_of(w: World, member_id: uuid.UUID) -> Participation:
    record: Participation = w.bus.app.repository.get(
        Participation.create_id(w.tenant_id, member_id)
    )
    return record


def cohort_of(w: World, cohort_id: uuid.UUID) -> Cohort:
    cohort: Cohort = w.bus.app.repository.get(cohort_id)
    return cohort


def test_enrolment_records_every_placed_person_in_one_event_each() -> None:
    w = world()
    veteran, newcomer, waiting = w.member("ann"), w.member("bob"), w.member("cat")
    earlier = w.cohort(capacity=5, curriculum=w.other_curriculum)
    w.run(Enrol(earlier, (veteran,)))
    cohort = w.cohort(capacity=2)
    before = w.bus.app.recorder.max_notification_id()
    w.run(Enrol(cohort, (veteran, newcomer, waiting)))
    assert record_of(w, veteran).cohorts == [earlier, cohort]
    assert record_of(w, newcomer).cohorts == [cohort]
    assert record_of(w, waiting).cohorts == [cohort]  # waiting counts: they may be promoted
    written = w.bus.app.recorder.select_notifications(before, 100, inclusive_of_start=False)
    records = [n.topic for n in written if n.topic.startswith("training.cohorts:Participation")]
    assert sorted(records) == sorted(
        [
            "training.cohorts:Participation.Joined",
            "training.cohorts:Participation.Opened",
            "training.cohorts:Participation.Opened",
        ]
    )


def test_withdrawal_and_transfer_keep_the_record_in_step() -> None:
    w = world()
    person = w.member("dan")
    source = w.cohort(capacity=2)
    target = w.cohort(capacity=2, curriculum=w.other_curriculum)
    w.run(Enrol(source, (person,)))
    w.run(Transfer(person, source, target, "dates"))
    assert record_of(w, person).cohorts == [target]
    w.run(Withdraw(target, person, "no time"))
    assert record_of(w, person).cohorts == []


def test_deactivation_withdraws_from_every_open_cohort_and_promotes_the_first_waiting() -> None:
    w = world()
    person, waiting, other = w.member("eve"), w.member("fay"), w.member("gus")
    seated = w.cohort(capacity=1)
    queued = w.cohort(capacity=1, curriculum=w.other_curriculum)
    w.run(Enrol(seated, (person, waiting)))
    w.run(Enrol(queued, (other, person)))
    finished = w.cohort(capacity=3, curriculum=w.other_curriculum)
    w.run(Withdraw(queued, person, "for a later run"))
    w.run(Enrol(finished, (person,)))
    w.run(StartCohort(finished))
    w.run(CompleteCohort(finished))  # closed: stays listed on the record, and is skipped
    w.run(Enrol(queued, (person,)))

    w.run(DeactivateMember(person, "left the company"))
    assert cohort_of(w, seated).enrolled == [waiting]  # the first waiting took the seat
    assert cohort_of(w, queued).waitlist == []
    assert cohort_of(w, finished).enrolled == [person]  # history is not rewritten
    record = record_of(w, person)
    assert (record.cohorts, record.closed) == ([], True)
    closed = list(w.bus.app.events.get(record.id))[-1]
    assert isinstance(closed, Participation.Closed)
    assert set(closed.withdrawn) == {seated, queued}
    withdrawn = [e for e in w.bus.app.events.get(seated) if isinstance(e, Cohort.Withdrawn)]
    # Why ("member deactivated") is kept beside the events (tests/api/test_cohort_tracks.py reads it).
    assert [e.member_id for e in withdrawn] == [person]


def test_a_deactivated_member_is_not_enrolled_until_reactivated() -> None:
    w = world()
    person = w.member("hal")
    cohort = w.cohort(capacity=3)
    w.run(DeactivateMember(person, "on leave"))
    with pytest.raises(RuleViolated) as refused:
        w.run(Enrol(cohort, (person,)))
    assert refused.value.field == "member_ids[0]"
    w.run(ReactivateMember(person))
    assert not record_of(w, person).closed
    assert w.run(Enrol(cohort, (person,))).enrolled == (person,)


def test_cancelling_a_cohort_leaves_it_on_records_and_deactivation_skips_it() -> None:
    w = world()
    person = w.member("ivy")
    cohort = w.cohort(capacity=3)
    w.run(Enrol(cohort, (person,)))
    w.run(CancelCohort(cohort, "no trainer"))
    w.run(DeactivateMember(person, "left"))
    assert record_of(w, person).closed


# -- races, played one step at a time ----------------------------------------------------------


def interleave(w: World, command_type: type, other: Any) -> Callable[[], list[bool]]:
    """After ``command_type``'s handler has decided, and before its save, ``other`` runs
    and commits, once; answers how many times the handler ran."""
    original = w.bus.handlers[command_type]
    runs: list[bool] = []

    def handler(command: Any, uow: UnitOfWork) -> Any:
        runs.append(True)
        result = original(command, uow)
        if len(runs) == 1:
            w.run(other)
        return result

    w.bus.handlers[command_type] = handler
    return lambda: runs


def test_an_enrolment_overtaken_by_the_deactivation_is_refused_when_run_again() -> None:
    w = world()
    person = w.member("jon")
    cohort = w.cohort(capacity=3)
    runs = interleave(w, Enrol, DeactivateMember(person, "left"))
    with pytest.raises(RuleViolated) as refused:
        w.run(Enrol(cohort, (person,)))
    assert refused.value.field == "member_ids[0]"
    assert len(runs()) == 2  # its first save conflicted with the deactivation
    assert cohort_of(w, cohort).enrolled == []


def test_a_deactivation_overtaken_by_an_enrolment_withdraws_from_that_cohort_too() -> None:
    w = world()
    person, waiting = w.member("kim"), w.member("lea")
    cohort = w.cohort(capacity=1)
    w.run(Enrol(cohort, (waiting,)))
    w.run(Withdraw(cohort, waiting, "make room"))
    runs = interleave(w, DeactivateMember, Enrol(cohort, (person, waiting)))
    w.run(DeactivateMember(person, "left"))
    assert len(runs()) == 2
    assert cohort_of(w, cohort).enrolled == [waiting]  # person withdrawn, waiting promoted
    assert record_of(w, person).closed


# -- cohorts from before records were kept -----------------------------------------------------


def test_records_are_brought_up_to_date_for_people_placed_before_they_were_kept() -> None:
    w = world()
    stays, left, waiting = w.member("mia"), w.member("ned"), w.member("oli")
    cohort_id = w.cohort(capacity=2)
    # As before records were kept: placed in the cohort, then one deactivated without a
    # withdrawal.
    app = w.bus.app
    cohort = cohort_of(w, cohort_id)
    cohort.enrol((stays, left, waiting))
    member = app.repository.get(left)
    assert isinstance(member, Member)
    member.deactivate("left")
    roster = app.repository.get(SeatRoster.create_id(w.tenant_id))
    assert isinstance(roster, SeatRoster)
    roster.release((left,))
    app.save(cohort, member, roster)

    assert w.run(RecordParticipation(cohort_id)) == 3
    assert cohort_of(w, cohort_id).enrolled == [stays, waiting]  # left withdrawn, oli promoted
    assert record_of(w, stays).cohorts == [cohort_id]
    assert record_of(w, waiting).cohorts == [cohort_id]
    assert w.run(RecordParticipation(cohort_id)) == 0  # once is enough

    w.run(DeactivateMember(stays, "left too"))  # now found through the record
    assert cohort_of(w, cohort_id).enrolled == [waiting]
