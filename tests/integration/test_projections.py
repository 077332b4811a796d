"""Projections: rows and position in one transaction, exactly once, and catching up."""

from __future__ import annotations

import time
import uuid
from functools import partial

import psycopg
import pytest
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, Tracking
from eventsourcing.utils import Environment

from tests import waiting
from tests.helpers import system_context
from training.bootstrap import projection_supervisor
from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.projection_runner import ProjectionSupervisor
from training.infra.database import Database
from training.tenancy.domain import Tenant
from training.tenancy.handlers import RegisterTenant, UpdateTenant
from training.tenancy.views import TENANCY, TenancyProjection, TenancyView


def tracked(database: Database) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute("SELECT max(notification_id) FROM training.tenancy_tracking").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def caught_up(database: Database, position: int) -> bool:
    """The tenancy view has processed every event it follows up to ``position``."""
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM training.training_events WHERE notification_id > %s "
            "AND notification_id <= %s AND topic = ANY(%s))",
            (tracked(database), position, list(TENANCY.info.topics)),
        ).fetchone()
    return row is not None and not row[0]


def tenant_names(database: Database) -> dict[str, str]:
    with psycopg.connect(database.admin_url) as conn:
        return dict(conn.execute("SELECT slug, name FROM training.tenants").fetchall())


wait_until = partial(waiting.wait_until, timeout=30.0)


def register(bus: CommandBus, name: str = "Tenant") -> tuple[uuid.UUID, int]:
    outcome = bus.execute(system_context(), RegisterTenant(f"p-{uuid.uuid4().hex[:8]}", name, 5))
    assert outcome.position is not None
    return outcome.result.tenant_id, outcome.position


def test_replaying_a_position_changes_nothing(
    database: Database, app: TrainingApplication, bus: CommandBus
) -> None:
    _, position = register(bus, "Original")
    env = Environment("tenancy", database.eventsourcing_env(pool_size=1, max_overflow=0))
    view = InfrastructureFactory[TenancyView].construct(env=env).tracking_recorder(TenancyView)
    projection = TenancyProjection(view=view)
    try:
        # The tenant's Registered event precedes the skill framework the tenant starts with.
        [notification] = app.recorder.select_notifications(start=position - 1, limit=1)
        event = app.mapper.to_domain_event(notification)
        assert isinstance(event, Tenant.Registered)
        tracking = Tracking(app.name, notification.id)
        projection.process_event(event, tracking)
        before = tenant_names(database)
        with pytest.raises(IntegrityError):
            projection.process_event(event, tracking)
        assert tenant_names(database) == before
        assert view.max_tracking_id(app.name) == position - 1
    finally:
        view.datastore.close()


def test_a_view_that_was_down_catches_up(database: Database, bus: CommandBus) -> None:
    supervisor = projection_supervisor(database)
    supervisor.start()
    try:
        _, first = register(bus, "Before")
        wait_until(lambda: caught_up(database, first))
    finally:
        supervisor.stop()

    # While the view is down, events keep arriving.
    written = [register(bus, f"While down {i}") for i in range(5)]
    tenant_id, _ = written[0]
    renamed = bus.execute(system_context(), UpdateTenant(tenant_id, name="Renamed while down"))
    assert renamed.position is not None
    assert not caught_up(database, renamed.position)

    supervisor = projection_supervisor(database)
    supervisor.start()
    try:
        wait_until(lambda: caught_up(database, renamed.position))  # type: ignore[arg-type]
    finally:
        supervisor.stop()
    names = set(tenant_names(database).values())
    assert {"Renamed while down", "While down 1", "While down 4"} <= names


def test_a_runner_that_loses_its_connection_is_restarted(
    database: Database, bus: CommandBus
) -> None:
    supervisor = projection_supervisor(database)
    supervisor.start()
    try:
        wait_until(lambda: "tenancy" in supervisor.running())
        # Kill the runner's connections, as a database restart or a network cut would.
        with psycopg.connect(database.admin_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND usename = 'training_app' "
                "AND pid <> pg_backend_pid()"
            )
        _, position = register(bus, "After the cut")
        wait_until(lambda: caught_up(database, position), timeout=30)
        assert supervisor.restarts["tenancy"] >= 1
    finally:
        supervisor.stop()


def test_one_runner_per_projection_across_processes(database: Database, bus: CommandBus) -> None:
    first = projection_supervisor(database)
    second = ProjectionSupervisor([TENANCY], first.env, first.lock_conninfo)
    first.start()
    wait_until(lambda: "tenancy" in first.running())
    second.start()
    try:
        _, position = register(bus, "Leader only")
        wait_until(lambda: caught_up(database, position))
        time.sleep(0.5)
        assert second.running() == []
        first.stop()
        # The follower takes over once the leader's lock is released.
        wait_until(lambda: second.running() == ["tenancy"], timeout=15)
        _, later = register(bus, "Follower now leads")
        wait_until(lambda: caught_up(database, later))
    finally:
        first.stop()
        second.stop()
