"""The tracks view writes a batch's run of re-plans together (ADR 0041): the rows are the ones
the same events leave when each is applied in a transaction of its own, also when a track's
progress is noted between two of its re-plans in one batch."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg

from tests.integration.view_runs import apply_batched_then_alone, stamped
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.infra.database import Database
from training.planning.domain.tracks import PlanningCatalogue, PublishedModules, TrainingTrack
from training.planning.views.tracks import TracksProjection, TracksView
from training.reviews.domain import Goal
from training.skills.domain import SkillTarget

CURRICULUM = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
TODAY = dt.date(2026, 12, 1)


def module(key: str) -> ModuleSpec:
    skill = key.partition("-")[0]
    return ModuleSpec(key, key.title(), "", ModuleFormat.LAB, 60, (SkillTarget(skill, 3),), ())


def history(tenant_id: uuid.UUID) -> list[Any]:
    """A track's re-plans with a progress noted between them, as the planning process stores
    them: version 1, python-basics completed, version 2 after a release added git-basics."""
    track = TrainingTrack.open(tenant_id, uuid.uuid4())
    goals = tuple(
        Goal(f"G{i}", skill, 3, dt.date(2027, 6, 30))
        for i, skill in enumerate(("python", "sql", "git"))
    )
    track.apply_review(uuid.uuid4(), (), goals, None)
    events: list[Any] = []
    for version, keys in ((1, ("python-basics", "sql-basics")), (2, ("git-basics",))):
        catalogue = PlanningCatalogue.open(tenant_id)
        offered = ("python-basics", "sql-basics", *keys)
        catalogue.publish(PublishedModules(CURRICULUM, version, tuple(map(module, offered))))
        track.replan(f"release {version}", TODAY, catalogue, PlanningCatalogue.open(None))
        if version == 1:
            track.note_progress(str(CURRICULUM), "python-basics", "completed")
        events += track.collect_events()
    wanted = (TrainingTrack.Replanned, TrainingTrack.ProgressNoted)
    return stamped([e for e in events if isinstance(e, wanted)], tenant_id=tenant_id)


def rows(database: Database, member_id: uuid.UUID) -> tuple[list[Any], list[Any], Any]:
    with psycopg.connect(database.admin_url) as conn:
        modules = conn.execute(
            "SELECT position, curriculum_version, key, state FROM training.track_modules "
            "WHERE member_id = %s ORDER BY position",
            (member_id,),
        ).fetchall()
        plans = conn.execute(
            "SELECT plan_version, trigger, added, removed FROM training.track_plans "
            "WHERE member_id = %s ORDER BY plan_version",
            (member_id,),
        ).fetchall()
        track = conn.execute(
            "SELECT plan_version, trigger, minutes_used, remaining_gaps, deferred "
            "FROM training.tracks WHERE member_id = %s",
            (member_id,),
        ).fetchone()
    return modules, plans, track


def test_a_run_in_one_batch_writes_what_one_event_at_a_time_writes(database: Database) -> None:
    together, alone = history(uuid.uuid4()), history(uuid.uuid4())
    assert len(together) == 3  # re-plan, progress, re-plan
    apply_batched_then_alone(
        database, TracksView, TracksProjection, together, alone, upstream="planning"
    )

    batched, single = rows(database, together[0].member_id), rows(database, alone[0].member_id)
    assert batched == single
    modules, plans, track = batched
    assert modules[0][2:] == ("python-basics", "completed")
    assert [p[:2] for p in plans] == [(1, "release 1"), (2, "release 2")]
    assert track[:2] == (2, "release 2")
