"""Learning notes and cohort reasons live beside the events and go with the person.

Against PostgreSQL, through the command bus and the event store's recorder: erasing a person
deletes the notes they wrote and the reasons they were withdrawn, and redacts their name and
email in everyone else's notes and in every cohort reason; nothing of it is in any event.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg

from training.cohorts.handlers.cohorts import CancelCohort, ScheduleCohort
from training.cohorts.handlers.enrolments import Enrol, Withdraw
from training.core.access import Role
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.curricula.handlers import AddModule, CreateCurriculum, PublishCurriculum
from training.infra.database import Database
from training.people.handlers.members import ErasePersonalData, RegisterMember
from training.planning.domain.learning import ModuleState
from training.planning.handlers.learning import RecordProgress
from training.skills.domain import SkillTarget
from training.tenancy.handlers import RegisterTenant

ANN = ("Ann Quist", "ann.quist@example.test")
BOB = ("Bob Stays", "bob.stays@example.test")


def held(database: Database, tenant_id: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(database.admin_url) as conn:
        notes = conn.execute(
            "SELECT member_id, note FROM training.learning_notes WHERE tenant_id = %s "
            "ORDER BY noted_at",
            (tenant_id,),
        ).fetchall()
        reasons = conn.execute(
            "SELECT member_id, reason FROM training.cohort_reasons WHERE tenant_id = %s "
            "ORDER BY given_at",
            (tenant_id,),
        ).fetchall()
        events = conn.execute("SELECT state FROM training.training_events").fetchall()
        planned = conn.execute("SELECT state FROM training.planning_events").fetchall()
    states = [bytes(row[0]) for row in (*events, *planned)]
    return {"notes": notes, "reasons": reasons, "states": [(s,) for s in states]}


def test_erasing_a_person_takes_their_text_and_their_name_out_of_everyone_elses(
    bus: CommandBus, database: Database
) -> None:
    operator = CommandContext(Actor(ActorKind.OPERATOR, "op"), "req-op", None)
    slug = f"texts-{uuid.uuid4().hex[:8]}"
    tenant_id = bus.execute(operator, RegisterTenant(slug, "Texts", 20)).result.tenant_id
    hr = CommandContext(Actor(ActorKind.CLIENT, "hr"), "req-hr", tenant_id)
    ann = bus.execute(hr, RegisterMember("ANN", ANN[0], ANN[1], (Role.ENGINEER,))).result
    bob = bus.execute(hr, RegisterMember("BOB", BOB[0], BOB[1], (Role.ENGINEER,))).result
    curriculum = uuid.UUID(
        str(bus.execute(hr, CreateCurriculum("Course", "")).result.curriculum_id)
    )
    module = ModuleSpec("m1", "M1", "", ModuleFormat.LAB, 30, (SkillTarget("python", 2),), ())
    bus.execute(hr, AddModule(curriculum, module))
    bus.execute(hr, PublishCurriculum(curriculum))
    for member, note in ((ann, f"{BOB[0]} showed me"), (bob, f"{ANN[0]} ({ANN[1]}) showed me")):
        engineer = CommandContext(Actor(ActorKind.MEMBER, str(member.member_id)), "r", tenant_id)
        bus.execute(engineer, RecordProgress(curriculum, "m1", ModuleState.SKIPPED, note))
    cohorts = []
    for name in ("First", "Second"):
        scheduled = bus.execute(
            hr,
            ScheduleCohort(name, curriculum, 1, dt.date(2030, 3, 1), dt.date(2030, 4, 1), "UTC", 5),
        ).result
        cohorts.append(scheduled.cohort_id)
    bus.execute(hr, Enrol(cohorts[0], (ann.member_id, bob.member_id)))
    bus.execute(hr, Withdraw(cohorts[0], ann.member_id, f"{ANN[0]} asked"))
    bus.execute(hr, Withdraw(cohorts[0], bob.member_id, f"makes room for {ANN[0]}"))
    bus.execute(hr, Enrol(cohorts[1], (bob.member_id,)))
    bus.execute(hr, CancelCohort(cohorts[1], f"{ANN[1]} cancelled it"))

    before = held(database, tenant_id)
    assert len(before["notes"]) == 2
    assert len(before["reasons"]) == 3
    for (state,) in before["states"]:
        for text in (*ANN, *BOB, "showed me", "asked", "cancelled it"):
            assert text.encode() not in state

    bus.execute(hr, ErasePersonalData(ann.member_id))

    after = held(database, tenant_id)
    assert after["notes"] == [(bob.member_id, "(erased) ((erased)) showed me")]
    assert after["reasons"] == [
        (bob.member_id, "makes room for (erased)"),
        (None, "(erased) cancelled it"),
    ]
