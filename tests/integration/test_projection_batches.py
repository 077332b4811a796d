"""A read model applies the events its subscription already holds in batches: one transaction
and one tracking write per batch, still exactly once, and an event it cannot apply is
quarantined on its own while the rest of its batch is applied."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import psycopg

from tests import waiting
from tests.helpers import system_context
from tests.integration.test_projections import caught_up
from training.bootstrap import projection_supervisor
from training.core.bus import CommandBus
from training.core.projection_runner import ProjectionSupervisor
from training.core.views import TenantScopedView
from training.infra.database import Database
from training.maintenance.rebuild import rebuild_spec
from training.tenancy.handlers import RegisterTenant
from training.tenancy.views import TENANCY

wait_until = partial(waiting.wait_until, timeout=60.0)


def register_many(bus: CommandBus, count: int, prefix: str) -> list[tuple[uuid.UUID, int]]:
    registered = []
    for n in range(count):
        slug = f"{prefix.lower()}-{n}-{uuid.uuid4().hex[:6]}"
        outcome = bus.execute(system_context(), RegisterTenant(slug, f"{prefix} {n}", 5))
        assert outcome.position is not None
        registered.append((outcome.result.tenant_id, outcome.position))
    return registered


def names(database: Database, prefix: str) -> set[str]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT name FROM training.tenants WHERE name LIKE %s", (f"{prefix} %",)
        ).fetchall()
    return {str(row[0]) for row in rows}


@contextmanager
def tenancy_runner(database: Database) -> Iterator[ProjectionSupervisor]:
    base = projection_supervisor(database)
    supervisor = ProjectionSupervisor([TENANCY], base.env, base.lock_conninfo)
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.stop()


def quarantined(database: Database) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "SELECT status, tenant_id FROM training.projection_quarantine "
            "WHERE view_name = 'tenancy' ORDER BY notification_id"
        ).fetchall()


def test_stored_events_are_applied_in_batches_exactly_once(
    database: Database, bus: CommandBus
) -> None:
    registered = register_many(bus, 300, "Batched")
    last = registered[-1][1]
    with tenancy_runner(database) as runner:
        wait_until(lambda: caught_up(database, last))
        view = runner.view("tenancy")
        assert isinstance(view, TenantScopedView)
        # 300 registrations, each several events the view follows, in a few transactions.
        assert 0 < view.batches <= 30, view.batches
    assert names(database, "Batched") == {f"Batched {n}" for n in range(300)}

    # Started again from its position, it applies nothing twice (the rows' primary keys would
    # refuse a second registration) and goes on with what came after.
    later = register_many(bus, 3, "After")
    with tenancy_runner(database):
        wait_until(lambda: caught_up(database, later[-1][1]))
    assert names(database, "After") == {"After 0", "After 1", "After 2"}
    assert quarantined(database) == []


def test_an_event_a_batch_cannot_apply_is_quarantined_alone(
    database: Database, bus: CommandBus
) -> None:
    registered = register_many(bus, 60, "Mixed")
    victim = registered[30][0]
    # A stray row the victim's registration collides with, as a broken view would hold.
    with psycopg.connect(database.admin_url) as conn:
        conn.execute(
            "INSERT INTO training.tenants (tenant_id, slug, name, seat_limit, status, version, "
            "created_at, updated_at) VALUES (%s, %s, 'Stray', 1, 'active', 1, now(), now())",
            (victim, f"stray-{uuid.uuid4().hex[:6]}"),
        )
    with tenancy_runner(database):
        wait_until(lambda: caught_up(database, registered[-1][1]))
    assert [status for status, _ in quarantined(database)][:1] == ["failed"]
    assert {tenant for _, tenant in quarantined(database)} == {victim}
    assert names(database, "Mixed") == {f"Mixed {n}" for n in range(60) if n != 30}


def tenant_rows(database: Database) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute("SELECT count(*) FROM training.tenants").fetchone()
    return int(row[0]) if row else 0


def test_a_rebuild_replaces_the_view_at_once_and_readers_never_see_it_empty(
    database: Database, bus: CommandBus
) -> None:
    register_many(bus, 400, "Kept")
    with tenancy_runner(database):
        wait_until(lambda: names(database, "Kept") == {f"Kept {n}" for n in range(400)})
    before = tenant_rows(database)
    seen_meanwhile: list[int] = []

    def progress(done: int, total: int) -> None:
        if 0 < done < total:
            seen_meanwhile.append(tenant_rows(database))

    replayed = rebuild_spec(database, TENANCY, progress)
    assert replayed > 500
    assert seen_meanwhile, "the rebuild reported no progress between its pages"
    assert set(seen_meanwhile) == {before}  # the old view, whole, until the new one commits
    assert names(database, "Kept") == {f"Kept {n}" for n in range(400)}
    # A stray row another test left went with the old view: every event applied this time.
    with psycopg.connect(database.admin_url) as conn:
        held = conn.execute(
            "SELECT count(*) FROM training.projection_quarantine "
            "WHERE view_name = 'tenancy' AND resolved_at IS NULL"
        ).fetchone()
    assert held == (0,)
