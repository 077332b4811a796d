"""A tenant's seat roster is snapshotted every 200 versions by the commands that write it; a
fresh process loads it from its latest snapshot, and without snapshots from its events, to
the same state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import msgspec
import psycopg
import pytest
from structlog.testing import capture_logs

from training.bootstrap import training_application
from training.core.access import Role
from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.snapshots import store
from training.infra.database import Database
from training.people.domain.seats import SeatRoster
from training.people.handlers.members import RegisterMember
from training.tenancy.handlers import RegisterTenant

MEMBERS = SeatRoster.snapshot_interval + 5  # the roster opens at version 1


@pytest.fixture(scope="module")
def roster_id(bus: CommandBus) -> uuid.UUID:
    platform = CommandContext.system("tests", request_id="t")
    slug = f"snap-{uuid.uuid4().hex[:8]}"
    tenant = bus.execute(platform, RegisterTenant(slug, slug, 1_000)).result
    context = CommandContext(Actor(ActorKind.CLIENT, "tests"), "r", tenant.tenant_id)
    for number in range(MEMBERS):
        bus.execute(
            context,
            RegisterMember(f"S{number}", f"Person {number}", None, (Role.ENGINEER,)),
        )
    return SeatRoster.create_id(tenant.tenant_id)


@pytest.fixture
def fresh_app(database: Database) -> Iterator[TrainingApplication]:
    """Another process: nothing cached."""
    application = training_application(database)
    try:
        yield application
    finally:
        application.close()


def snapshot_versions(database: Database, aggregate_id: uuid.UUID) -> list[int]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT originator_version FROM training.training_snapshots "
            "WHERE originator_id = %s ORDER BY 1",
            (aggregate_id,),
        ).fetchall()
    return [row[0] for row in rows]


def test_the_command_that_reaches_version_200_stores_a_snapshot(
    database: Database, roster_id: uuid.UUID
) -> None:
    assert snapshot_versions(database, roster_id) == [200]


def test_a_fresh_process_loads_the_roster_from_its_snapshot(
    database: Database, roster_id: uuid.UUID, fresh_app: TrainingApplication
) -> None:
    # Proof that the load starts from the snapshot: a snapshot that says otherwise is believed
    # for the versions it covers, and the events after it are applied on top.
    with psycopg.connect(database.admin_url) as conn:
        state = conn.execute(
            "SELECT state FROM training.training_snapshots WHERE originator_id = %s",
            (roster_id,),
        ).fetchone()
        assert state is not None
        document = msgspec.json.decode(state[0])
        assert document["state"]["taken"] == 199
        document["state"]["taken"] = 1_000
        conn.execute(
            "UPDATE training.training_snapshots SET state = %s WHERE originator_id = %s",
            (msgspec.json.encode(document), roster_id),
        )
    roster = fresh_app.repository.get(roster_id, snapshots=True)
    assert isinstance(roster, SeatRoster)
    assert (roster.version, roster.taken) == (MEMBERS + 1, 1_000 + MEMBERS - 199)


def test_without_snapshots_the_roster_is_replayed_from_its_events(
    database: Database, roster_id: uuid.UUID, fresh_app: TrainingApplication
) -> None:
    with psycopg.connect(database.admin_url) as conn:
        conn.execute("DELETE FROM training.training_snapshots")
    roster = fresh_app.repository.get(roster_id, snapshots=True)
    assert (roster.version, roster.taken) == (MEMBERS + 1, MEMBERS)


def test_a_snapshot_that_cannot_be_stored_is_logged_not_raised(
    database: Database, roster_id: uuid.UUID, fresh_app: TrainingApplication
) -> None:
    roster = fresh_app.repository.get(roster_id, snapshots=True)
    with psycopg.connect(database.admin_url) as conn:
        conn.execute("REVOKE INSERT ON training.training_snapshots FROM training_app")
    try:
        with capture_logs() as logs:
            store(fresh_app, [roster])
    finally:
        with psycopg.connect(database.admin_url) as conn:
            conn.execute("GRANT INSERT ON training.training_snapshots TO training_app")
    assert [entry["event"] for entry in logs] == ["snapshot.failed"]
    assert logs[0]["aggregate"] == "SeatRoster"
