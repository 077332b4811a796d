"""The re-planning policy: evidence re-plans tracks exactly once per trigger, even across a crash."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from functools import partial
from typing import Any, ClassVar, NamedTuple

import psycopg

from tests import waiting
from tests.helpers import system_context
from training.bootstrap import projection_supervisor
from training.cohorts.handlers.cohorts import CancelCohort, ScheduleCohort
from training.cohorts.handlers.enrolments import Enrol, Transfer, Withdraw
from training.core.access import Role
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.projection_runner import ProjectionSupervisor
from training.core.views import ProjectionSpec
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.curricula.handlers import AddModule, CreateCurriculum, PublishCurriculum
from training.demo.world import load_catalogue
from training.infra.database import Database
from training.people.domain.members import Member
from training.people.handlers.imports import ImportMembers, MemberRow
from training.people.handlers.members import DeactivateMember, ReactivateMember
from training.planning.domain.tracks import TrainingTrack
from training.planning.process import Planning
from training.planning.views.tracks import TRACKS
from training.reviews.domain import Goal, ReviewContent, SkillRating
from training.reviews.handlers import DraftReview
from training.skills.domain import SkillTarget
from training.skills.handlers import DefineRoleProfile
from training.tenancy.handlers import RegisterTenant

wait_until = partial(waiting.wait_until, timeout=60.0, poll=0.1)


def tenant_with_people(
    bus: CommandBus, people: int
) -> tuple[uuid.UUID, CommandContext, list[uuid.UUID]]:
    tenant = bus.execute(
        system_context(), RegisterTenant(f"pl-{uuid.uuid4().hex[:8]}", "Planning Co", 100)
    ).result
    context = CommandContext(Actor(ActorKind.SYSTEM, "tests"), "r", tenant.tenant_id)
    rows = tuple(
        MemberRow(i + 1, f"P{i}", f"Person {i}", None, (Role.ENGINEER,), None, "Core", "Engineer")
        for i in range(people)
    )
    bus.execute(context, ImportMembers(rows))
    bus.execute(
        context,
        DefineRoleProfile(
            "backend-l3",
            "Backend Engineer L3",
            "",
            (SkillTarget("python", 4), SkillTarget("sql", 3)),
        ),
    )
    members = [Member.create_id(tenant.tenant_id, f"P{i}") for i in range(people)]
    return tenant.tenant_id, context, members


def review(member_id: uuid.UUID) -> DraftReview:
    content = ReviewContent(
        ratings=(SkillRating("python", 2), SkillRating("sql", 2)),
        overall_rating=3,
        goals=(Goal("G1", "kubernetes", 3, dt.date(2027, 6, 30)),),
        target_role_profile="backend-l3",
    )
    return DraftReview("2026-H2", member_id, None, content, finalise=True, strengths=("careful",))


def tracks(database: Database, tenant_id: uuid.UUID) -> dict[uuid.UUID, int]:
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        return dict(conn.execute("SELECT member_id, plan_version FROM training.tracks").fetchall())


def replans_by_trigger(database: Database) -> Counter[tuple[str, str]]:
    """(track, trigger) of every Replanned event the planning process stored."""
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT originator_id::text, convert_from(state, 'UTF8')::jsonb ->> 'trigger' "
            "FROM training.planning_events WHERE topic = 'training.planning:TrainingTrack.Replanned'"
        ).fetchall()
    return Counter((str(track), str(trigger)) for track, trigger in rows)


def test_a_finalised_review_and_a_new_curriculum_version_replan(
    database: Database, bus: CommandBus
) -> None:
    load_catalogue(bus, system_context())
    tenant_id, context, members = tenant_with_people(bus, 3)
    supervisor = projection_supervisor(database)
    supervisor.start()
    try:
        for member_id in members:
            bus.execute(context, review(member_id))
        wait_until(lambda: set(tracks(database, tenant_id)) == set(members))
        with psycopg.connect(database.app_url) as conn, conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
            reasons = [
                r[0]
                for r in conn.execute(
                    "SELECT reason FROM training.track_modules WHERE member_id = %s ORDER BY position",
                    (members[0],),
                )
            ]
            dues = [
                r[0]
                for r in conn.execute(
                    "SELECT due_on FROM training.track_modules WHERE member_id = %s ORDER BY position",
                    (members[0],),
                )
            ]
        assert reasons
        assert any("role profile Backend Engineer L3" in r or "goal G1" in r for r in reasons)
        assert dues == sorted(dues)

        # A tenant's new curriculum version re-plans every track of that tenant.
        created = bus.execute(context, CreateCurriculum("Python deep dive", "")).result
        spec = ModuleSpec(
            "py-advanced",
            "Advanced Python",
            "",
            ModuleFormat.LAB,
            120,
            (SkillTarget("python", 4),),
            (),
        )
        bus.execute(context, AddModule(created.curriculum_id, spec))
        bus.execute(context, PublishCurriculum(created.curriculum_id))
        wait_until(lambda: all(v >= 2 for v in tracks(database, tenant_id).values()))
    finally:
        supervisor.stop()
    counts = replans_by_trigger(database)
    assert counts
    assert max(counts.values()) == 1  # one re-plan per trigger per track


class CrashingPlanning(Planning):
    """The planning process, made to fail once in the middle of its work."""

    name = "planning"  # the same tables and position as the real one
    processed: ClassVar[int] = 0
    crashed: ClassVar[bool] = False

    def process_event(self, domain_event: Any, tracking: Any) -> None:
        type(self).processed += 1
        if not type(self).crashed and type(self).processed == 4:
            type(self).crashed = True
            msg = "the planning process dies half way through its batch"
            raise RuntimeError(msg)
        super().process_event(domain_event, tracking)


def test_a_crash_in_the_middle_of_a_batch_neither_loses_nor_repeats_a_replan(
    database: Database, bus: CommandBus
) -> None:
    tenant_id, context, members = tenant_with_people(bus, 6)
    for member_id in members:
        bus.execute(context, review(member_id))
    base = projection_supervisor(database)
    crashing = ProjectionSupervisor(
        [ProjectionSpec(CrashingPlanning), TRACKS], base.env, base.lock_conninfo
    )
    crashing.start()
    try:
        wait_until(lambda: set(tracks(database, tenant_id)) >= set(members))
    finally:
        crashing.stop()
    assert CrashingPlanning.crashed
    assert crashing.restarts["planning"] >= 1
    counts = replans_by_trigger(database)
    review_triggers = [t for t in counts if "PerformanceReview.Finalised" in t[1]]
    assert len(review_triggers) >= len(members)  # none lost
    assert all(counts[t] == 1 for t in review_triggers)  # none doubled


# -- cohorts and deactivation ----------------------------------------------------------------
# Two tenant curricula teach a skill no catalogue module teaches, to the same level in the
# same time: which one a plan takes shows which cohort the person is in.

SKILL = "cost-awareness"


def cost_curriculum(bus: CommandBus, context: CommandContext, key: str) -> uuid.UUID:
    created = bus.execute(context, CreateCurriculum(f"Costs {key}", "")).result
    spec = ModuleSpec(key, key.title(), "", ModuleFormat.LAB, 60, (SkillTarget(SKILL, 3),), ())
    bus.execute(context, AddModule(created.curriculum_id, spec))
    bus.execute(context, PublishCurriculum(created.curriculum_id))
    return uuid.UUID(str(created.curriculum_id))


def cost_review(member_id: uuid.UUID) -> DraftReview:
    content = ReviewContent(
        ratings=(SkillRating(SKILL, 2),),
        overall_rating=3,
        goals=(Goal("G1", SKILL, 3, dt.date(2027, 6, 30)),),
        target_role_profile=None,
    )
    return DraftReview("2026-H2", member_id, None, content, finalise=True)


def cohort_of(bus: CommandBus, context: CommandContext, curriculum: uuid.UUID, seats: int) -> Any:
    command = ScheduleCohort(
        "Spring", curriculum, 1, dt.date(2030, 3, 1), dt.date(2030, 5, 31), "UTC", seats
    )
    return bus.execute(context, command).result.cohort_id


def triggers(database: Database, tenant_id: uuid.UUID, member_id: uuid.UUID) -> list[str]:
    """The topic of the trigger of each plan of the member's track, in order."""
    track_id = TrainingTrack.create_id(tenant_id, member_id)
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT convert_from(state, 'UTF8')::jsonb ->> 'trigger' FROM training.planning_events "
            "WHERE originator_id = %s AND topic = 'training.planning:TrainingTrack.Replanned' "
            "ORDER BY originator_version",
            (track_id,),
        ).fetchall()
    return [str(row[0]).rsplit(":", 2)[0].split(":", 1)[1] for row in rows]


class TrackView(NamedTuple):
    plan_version: int
    frozen: bool
    cohorts: list[uuid.UUID]
    modules: list[str]


def track_view(database: Database, tenant_id: uuid.UUID, member_id: uuid.UUID) -> TrackView:
    """The member's track as the tracks view shows it (version 0 while it has none)."""
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        row = conn.execute(
            "SELECT plan_version, frozen_since IS NOT NULL FROM training.tracks "
            "WHERE member_id = %s",
            (member_id,),
        ).fetchone()
        cohorts = conn.execute(
            "SELECT cohort_id FROM training.track_cohorts WHERE track_id = %s ORDER BY joined_at",
            (TrainingTrack.create_id(tenant_id, member_id),),
        ).fetchall()
        keys = conn.execute(
            "SELECT key FROM training.track_modules WHERE member_id = %s ORDER BY position",
            (member_id,),
        ).fetchall()
    version, frozen = (int(row[0]), bool(row[1])) if row else (0, False)
    return TrackView(version, frozen, [c[0] for c in cohorts], [k[0] for k in keys])


def test_every_cohort_change_and_a_deactivation_replan_with_their_trigger(
    database: Database, bus: CommandBus
) -> None:
    tenant_id, context, people = tenant_with_people(bus, 5)
    ann, bob, cat, dan, eve = people
    modules = {cost_curriculum(bus, context, key): key for key in ("alpha", "beta")}
    # The planner takes the curriculum with the smaller id unless the other is preferred.
    other, pinned = sorted(modules, key=str)
    for person in people:
        bus.execute(context, cost_review(person))
    first = cohort_of(bus, context, pinned, 1)
    second = cohort_of(bus, context, other, 5)
    doomed = cohort_of(bus, context, pinned, 5)

    def shown(member_id: uuid.UUID) -> TrackView:
        return track_view(database, tenant_id, member_id)

    supervisor = projection_supervisor(database)
    supervisor.start()
    try:
        bus.execute(context, Enrol(first, (ann, bob)))  # bob waits
        bus.execute(context, Withdraw(first, ann, "changed team"))  # bob is promoted
        wait_until(lambda: shown(bob).cohorts == [first])
        wait_until(lambda: shown(bob).modules == [modules[pinned]])

        bus.execute(context, Transfer(bob, first, second, "other dates"))
        bus.execute(context, Enrol(doomed, (cat,)))
        bus.execute(context, CancelCohort(doomed, "no trainer"))
        bus.execute(context, Enrol(first, (dan, eve)))  # eve waits
        bus.execute(context, DeactivateMember(dan, "left the company"))  # eve is promoted
        wait_until(lambda: shown(eve).cohorts == [first])
        wait_until(lambda: shown(dan).frozen)
        assert shown(dan).cohorts == []  # withdrawn by the deactivation

        bus.execute(context, ReactivateMember(dan))
        wait_until(lambda: not shown(dan).frozen)
        wait_until(lambda: triggers(database, tenant_id, dan)[-1:] == ["Member.Reactivated"])
        wait_until(lambda: shown(dan).plan_version == 3)
    finally:
        supervisor.stop()

    review = "PerformanceReview.Finalised"
    assert triggers(database, tenant_id, ann) == [review, "Cohort.Enrolled", "Cohort.Withdrawn"]
    assert triggers(database, tenant_id, bob) == [
        review,
        "Cohort.Promoted",
        "Cohort.Withdrawn",  # the transfer: out of one cohort...
        "Cohort.Enrolled",  # ...and into the other
    ]
    assert triggers(database, tenant_id, cat) == [review, "Cohort.Enrolled", "Cohort.Cancelled"]
    # Frozen by the deactivation before its withdrawal was taken in: no re-plan until back.
    assert triggers(database, tenant_id, dan) == [review, "Cohort.Enrolled", "Member.Reactivated"]
    assert triggers(database, tenant_id, eve) == [review, "Cohort.Promoted"]
    assert shown(bob)[2:] == ([second], [modules[other]])
    assert shown(dan) == TrackView(3, False, [], [modules[other]])
    counts = replans_by_trigger(database)
    assert max(counts.values()) == 1  # one re-plan per trigger per track
