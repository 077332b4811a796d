"""A training track's decisions about cohorts and freezing, without infrastructure.

Two curricula teach the same skill to the same level in the same time, so the planner's
choice between them comes down to the preferred one: the curriculum version of a cohort the
person is in. That makes every change of cohorts visible in the plan and its diff.
"""

from __future__ import annotations

import datetime as dt
import uuid

from training.curricula.domain import ModuleFormat, ModuleSpec
from training.planning.domain.tracks import PlanningCatalogue, PublishedModules, TrainingTrack
from training.reviews.domain import Goal, SkillRating
from training.skills.domain import SkillTarget

TENANT = uuid.uuid4()
TODAY = dt.date(2026, 12, 1)
# The planner breaks a tie by curriculum id: FIRST wins unless LATER is preferred.
FIRST = uuid.UUID("00000000-0000-4000-8000-000000000001")
LATER = uuid.UUID("ffffffff-ffff-4fff-8fff-ffffffffffff")


def module(key: str) -> ModuleSpec:
    return ModuleSpec(key, key.title(), "", ModuleFormat.LAB, 60, (SkillTarget("python", 3),), ())


def catalogue() -> PlanningCatalogue:
    tenant = PlanningCatalogue.open(TENANT)
    tenant.publish(PublishedModules(FIRST, 1, (module("first-python"),)))
    tenant.publish(PublishedModules(LATER, 1, (module("later-python"),)))
    return tenant


def reviewed_track() -> TrainingTrack:
    track = TrainingTrack.open(TENANT, uuid.uuid4())
    track.apply_review(
        uuid.uuid4(),
        (SkillRating("python", 2),),
        (Goal("G1", "python", 3, dt.date(2027, 6, 30)),),
        None,
    )
    return track


def replan(track: TrainingTrack, trigger: str) -> TrainingTrack.Replanned:
    track.replan(trigger, TODAY, catalogue(), PlanningCatalogue.open(None))
    replanned = [e for e in track.collect_events() if isinstance(e, TrainingTrack.Replanned)]
    assert len(replanned) == 1
    return replanned[0]


def keys(replanned: TrainingTrack.Replanned) -> list[str]:
    return [m.key for m in replanned.plan.modules]


def test_a_cohort_on_the_track_prefers_its_curriculum_and_leaving_it_stops_that() -> None:
    track = reviewed_track()
    assert keys(replan(track, "review")) == ["first-python"]

    cohort = uuid.uuid4()
    track.join_cohort(cohort, LATER, 1)
    joined = replan(track, "promoted")
    assert keys(joined) == ["later-python"]
    assert [ref[1] for ref, _ in joined.diff.added] == ["later-python"]
    assert joined.diff.removed == (((str(FIRST), "first-python"), "superseded by 'later-python'"),)

    assert track.leave_cohort(cohort)
    left = replan(track, "withdrawn")
    assert keys(left) == ["first-python"]
    assert [ref[1] for ref, _ in left.diff.removed] == ["later-python"]
    assert all(reason for _, reason in (*left.diff.added, *left.diff.removed))
    assert (left.trigger, left.plan_version) == ("withdrawn", 3)


def test_leaving_a_cohort_that_was_never_on_the_track_changes_nothing() -> None:
    track = reviewed_track()
    track.collect_events()
    assert not track.leave_cohort(uuid.uuid4())  # e.g. withdrawn from the waitlist
    assert track.collect_events() == []


def test_modules_completed_in_a_cohort_stay_done_after_leaving_it() -> None:
    track = reviewed_track()
    cohort = uuid.uuid4()
    track.join_cohort(cohort, LATER, 1)
    assert keys(replan(track, "enrolled")) == ["later-python"]
    track.note_progress(str(LATER), "later-python", "completed")
    track.leave_cohort(cohort)
    left = replan(track, "withdrawn")
    # Done, so never planned again (its effect on the level is for an assessment to show),
    # and the diff says so rather than "superseded".
    assert "later-python" not in keys(left)
    assert left.diff.removed == (((str(LATER), "later-python"), "completed"),)
    assert (str(LATER), "later-python") in track.completed


def test_a_frozen_track_keeps_its_inputs_but_plans_nothing_until_unfrozen() -> None:
    track = reviewed_track()
    replan(track, "review")
    track.freeze()
    assert track.frozen
    cohort = uuid.uuid4()
    track.join_cohort(cohort, LATER, 1)
    track.replan("enrolled while frozen", TODAY, catalogue(), PlanningCatalogue.open(None))
    frozen = track.collect_events()
    assert [type(e).__name__ for e in frozen] == ["Frozen", "CohortJoined"]
    assert "enrolled while frozen" not in track.triggers

    assert track.unfreeze()
    assert not track.unfreeze()  # only once
    unfrozen = replan(track, "reactivated")
    assert keys(unfrozen) == ["later-python"]  # what it took in while frozen counts
    assert unfrozen.plan_version == 2


def test_a_track_opened_only_to_be_frozen_has_nothing_to_plan_from() -> None:
    track = TrainingTrack.open(TENANT, uuid.uuid4())
    track.freeze()
    assert track.unfreeze()
    assert not track.has_inputs
    assert reviewed_track().has_inputs


def test_a_track_is_rebuilt_from_its_events_frozen_and_without_the_cohort_it_left() -> None:
    track = reviewed_track()
    cohort = uuid.uuid4()
    track.join_cohort(cohort, LATER, 1)
    track.leave_cohort(cohort)
    track.freeze()
    copy = None
    for event in track.collect_events():
        copy = event.mutate(copy)
    assert isinstance(copy, TrainingTrack)
    assert (copy.cohorts, copy.frozen, copy.version) == ({}, True, track.version)
