"""The tenancy view writes a batch's run of tenant registrations with one statement, in the
platform's scope, and a change to a tenant registered earlier in the batch still finds its
row: the rows are the ones the same events leave when each is applied on its own."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.utils import Environment

from training.infra.database import Database
from training.tenancy.domain import Tenant
from training.tenancy.views import TenancyProjection, TenancyView


def history(prefix: str) -> list[Any]:
    """Three registrations, the first tenant renamed between the second and the third."""
    tenants = [Tenant.register(f"{prefix}-{n}", f"Tenant {n}", 10 + n) for n in range(3)]
    first, second, third = (t.collect_events() for t in tenants)
    tenants[0].rename("Renamed")
    renamed = tenants[0].collect_events()
    return [
        type(e)(**{**vars(e), "tenant_id": e.originator_id})
        for e in (*first, *second, *renamed, *third)
    ]


def tenant_rows(database: Database, prefix: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "SELECT split_part(slug, '-', 2), name, seat_limit, status, version "
            "FROM training.tenants WHERE slug LIKE %s ORDER BY slug",
            (f"{prefix}-%",),
        ).fetchall()


def test_a_batch_of_registrations_writes_what_one_event_at_a_time_writes(
    database: Database,
) -> None:
    env = Environment("tenancy", database.eventsourcing_env(pool_size=1, max_overflow=0))
    view = InfrastructureFactory[TenancyView].construct(env=env).tracking_recorder(TenancyView)
    projection = TenancyProjection(view=view)
    batched, alone = f"b{uuid.uuid4().hex[:6]}", f"a{uuid.uuid4().hex[:6]}"
    try:
        position = 0
        with view.batch():
            for event in history(batched):
                position += 1
                projection.process_event(event, Tracking("training", position))
        for event in history(alone):
            position += 1
            projection.process_event(event, Tracking("training", position))
        assert view.max_tracking_id("training") == position
    finally:
        view.datastore.close()

    assert (
        tenant_rows(database, batched)
        == tenant_rows(database, alone)
        == [
            ("0", "Renamed", 10, "active", 2),
            ("1", "Tenant 1", 11, "active", 1),
            ("2", "Tenant 2", 12, "active", 1),
        ]
    )
