"""Group commit on the real event store: concurrent commands, each stored once, in order."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg

from tests.helpers import system_context
from training.bootstrap import command_bus
from training.core.application import TrainingApplication
from training.infra.database import Database
from training.tenancy.handlers import RegisterTenant

COMMANDS = 40


def test_concurrent_commands_are_each_stored_once_with_their_own_position(
    database: Database, app: TrainingApplication
) -> None:
    bus = command_bus(app)
    slugs = [f"g-{uuid.uuid4().hex[:10]}" for _ in range(COMMANDS)]

    def register(slug: str) -> tuple[uuid.UUID, int]:
        outcome = bus.execute(system_context(), RegisterTenant(slug, slug.upper(), 5))
        assert outcome.position is not None
        return outcome.result.tenant_id, outcome.position

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(register, slugs))

    assert bus._commits.saves == COMMANDS
    assert bus._commits.transactions <= COMMANDS
    positions = [position for _, position in outcomes]
    assert len(set(positions)) == COMMANDS
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT originator_id, max(notification_id) FROM training.training_events "
            "WHERE originator_id = ANY(%s) GROUP BY originator_id",
            ([tenant_id for tenant_id, _ in outcomes],),
        ).fetchall()
    stored = dict(rows)
    # Each command answers the position of its own last event (registering a tenant also
    # writes to other aggregates), whoever wrote the group.
    for tenant_id, position in outcomes:
        assert stored[tenant_id] <= position
        assert app.repository.get(tenant_id).version >= 1
