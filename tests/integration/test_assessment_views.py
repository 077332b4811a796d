"""The assessments read model: a rebuild writes what the live projection wrote, and row-level
security keeps each tenant's results, responses and evidence apart."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import pytest

from tests.helpers import system_context
from training.assessments.domain.evidence import EvidenceKind
from training.assessments.domain.items import ItemKind
from training.assessments.handlers.attempts import (
    AbandonAttempt,
    AnswerItem,
    AttemptState,
    RescoreAttempt,
    StartAssessment,
)
from training.assessments.handlers.calibration import PublishParameters
from training.assessments.handlers.evidence import RecordEvidence
from training.assessments.queries import starter_bank
from training.assessments.views import ASSESSMENTS
from training.bootstrap import command_bus, projection_supervisor, training_application
from training.core.access import Role
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.projection_runner import ProjectionSupervisor
from training.infra.database import Database
from training.maintenance.rebuild import rebuild
from training.people.handlers.members import RegisterMember
from training.tenancy.handlers import RegisterTenant

TABLES = (
    "assessment_attempts",
    "assessment_results",
    "assessment_responses",
    "skill_evidence_streams",
    "skill_evidence",
    "item_parameter_versions",
)


def client_context(tenant_id: uuid.UUID) -> CommandContext:
    return CommandContext(Actor(ActorKind.CLIENT, "tc_test"), "test", tenant_id)


def member_context(tenant_id: uuid.UUID, member_id: uuid.UUID) -> CommandContext:
    return CommandContext(Actor(ActorKind.MEMBER, str(member_id)), "test", tenant_id)


def register(bus: CommandBus, tenant_id: uuid.UUID, external_id: str) -> uuid.UUID:
    command = RegisterMember(external_id, external_id, None, (Role.ENGINEER,))
    member_id: uuid.UUID = bus.execute(client_context(tenant_id), command).result.member_id
    return member_id


def take(
    bus: CommandBus, context: CommandContext, skill: str, *, right: bool, stop_after: int = 99
) -> AttemptState:
    state: AttemptState = bus.execute(context, StartAssessment(skill)).result
    bank = starter_bank().items[skill]
    answered = 0
    while state.item is not None and answered < stop_after:
        item = bank[state.item.item_id][0]
        answer = item.answer
        if not right:  # reversed order, or an option outside the key
            answer = tuple(reversed(item.answer))
            if item.kind is not ItemKind.ORDERING:
                answer = (next(o.id for o in item.options if o.id not in item.answer),)
        state = bus.execute(context, AnswerItem(state.attempt_id, item.item_id, answer)).result
        answered += 1
    return state


@dataclass(frozen=True)
class World:
    tenant_a: uuid.UUID
    tenant_b: uuid.UUID
    last_position: int


def caught_up(database: Database, position: int) -> bool:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM training.training_events WHERE notification_id > "
            "coalesce((SELECT max(notification_id) FROM training.assessments_tracking), 0) "
            "AND notification_id <= %s AND topic = ANY(%s))",
            (position, list(ASSESSMENTS.info.topics)),
        ).fetchone()
    return row is not None and not row[0]


@pytest.fixture(scope="module")
def world(database: Database) -> World:
    app = training_application(database)
    bus = command_bus(app)
    base = projection_supervisor(database)
    supervisor = ProjectionSupervisor([ASSESSMENTS], base.env, base.lock_conninfo)
    supervisor.start()
    try:
        a, b = (
            bus.execute(system_context(), RegisterTenant(slug, slug, 5)).result.tenant_id
            for slug in ("assess-a", "assess-b")
        )
        first, second = register(bus, a, "A1"), register(bus, a, "A2")
        done = take(bus, member_context(a, first), "python", right=True)
        assert done.status == "completed"
        left = take(bus, member_context(a, second), "sql", right=True, stop_after=3)
        bus.execute(member_context(a, second), AbandonAttempt(left.attempt_id, "later"))
        low = take(bus, member_context(a, second), "python", right=False)
        assert low.status == "completed"
        bus.execute(
            client_context(a),
            RecordEvidence(first, EvidenceKind.CODE_REVIEW, "python", 5, None, "Clean retries"),
        )
        shifted = tuple(
            replace(parameters, difficulty=parameters.difficulty + 0.25)
            for _, parameters in starter_bank().items["python"].values()
        )
        bus.execute(client_context(a), PublishParameters(shifted, 40))
        bus.execute(client_context(a), RescoreAttempt(done.attempt_id, 1))
        other = register(bus, b, "B1")
        take(bus, member_context(b, other), "python", right=True)
        outcome = bus.execute(
            client_context(b),
            RecordEvidence(other, EvidenceKind.PROJECT_REVIEW, "python", 2, None, "Other"),
        )
        assert outcome.position is not None
        deadline = time.monotonic() + 30
        while not caught_up(database, outcome.position):
            assert time.monotonic() < deadline, "the live projection did not catch up"
            time.sleep(0.05)
    finally:
        supervisor.stop()
        app.close()
    return World(a, b, outcome.position)


def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(database.admin_url) as conn:
        return {
            table: conn.execute(f"SELECT * FROM training.{table} ORDER BY 1, 2, 3").fetchall()
            for table in TABLES
        }


def test_a_rebuild_writes_what_the_live_projection_wrote(database: Database, world: World) -> None:
    live = snapshot(database)
    assert len(live["assessment_attempts"]) == 4
    statuses = sorted(row[4] for row in live["assessment_attempts"])
    assert statuses == ["abandoned", "completed", "completed", "completed"]
    # Three original results and one rescoring, which kept the original.
    assert sorted(row[9] for row in live["assessment_results"]) == [False, True, True, True]
    assert len(live["assessment_responses"]) > 3 * 8
    assert len(live["skill_evidence"]) == 2
    assert len(live["item_parameter_versions"]) == 1
    total = rebuild(database, "assessments", lambda done, total: None)
    assert total > 0
    assert snapshot(database) == live


def test_without_a_tenant_nothing_is_visible(database: Database, world: World) -> None:
    with psycopg.connect(database.app_url) as conn:
        for table in TABLES:
            assert conn.execute(f"SELECT count(*) FROM training.{table}").fetchone() == (0,)


def test_a_tenant_sees_only_its_own_rows(database: Database, world: World) -> None:
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(world.tenant_b),))
        for table in TABLES[:-1]:
            tenants = conn.execute(f"SELECT DISTINCT tenant_id FROM training.{table}").fetchall()
            assert tenants == [(world.tenant_b,)], table
        assert conn.execute("SELECT count(*) FROM training.item_parameter_versions").fetchone() == (
            0,
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO training.skill_evidence (evidence_id, tenant_id, member_id, kind, "
                "skill, observed_level, note, recorded_at, recorded_by) "
                "VALUES (%s, %s, %s, 'code_review', 'python', 3, '', now(), 'x')",
                (uuid.uuid4(), world.tenant_a, uuid.uuid4()),
            )


def test_the_demo_engineers_have_results_for_their_teams_skills(
    database: Database, world: World
) -> None:
    from training.demo.world import DEMO_ASSESSMENTS, load_demo

    app = training_application(database)
    try:
        loaded = load_demo(command_bus(app))
    finally:
        app.close()
    assert loaded is not None
    rebuild(database, "members", lambda done, total: None)
    rebuild(database, "assessments", lambda done, total: None)
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(loaded.tenant_id),))
        rows = conn.execute(
            "SELECT m.team, a.skill, count(DISTINCT a.member_id) FROM training.assessment_attempts a "
            "JOIN training.members m ON m.member_id = a.member_id "
            "WHERE a.status = 'completed' GROUP BY m.team, a.skill"
        ).fetchall()
    found = {(team, skill): people for team, skill, people in rows}
    expected = {(team, skill) for team, skills in DEMO_ASSESSMENTS.items() for skill in skills}
    assert set(found) == expected
    assert min(found.values()) >= 5
