"""The re-planning policy follows every change of a person's cohorts and of their standing.

Commands run on the in-memory event store; the planning policy then takes in the events in
order, as its runner does. See ``cohort_world`` for why the plan shows which cohort counts.
"""

from __future__ import annotations

import datetime as dt
import uuid

from eventsourcing.utils import get_topic

from tests.unit.cohort_world import planned_keys, world
from training.cohorts.domain.cohorts import Cohort
from training.cohorts.handlers.cohorts import CancelCohort, CompleteModule, StartCohort
from training.cohorts.handlers.enrolments import Enrol, Transfer, Withdraw
from training.people.domain.members import Member
from training.people.handlers.members import DeactivateMember, ReactivateMember
from training.planning.domain.tracks import TrainingTrack


def triggered_by(replanned: TrainingTrack.Replanned, cls: type, aggregate: uuid.UUID) -> bool:
    return replanned.trigger.startswith(f"{get_topic(cls)}:{aggregate}:")


def test_a_person_promoted_from_the_waitlist_gets_the_cohort_on_their_track() -> None:
    w = world()
    first, waiting = w.member("ann"), w.member("bob")
    w.review(first)
    w.review(waiting)
    cohort = w.cohort(capacity=1)
    w.run(Enrol(cohort, (first, waiting)))
    assert cohort in w.track(first).cohorts
    assert cohort not in w.track(waiting).cohorts
    assert planned_keys(w.replans(waiting)[-1]) == [w.other_module]

    w.run(Withdraw(cohort, first, "changed team"))
    assert w.track(waiting).cohorts == {cohort: (w.cohort_curriculum, 1)}
    promoted = w.replans(waiting)[-1]
    assert triggered_by(promoted, Cohort.Promoted, cohort)
    assert planned_keys(promoted) == [w.cohort_module]
    assert [(ref[1], bool(reason)) for ref, reason in promoted.diff.added] == [
        (w.cohort_module, True)
    ]
    assert [reason for _, reason in promoted.diff.removed] == [f"superseded by '{w.cohort_module}'"]


def test_a_withdrawn_person_no_longer_prefers_the_cohorts_curriculum() -> None:
    w = world()
    person, waiting = w.member("cat"), w.member("dan")
    w.review(person)
    cohort = w.cohort(capacity=1)
    w.run(Enrol(cohort, (person, waiting)))
    assert planned_keys(w.replans(person)[-1]) == [w.cohort_module]

    w.run(Withdraw(cohort, person, "no time"))
    track = w.track(person)
    assert track.cohorts == {}
    withdrawn = w.replans(person)[-1]
    assert triggered_by(withdrawn, Cohort.Withdrawn, cohort)
    assert planned_keys(withdrawn) == [w.other_module]
    assert [(ref[1], reason) for ref, reason in withdrawn.diff.removed] == [
        (w.cohort_module, f"superseded by '{w.other_module}'")
    ]


def test_leaving_a_waitlist_changes_no_plan() -> None:
    w = world()
    seated, waiting = w.member("eve"), w.member("fay")
    w.review(waiting)
    cohort = w.cohort(capacity=1)
    w.run(Enrol(cohort, (seated, waiting)))
    before = len(w.replans(waiting))
    w.run(Withdraw(cohort, waiting, "not now"))
    assert len(w.replans(waiting)) == before


def test_a_cancelled_cohort_leaves_every_track_it_was_on() -> None:
    w = world()
    people = [w.member(name) for name in ("gus", "hal")]
    for person in people:
        w.review(person)
    cohort = w.cohort(capacity=5)
    w.run(Enrol(cohort, tuple(people)))
    w.run(CancelCohort(cohort, "no trainer"))
    for person in people:
        assert w.track(person).cohorts == {}
        cancelled = w.replans(person)[-1]
        assert triggered_by(cancelled, Cohort.Cancelled, cohort)
        assert planned_keys(cancelled) == [w.other_module]


def test_a_transfer_leaves_one_cohort_and_joins_the_other() -> None:
    w = world()
    person = w.member("ivy")
    w.review(person)
    source = w.cohort(capacity=2)
    target = w.cohort(capacity=2, curriculum=w.other_curriculum)
    w.run(Enrol(source, (person,)))
    w.run(Transfer(person, source, target, "other dates"))
    track = w.track(person)
    assert track.cohorts == {target: (w.other_curriculum, 1)}
    left, joined = w.replans(person)[-2:]
    assert triggered_by(left, Cohort.Withdrawn, source)
    assert triggered_by(joined, Cohort.Enrolled, target)
    assert planned_keys(joined) == [w.other_module]


def test_deactivation_withdraws_promotes_and_freezes_and_reactivation_replans() -> None:
    w = world()
    person, waiting = w.member("jon"), w.member("kim")
    w.review(person)
    w.review(waiting)
    cohort = w.cohort(capacity=1)
    w.run(Enrol(cohort, (person, waiting)))
    planned = len(w.replans(person))

    w.run(DeactivateMember(person, "left the company"))
    track = w.track(person)
    assert track.frozen
    assert track.cohorts == {}  # withdrawn by the deactivation
    assert len(w.replans(person)) == planned  # frozen first: nothing re-planned
    assert w.track(waiting).cohorts == {cohort: (w.cohort_curriculum, 1)}  # promoted
    assert triggered_by(w.replans(waiting)[-1], Cohort.Promoted, cohort)

    w.review(person)  # evidence still arrives, and waits
    assert len(w.replans(person)) == planned

    w.run(ReactivateMember(person))
    assert not w.track(person).frozen
    reactivated = w.replans(person)[-1]
    assert triggered_by(reactivated, Member.Reactivated, person)
    assert planned_keys(reactivated) == [w.other_module]  # the cohort is gone


def test_deactivating_someone_without_a_track_plans_nothing_ever_after() -> None:
    w = world()
    person = w.member("lea")
    w.run(DeactivateMember(person, "left"))
    assert w.track(person).frozen
    w.review(person)
    assert w.replans(person) == []
    w.run(ReactivateMember(person))
    reactivated = w.replans(person)
    assert len(reactivated) == 1  # the review it took in while frozen
    assert triggered_by(reactivated[0], Member.Reactivated, person)


def test_a_module_completed_in_the_cohort_is_done_on_the_track() -> None:
    w = world()
    person = w.member("max")
    w.review(person)
    cohort = w.cohort(capacity=1)
    w.run(Enrol(cohort, (person,)))
    w.run(StartCohort(cohort))
    w.run(CompleteModule(cohort, person, w.cohort_module, dt.date(2030, 3, 9)))
    assert (str(w.cohort_curriculum), w.cohort_module) in w.track(person).completed
