"""The audit view writes a batch's rows together, a statement per run of one tenant's events:
the rows are the ones the same events leave when each is applied in a transaction of its own,
and each tenant's rows are written under its own scope (row-level security) when the tenants'
events alternate in the batch."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg

from tests.integration.view_runs import apply_batched_then_alone, stamped
from training.audit.views import AuditProjection, AuditView
from training.infra.database import Database
from training.people.domain.seats import SeatRoster


def events_of(tenant_id: uuid.UUID, actor: str) -> list[Any]:
    """A roster opened and given three seats, stamped as the command bus stamps events."""
    roster = SeatRoster.open(tenant_id)
    for _ in range(3):
        roster.take((uuid.uuid4(),), seat_limit=10)
    return stamped(
        roster.collect_events(), actor=actor, request_id=f"r-{actor}", tenant_id=tenant_id
    )


def audit_rows(database: Database, tenant_id: uuid.UUID) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "SELECT tenant_id, recorded_at, actor, request_id, event_type, subject_type, "
            "subject_version FROM training.audit_log WHERE tenant_id = %s "
            "ORDER BY notification_id",
            (tenant_id,),
        ).fetchall()


def test_a_batch_of_alternating_tenants_writes_what_one_event_at_a_time_writes(
    database: Database,
) -> None:
    first, second, alone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    mine, theirs = events_of(first, "a"), events_of(second, "b")
    interleaved = [e for pair in zip(mine, theirs, strict=True) for e in pair]
    apply_batched_then_alone(
        database, AuditView, AuditProjection, interleaved, events_of(alone, "a")
    )

    batched, single = audit_rows(database, first), audit_rows(database, alone)
    assert len(batched) == len(single) == 4
    # The same rows but for the tenant and the times the events were made at.
    assert [row[2:] for row in batched] == [row[2:] for row in single]
    assert [row[1] for row in batched] == [e.timestamp for e in mine]
    assert all(isinstance(row[1], datetime) and row[1].tzinfo is not None for row in batched)
    assert [row[2] for row in audit_rows(database, second)] == ["b"] * 4
    assert batched[0][4:6] == ("training.people:SeatRoster.Opened", "SeatRoster")
