"""The tenancy view writes a batch's run of tenant registrations with one statement, in the
platform's scope, and a change to a tenant registered earlier in the batch still finds its
row: the rows are the ones the same events leave when each is applied on its own."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from tests.integration.view_runs import apply_batched_then_alone, stamped
from training.infra.database import Database
from training.tenancy.domain import Tenant
from training.tenancy.views import TenancyProjection, TenancyView


def history(prefix: str) -> list[Any]:
    """Three registrations, the first tenant renamed between the second and the third."""
    tenants = [Tenant.register(f"{prefix}-{n}", f"Tenant {n}", 10 + n) for n in range(3)]
    first, second, third = (t.collect_events() for t in tenants)
    tenants[0].rename("Renamed")
    renamed = tenants[0].collect_events()
    return [stamped([e], tenant_id=e.originator_id)[0] for e in (*first, *second, *renamed, *third)]


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
    batched, alone = f"b{uuid.uuid4().hex[:6]}", f"a{uuid.uuid4().hex[:6]}"
    apply_batched_then_alone(
        database, TenancyView, TenancyProjection, history(batched), history(alone)
    )

    assert (
        tenant_rows(database, batched)
        == tenant_rows(database, alone)
        == [
            ("0", "Renamed", 10, "active", 2),
            ("1", "Tenant 1", 11, "active", 1),
            ("2", "Tenant 2", 12, "active", 1),
        ]
    )
