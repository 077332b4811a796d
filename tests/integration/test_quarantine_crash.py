"""A runner killed around a quarantine loses nothing and applies nothing twice.

The members view runs in a real `training worker --only members` process, killed with SIGKILL:
once right after a quarantine committed (before the next event), once in the middle of the
quarantine's transaction (its position written, its record not yet). Each time a new worker
takes over, and every event ends up applied, quarantined or parked exactly once, in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.utils import get_topic

from tests import waiting
from tests.conftest import TEST_SECRET_KEY
from tests.helpers import system_context
from training.core.access import Role
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.infra.database import Database
from training.people.domain.members import Member
from training.people.handlers.members import RegisterMember, UpdateMember
from training.tenancy.handlers import RegisterTenant

TRAINING = str(Path(sys.executable).parent / "training")
REGISTERED = get_topic(Member.Registered)
ROLES_CHANGED = get_topic(Member.RolesChanged)


class Worker:
    """`training worker --only members`, as an operator runs it."""

    def __init__(self, database: Database, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(
            DATABASE_URL=database.admin_url,
            TRAINING_SECRET_KEY=TEST_SECRET_KEY,
            TRAINING_LOG_LEVEL="info",
        )
        self.log = log
        with log.open("a") as out:
            self.process = subprocess.Popen(
                [TRAINING, "worker", "--only", "members"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def workers(database: Database, tmp_path: Path) -> Iterator[Callable[[], Worker]]:
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(database, tmp_path / "worker.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.kill()


wait_until = partial(waiting.wait_until, timeout=60.0, poll=0.02)


def query(database: Database, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()


def tracked(database: Database) -> int:
    rows = query(database, "SELECT notification_id FROM training.members_tracking")
    return int(rows[0][0]) if rows else 0


def quarantine_of(database: Database, tenant_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return query(
        database,
        "SELECT status, topic, originator_id, originator_version, attempts "
        "FROM training.projection_quarantine WHERE view_name = 'members' AND tenant_id = %s "
        "ORDER BY notification_id",
        tenant_id,
    )


def projected(database: Database, tenant_id: uuid.UUID) -> dict[str, tuple[Any, ...]]:
    rows = query(
        database,
        "SELECT external_id, version, roles FROM training.members WHERE tenant_id = %s",
        tenant_id,
    )
    return {str(row[0]): (row[1], tuple(row[2])) for row in rows}


def tenant(bus: CommandBus) -> uuid.UUID:
    slug = f"q-{uuid.uuid4().hex[:8]}"
    tenant_id: uuid.UUID = bus.execute(
        system_context(), RegisterTenant(slug, slug, 50)
    ).result.tenant_id
    return tenant_id


def as_client(tenant_id: uuid.UUID) -> CommandContext:
    return CommandContext(Actor(ActorKind.CLIENT, "tc_crash"), "crash", tenant_id)


def register(bus: CommandBus, tenant_id: uuid.UUID, external_id: str) -> tuple[uuid.UUID, int]:
    outcome = bus.execute(
        as_client(tenant_id), RegisterMember(external_id, external_id, None, (Role.ENGINEER,))
    )
    assert outcome.position is not None
    return outcome.result.member_id, outcome.position


def promote(bus: CommandBus, tenant_id: uuid.UUID, member_id: uuid.UUID) -> int:
    outcome = bus.execute(
        as_client(tenant_id),
        UpdateMember(member_id, roles=(Role.ENGINEER, Role.MANAGER)),
    )
    assert outcome.position is not None
    return outcome.position


def squat(database: Database, tenant_id: uuid.UUID, external_id: str) -> None:
    """A row in the view that the tenant's registration of ``external_id`` collides with."""
    query(
        database,
        "INSERT INTO training.members (member_id, tenant_id, external_id, roles, status, "
        "version, created_at, updated_at) "
        "VALUES (%s, %s, %s, '{engineer}', 'active', 1, now(), now()) RETURNING 1",
        uuid.uuid4(),
        tenant_id,
        external_id,
    )


def started(worker: Worker) -> bool:
    assert worker.process.poll() is None, worker.log.read_text()
    return "projection.started" in worker.log.read_text()


def test_killed_after_a_quarantine_the_next_worker_parks_what_follows(
    database: Database, bus: CommandBus, workers: Callable[[], Worker]
) -> None:
    victim, other = tenant(bus), tenant(bus)
    squat(database, victim, "C-1")
    worker = workers()
    wait_until(lambda: started(worker))

    failed_id, failed_at = register(bus, victim, "C-1")
    wait_until(lambda: len(quarantine_of(database, victim)) == 1)
    worker.kill()
    assert tracked(database) == failed_at

    # Written while no runner runs: the victim's events must wait, the other's must not.
    parked_id, _ = register(bus, victim, "C-2")
    promoted_at = promote(bus, victim, failed_id)
    _, last = register(bus, other, "O-1")
    assert promoted_at < last

    worker = workers()
    wait_until(lambda: tracked(database) >= last)
    assert quarantine_of(database, victim) == [
        ("failed", REGISTERED, failed_id, 1, 1),
        ("parked", REGISTERED, parked_id, 1, 0),
        ("parked", ROLES_CHANGED, failed_id, 2, 0),
    ]
    assert set(projected(database, victim)) == {"C-1"}  # only the stray row
    assert projected(database, other) == {"O-1": (1, ("engineer",))}


def test_killed_inside_a_quarantine_the_next_worker_quarantines_it_once(
    database: Database, bus: CommandBus, workers: Callable[[], Worker]
) -> None:
    victim, other = tenant(bus), tenant(bus)
    squat(database, victim, "D-1")
    worker = workers()
    wait_until(lambda: started(worker))
    before = tracked(database)

    with psycopg.connect(database.admin_url) as blocker:
        # Holds the quarantine's writers back: the runner's transaction has recorded the
        # position and waits to write the record when the process dies.
        blocker.execute("LOCK TABLE training.projection_quarantine IN SHARE MODE")
        failed_id, failed_at = register(bus, victim, "D-1")
        waiting = (
            "SELECT pid FROM pg_stat_activity WHERE usename = 'training_app' "
            "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO training.projection_quarantine%%'"
        )
        wait_until(lambda: len(query(database, waiting)) == 1)
        [(pid,)] = query(database, waiting)
        worker.kill()
        # The server side of the dead connection ends too (it would once the lock is free).
        query(database, "SELECT pg_terminate_backend(%s)", pid)
        blocker.rollback()
    assert tracked(database) == before
    assert quarantine_of(database, victim) == []

    _, last = register(bus, other, "P-1")
    worker = workers()
    wait_until(lambda: tracked(database) >= last)
    assert quarantine_of(database, victim) == [("failed", REGISTERED, failed_id, 1, 1)]
    assert failed_at < last
    assert projected(database, other) == {"P-1": (1, ("engineer",))}
    log = worker.log.read_text()
    assert log.count('"event": "projection.event_quarantined"') == 1
