"""The tracks view's rows for a run of re-plans, worked out in memory (ADR 0041).

A run written together must leave the rows that writing its events one at a time leaves:
completed modules first in the order they were done, a started module keeping its state,
and a track re-planned twice in one run ending with its second plan and both in its history.
"""

from __future__ import annotations

import datetime as dt
import uuid

from training.curricula.domain import ModuleFormat, ModuleSpec
from training.planning.domain.tracks import PlanningCatalogue, PublishedModules, TrainingTrack
from training.planning.views.plan_rows import ModuleRow, plan_rows
from training.reviews.domain import Goal
from training.skills.domain import SkillTarget

TENANT = uuid.uuid4()
CURRICULUM = uuid.UUID("00000000-0000-4000-8000-000000000001")
TODAY = dt.date(2026, 12, 1)


def module(key: str, skill: str) -> ModuleSpec:
    return ModuleSpec(key, key.title(), "", ModuleFormat.LAB, 60, (SkillTarget(skill, 3),), ())


def replanned(track: TrainingTrack, trigger: str, *keys: str) -> TrainingTrack.Replanned:
    catalogue = PlanningCatalogue.open(TENANT)
    modules = tuple(module(key, key.partition("-")[0]) for key in keys)
    catalogue.publish(PublishedModules(CURRICULUM, 1, modules))
    track.replan(trigger, TODAY, catalogue, PlanningCatalogue.open(None))
    [event] = [e for e in track.collect_events() if isinstance(e, TrainingTrack.Replanned)]
    return event


def a_track() -> TrainingTrack:
    track = TrainingTrack.open(TENANT, uuid.uuid4())
    goals = tuple(
        Goal(f"G{i}", skill, 3, dt.date(2027, 6, 30))
        for i, skill in enumerate(("python", "sql", "git"))
    )
    track.apply_review(uuid.uuid4(), (), goals, None)
    return track


def held(key: str, state: str) -> ModuleRow:
    return ModuleRow(str(CURRICULUM), 1, key, key.title(), 60, TODAY, "earlier", state)


def test_a_run_leaves_the_rows_of_its_events_written_one_at_a_time() -> None:
    track = a_track()
    first = replanned(track, "review", "python-basics", "sql-basics")
    second = replanned(track, "release", "python-basics", "sql-basics", "git-basics")
    other = a_track()
    alone = replanned(other, "review", "git-basics")
    before = {track.member_id: [held("done-first", "completed"), held("sql-basics", "started")]}

    together = plan_rows([first, alone, second], before)

    one = plan_rows([first], before)
    after_first = {
        track.member_id: [row for row in one.modules[track.member_id] if row.state != "planned"]
    }
    two = plan_rows([second], after_first)
    assert together.modules[track.member_id] == two.modules[track.member_id]
    assert together.tracks[track.member_id] == two.tracks[track.member_id]
    assert together.modules[other.member_id] == plan_rows([alone], {}).modules[other.member_id]
    assert [(row["member_id"], row["plan_version"], row["trigger"]) for row in together.plans] == [
        (track.member_id, 1, "review"),
        (other.member_id, 1, "review"),
        (track.member_id, 2, "release"),
    ]


def test_completed_modules_stay_first_and_a_started_one_keeps_its_state() -> None:
    track = a_track()
    event = replanned(track, "review", "python-basics", "sql-basics")
    before = {track.member_id: [held("done-first", "completed"), held("sql-basics", "started")]}

    rows = plan_rows([event], before).modules[track.member_id]

    assert rows[0] == held("done-first", "completed")
    states = {row.key: row.state for row in rows[1:]}
    assert states == {"python-basics": "planned", "sql-basics": "started"}
    assert [row.due_on for row in rows[1:]] == sorted(row.due_on for row in rows[1:])
