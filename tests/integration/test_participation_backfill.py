"""`training migrate` brings cohorts joined before participation records were kept up to date.

The database is filled the way the service filled it before ADR 0025: people enrolled with
the enrolment of that time (the cohort and the curriculum's registry, no participation
record), one of them deactivated afterwards (which then withdrew nobody), and a tracks view
that did not keep the cohorts on each track (migration 0021 came later). `training migrate`
lists the open cohort on its people's records, withdraws the deactivated member (the first
person waiting takes the seat) and fills the tracks' cohorts, once: a second run changes
nothing. From then on a deactivation withdraws the member from the cohort joined before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import Any

import psycopg
import pytest

from tests import waiting
from tests.conftest import TEST_SECRET_KEY
from tests.helpers import system_context
from tests.waiting import views_caught_up
from training.bootstrap import HANDLERS, projection_supervisor
from training.cli import main
from training.cohorts.domain.cohorts import Cohort
from training.cohorts.domain.participation import Participation
from training.cohorts.handlers.cohorts import ScheduleCohort
from training.cohorts.handlers.participation import curriculum_enrolments
from training.core.access import Role
from training.core.application import TrainingApplication
from training.core.bus import CommandBus, UnitOfWork
from training.core.context import Actor, ActorKind, CommandContext
from training.core.projection_runner import ProjectionSupervisor
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.curricula.handlers import AddModule, CreateCurriculum, PublishCurriculum
from training.infra.database import Database
from training.people.handlers.members import DeactivateMember, RegisterMember
from training.planning.domain.tracks import TrainingTrack
from training.planning.views.tracks import PLANNING, TRACKS
from training.skills.domain import SkillTarget
from training.tenancy.handlers import RegisterTenant
from training.upgrades import data_steps


@dataclass(frozen=True)
class EnrolAsBefore:
    """The enrolment before ADR 0025: the cohort and the registry, no participation record."""

    cohort_id: uuid.UUID
    member_ids: tuple[uuid.UUID, ...]


def enrol_as_before(command: EnrolAsBefore, uow: UnitOfWork) -> None:
    tenant_id = uow.require_tenant()
    cohort = uow.get(Cohort, command.cohort_id)
    placements = cohort.enrol(command.member_ids)
    curriculum_enrolments(uow, tenant_id, cohort.curriculum_id).join(cohort.id, tuple(placements))


@dataclass(frozen=True)
class Old:
    tenant_id: uuid.UUID
    cohort_id: uuid.UUID
    ann: uuid.UUID  # enrolled
    bob: uuid.UUID  # enrolled, then deactivated
    cy: uuid.UUID  # waiting


wait_until = partial(waiting.wait_until, timeout=60.0, poll=0.1)


def followed(database: Database) -> None:
    """Runs the planning process and the tracks view until they have followed everything."""
    base = projection_supervisor(database)
    supervisor = ProjectionSupervisor([PLANNING, TRACKS], base.env, base.lock_conninfo)
    supervisor.start()
    try:
        # Twice in a row: the planning process writes events the tracks view then follows.
        views = [PLANNING.info, TRACKS.info]
        wait_until(lambda: views_caught_up(database, views) and views_caught_up(database, views))
    finally:
        supervisor.stop()


def as_before(database: Database, app: TrainingApplication, bus: CommandBus) -> Old:
    slug = f"bf-{uuid.uuid4().hex[:8]}"
    tenant_id = bus.execute(system_context(), RegisterTenant(slug, slug, 20)).result.tenant_id
    hr = CommandContext(Actor(ActorKind.SYSTEM, "tests"), "bf", tenant_id)
    ann, bob, cy = (
        bus.execute(hr, RegisterMember(name, name, None, (Role.ENGINEER,))).result.member_id
        for name in ("BF-ANN", "BF-BOB", "BF-CY")
    )
    curriculum = bus.execute(hr, CreateCurriculum("Before", "")).result.curriculum_id
    module = ModuleSpec(
        "before", "Before", "", ModuleFormat.VIDEO, 30, (SkillTarget("sql", 2),), ()
    )
    bus.execute(hr, AddModule(curriculum, module))
    bus.execute(hr, PublishCurriculum(curriculum))
    cohort_id = bus.execute(
        hr, ScheduleCohort("Before", curriculum, 1, date(2030, 3, 1), date(2030, 5, 31), "UTC", 2)
    ).result.cohort_id
    then = CommandBus(app, {**HANDLERS, EnrolAsBefore: enrol_as_before})
    then.execute(hr, EnrolAsBefore(cohort_id, (ann, bob, cy)))
    # Today's deactivation finds no record listing the cohort: it withdraws Bob from nothing,
    # as the deactivation of that time did.
    bus.execute(hr, DeactivateMember(bob, "left the company"))
    followed(database)
    with psycopg.connect(database.admin_url) as conn:
        # The tracks view before migration 0021 kept no cohorts.
        conn.execute("DELETE FROM training.track_cohorts WHERE tenant_id = %s", (tenant_id,))
        conn.execute(
            "DELETE FROM public.training_data_migrations WHERE name = ANY(%s)",
            ([data_steps.PARTICIPATION, data_steps.TRACK_COHORTS],),
        )
    return Old(tenant_id, cohort_id, ann, bob, cy)


def cohort_of(app: TrainingApplication, cohort_id: uuid.UUID) -> Cohort:
    cohort: Cohort = app.repository.get(cohort_id)
    return cohort


def record_of(app: TrainingApplication, old: Old, member_id: uuid.UUID) -> Participation | None:
    record_id = Participation.create_id(old.tenant_id, member_id)
    if record_id not in app.repository:
        return None
    record: Participation = app.repository.get(record_id)
    return record


def track_cohorts(database: Database, old: Old) -> dict[uuid.UUID, list[uuid.UUID]]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT track_id, cohort_id FROM training.track_cohorts WHERE tenant_id = %s",
            (old.tenant_id,),
        ).fetchall()
    found: dict[uuid.UUID, list[uuid.UUID]] = {}
    for track_id, cohort_id in rows:
        found.setdefault(track_id, []).append(cohort_id)
    return found


def ledger(database: Database) -> dict[str, Any]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT name, report FROM public.training_data_migrations WHERE name = ANY(%s)",
            ([data_steps.PARTICIPATION, data_steps.TRACK_COHORTS],),
        ).fetchall()
    return dict(rows)


def test_migrate_brings_old_enrolments_up_to_date_once(
    database: Database,
    app: TrainingApplication,
    bus: CommandBus,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old = as_before(database, app, bus)
    track = {m: TrainingTrack.create_id(old.tenant_id, m) for m in (old.ann, old.bob, old.cy)}
    assert record_of(app, old, old.ann) is None  # enrolled before records were kept
    assert cohort_of(app, old.cohort_id).enrolled == [old.ann, old.bob]  # Bob still holds a seat
    assert track_cohorts(database, old) == {}

    monkeypatch.setenv("DATABASE_URL", database.admin_url)
    monkeypatch.setenv("TRAINING_SECRET_KEY", TEST_SECRET_KEY)
    assert main(["migrate"]) == 0
    err = capsys.readouterr().err
    assert "cohorts on their people's participation records" in err
    assert "training tracks" in err

    # Ann and Cy have the cohort on their records; Bob was withdrawn and Cy took his seat.
    cohort = cohort_of(app, old.cohort_id)
    assert (cohort.enrolled, cohort.waitlist) == ([old.ann, old.cy], [])
    withdrawn = [
        e.member_id for e in app.events.get(old.cohort_id) if isinstance(e, Cohort.Withdrawn)
    ]
    assert withdrawn == [old.bob]
    for member_id in (old.ann, old.cy):
        record = record_of(app, old, member_id)
        assert record is not None
        assert record.cohorts == [old.cohort_id]
    # The tracks' cohorts as the view knew them (Bob's withdrawal is planned after).
    assert track_cohorts(database, old) == {
        track[old.ann]: [old.cohort_id],
        track[old.bob]: [old.cohort_id],
    }
    done = ledger(database)
    assert done[data_steps.PARTICIPATION]["records_changed"] >= 3
    assert done[data_steps.TRACK_COHORTS]["cohorts"] >= 2

    # Once: a second run writes no event and records nothing new.
    newest = app.recorder.max_notification_id()
    assert main(["migrate"]) == 0
    assert "participation" not in capsys.readouterr().err
    assert app.recorder.max_notification_id() == newest
    assert ledger(database) == done

    # The tracks view follows what the step did, from where the step left it.
    followed(database)
    assert track_cohorts(database, old) == {
        track[old.ann]: [old.cohort_id],
        track[old.cy]: [old.cohort_id],
    }

    # What it was for: deactivating Ann now withdraws her from the cohort she joined then.
    hr = CommandContext(Actor(ActorKind.SYSTEM, "tests"), "bf", old.tenant_id)
    bus.execute(hr, DeactivateMember(old.ann, "moved on"))
    assert cohort_of(app, old.cohort_id).enrolled == [old.cy]
