"""The cohorts read model: the live view equals one rebuilt from the events, it agrees with
the aggregates, and row-level security hides every row without a tenant."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg
import pytest
from psycopg import sql

from tests.helpers import system_context
from training.bootstrap import command_bus, projection_supervisor, training_application
from training.cohorts.domain.cohorts import Attendance, Cohort
from training.cohorts.handlers.cohorts import (
    CancelCohort,
    ChangeCapacity,
    ChangeTrainingPolicy,
    CompleteModule,
    GiveFeedback,
    RecordAttendance,
    ScheduleCohort,
    ScheduleSession,
    StartCohort,
)
from training.cohorts.handlers.enrolments import Enrol, Transfer, Withdraw
from training.cohorts.views.projection import COHORTS
from training.core.access import Role
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.read_store import APPLICATION_NAME
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.curricula.handlers import AddModule, CreateCurriculum, PublishCurriculum
from training.infra.database import Database
from training.maintenance.rebuild import rebuild
from training.people.domain.members import Member
from training.people.handlers.imports import ImportMembers, MemberRow
from training.tenancy.handlers import RegisterTenant

TABLES = (
    "cohorts",
    "cohort_enrolments",
    "cohort_sessions",
    "session_attendance",
    "session_feedback",
    "cohort_module_completions",
    "training_policies",
)
KEYS = {
    "cohorts": "cohort_id",
    "cohort_enrolments": "cohort_id, member_id",
    "cohort_sessions": "session_id",
    "session_attendance": "session_id, member_id",
    "session_feedback": "session_id, member_id",
    "cohort_module_completions": "cohort_id, member_id, module_key",
    "training_policies": "tenant_id",
}


def client_of(tenant_id: uuid.UUID) -> CommandContext:
    return CommandContext(Actor(ActorKind.CLIENT, "tc_views"), "views", tenant_id)


def person(tenant_id: uuid.UUID, member_id: uuid.UUID) -> CommandContext:
    return CommandContext(Actor(ActorKind.MEMBER, str(member_id)), "views", tenant_id)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2030, 3, 4, hour, minute, tzinfo=UTC)


@dataclass(frozen=True)
class Scenario:
    tenant_a: uuid.UUID
    tenant_b: uuid.UUID
    cohorts: dict[uuid.UUID, Cohort]


def scenario_for(bus: CommandBus, tenant_id: uuid.UUID, people: int) -> list[uuid.UUID]:
    """Members, a curriculum, cohorts: everything the projection follows, in one tenant."""
    ctx = client_of(tenant_id)
    prefix = uuid.uuid4().hex[:6]
    rows = tuple(
        MemberRow(i, f"{prefix}-{i}", f"P {i}", None, (Role.ENGINEER,), None, None, None)
        for i in range(1, people + 1)
    )
    bus.execute(ctx, ImportMembers(rows))
    m = [Member.create_id(tenant_id, row.external_id) for row in rows]
    curriculum_id = bus.execute(ctx, CreateCurriculum("Views", "")).result.curriculum_id
    for key in ("a", "b", "c"):
        spec = ModuleSpec(key, key.upper(), "", ModuleFormat.LAB, 30, (), ())
        bus.execute(ctx, AddModule(curriculum_id, spec))
    bus.execute(ctx, PublishCurriculum(curriculum_id))

    def schedule(name: str, capacity: int) -> uuid.UUID:
        command = ScheduleCohort(
            name, curriculum_id, 1, date(2030, 3, 1), date(2030, 4, 30), "Asia/Tokyo", capacity
        )
        cohort_id: uuid.UUID = bus.execute(ctx, command).result.cohort_id
        return cohort_id

    main, spare, doomed = schedule("Main", 3), schedule("Spare", 2), schedule("Doomed", 2)
    bus.execute(ctx, Enrol(main, tuple(m[:6])))  # 3 seated, 3 waiting
    bus.execute(ctx, StartCohort(main))
    bus.execute(ctx, Withdraw(main, m[1], "changed team"))  # m[3] promoted
    bus.execute(ctx, Withdraw(main, m[4], "not now"))  # a waiting person leaves
    bus.execute(ctx, ChangeCapacity(main, 4))  # m[5] promoted
    bus.execute(ctx, Enrol(main, (m[1],)))  # back, at the end of the queue
    bus.execute(ctx, Transfer(m[2], main, spare, "timezone"))  # m[1] promoted
    session = bus.execute(
        ctx, ScheduleSession(main, "Kick-off", at(9), 60, "https://meet.example/k")
    ).result
    bus.execute(ctx, ScheduleSession(main, "Later", at(15), 30, "https://meet.example/l"))
    visits = (
        Attendance(m[0], at(9), at(9, 30)),
        Attendance(m[0], at(9, 40), at(10)),
        Attendance(m[3], at(9, 5), at(9, 55)),
    )
    bus.execute(ctx, RecordAttendance(main, session, visits, 3, 2, 7))
    bus.execute(ctx, RecordAttendance(main, session, visits[1:], 4, 2, 7))  # replaces
    bus.execute(person(tenant_id, m[0]), GiveFeedback(main, session, m[0], 4, 5, 3))
    bus.execute(person(tenant_id, m[3]), GiveFeedback(main, session, m[3], 1, 2, 3))
    bus.execute(person(tenant_id, m[3]), GiveFeedback(main, session, m[3], 2, 2, 2))
    bus.execute(ctx, CompleteModule(main, m[0], "a", date(2030, 3, 5)))
    bus.execute(ctx, CompleteModule(main, m[0], "b", date(2030, 3, 9)))
    bus.execute(ctx, CompleteModule(main, m[3], "a", date(2030, 3, 7)))
    bus.execute(ctx, Enrol(doomed, (m[6], m[7], m[8])))
    bus.execute(ctx, CancelCohort(doomed, "no trainer"))
    bus.execute(ctx, ChangeTrainingPolicy(35, 10))
    return [main, spare, doomed]


@pytest.fixture(scope="module")
def world(database: Database) -> Scenario:
    app = training_application(database)
    bus = command_bus(app)
    supervisor = projection_supervisor(database)
    supervisor.start()
    try:
        a, b = (
            bus.execute(system_context(), RegisterTenant(slug, slug, 50)).result.tenant_id
            for slug in (f"cv-a-{uuid.uuid4().hex[:6]}", f"cv-b-{uuid.uuid4().hex[:6]}")
        )
        ids = scenario_for(bus, a, 10) + scenario_for(bus, b, 10)
        wait_until_projected(database, app.recorder.max_notification_id() or 0)
        cohorts = {i: app.repository.get(i) for i in ids}
    finally:
        supervisor.stop()
        app.close()
    return Scenario(a, b, cohorts)


def wait_until_projected(database: Database, position: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM training.training_events WHERE topic = ANY(%s) "
                "AND notification_id <= %s AND notification_id > coalesce(("
                "  SELECT notification_id FROM training.cohorts_tracking "
                "  WHERE application_name = %s), 0))",
                (list(COHORTS.info.topics), position, APPLICATION_NAME),
            ).fetchone()
            if row is not None and not row[0]:
                return
            assert time.monotonic() < deadline, "the cohorts view did not catch up"
            time.sleep(0.05)


def snapshot(database: Database) -> dict[str, list[tuple[object, ...]]]:
    rows: dict[str, list[tuple[object, ...]]] = {}
    with psycopg.connect(database.admin_url) as conn:
        for table in TABLES:
            query = sql.SQL("SELECT * FROM training.{} ORDER BY {}").format(
                sql.Identifier(table), sql.SQL(KEYS[table])
            )
            rows[table] = [tuple(row) for row in conn.execute(query).fetchall()]
    return rows


def test_the_rebuilt_view_equals_the_live_one(database: Database, world: Scenario) -> None:
    live = snapshot(database)
    assert all(live[table] for table in TABLES), {t: len(r) for t, r in live.items()}
    total = rebuild(database, "cohorts", lambda done, total: None)
    assert total > 0
    assert snapshot(database) == live


def test_the_view_agrees_with_the_cohorts(database: Database, world: Scenario) -> None:
    with psycopg.connect(database.admin_url) as conn:
        for cohort_id, cohort in world.cohorts.items():
            row = conn.execute(
                "SELECT status, capacity, version, module_count FROM training.cohorts "
                "WHERE cohort_id = %s",
                (cohort_id,),
            ).fetchone()
            assert row == (str(cohort.status), cohort.capacity, cohort.version, 3)
            for status, expected in (
                ("enrolled", cohort.enrolled),
                ("waitlisted", cohort.waitlist),
            ):
                placed = conn.execute(
                    "SELECT member_id FROM training.cohort_enrolments "
                    "WHERE cohort_id = %s AND status = %s ORDER BY position",
                    (cohort_id, status),
                ).fetchall()
                assert [r[0] for r in placed] == list(expected), (cohort.name, status)
        main = next(c for c in world.cohorts.values() if c.name == "Main")
        session_id = next(iter(main.sessions))
        attendance = conn.execute(
            "SELECT count(*), min(joined_at) FROM training.session_attendance "
            "WHERE session_id = %s",
            (session_id,),
        ).fetchone()
        assert attendance == (2, at(9, 5))  # the second import replaced the first
        feedback = conn.execute(
            "SELECT count(*), sum(content) FROM training.session_feedback WHERE session_id = %s",
            (session_id,),
        ).fetchone()
        assert feedback == (2, 6)  # the second rating of one person replaced the first
        doomed = next(i for i, c in world.cohorts.items() if c.name == "Doomed")
        # The reason is kept beside the events, by the version of the event that gave it.
        reasons = conn.execute(
            "SELECT DISTINCT e.status, r.reason FROM training.cohort_enrolments e "
            "LEFT JOIN training.cohort_reasons r "
            "ON r.cohort_id = e.cohort_id AND e.member_id = ANY(r.withdrawn) "
            "WHERE e.cohort_id = %s",
            (doomed,),
        ).fetchall()
        assert reasons == [("withdrawn", "no trainer")]
        policies = conn.execute(
            "SELECT tenant_id, at_risk_threshold FROM training.training_policies ORDER BY 1"
        ).fetchall()
        assert sorted(policies) == sorted([(world.tenant_a, 35), (world.tenant_b, 35)])


def test_without_a_tenant_no_row_is_visible(database: Database, world: Scenario) -> None:
    with psycopg.connect(database.app_url) as conn:
        for table in TABLES:
            query = sql.SQL("SELECT count(*) FROM training.{}").format(sql.Identifier(table))
            assert conn.execute(query).fetchone() == (0,), table
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(world.tenant_a),))
            for table in TABLES:
                query = sql.SQL("SELECT DISTINCT tenant_id FROM training.{}").format(
                    sql.Identifier(table)
                )
                assert conn.execute(query).fetchall() == [(world.tenant_a,)], table
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(world.tenant_a),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO training.training_policies VALUES (%s, 1, 1, 1, now())",
                (world.tenant_b,),
            )
        conn.rollback()
