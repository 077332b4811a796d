"""The members view writes a batch's run of registrations together (an import's), and a
change to a member registered earlier in the same batch still finds the member's row: the
rows are the ones the same events leave when each is applied in a transaction of its own."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from tests.integration.view_runs import apply_batched_then_alone
from training.core.access import Role
from training.infra.database import Database
from training.people.domain.members import Member
from training.people.views import MembersProjection, MembersView


def history(tenant_id: uuid.UUID) -> list[Any]:
    """Three registrations, the first member's roles changed between the second and third."""
    members = [
        Member.register(
            tenant_id=tenant_id,
            external_id=f"E{number}",
            roles=(Role.ENGINEER,),
            team="Platform" if number else None,
        )
        for number in range(3)
    ]
    first, second, third = (m.collect_events() for m in members)
    members[0].change_roles((Role.ENGINEER, Role.MANAGER))
    changed = members[0].collect_events()
    return [
        type(e)(**{**vars(e), "tenant_id": tenant_id}) for e in (*first, *second, *changed, *third)
    ]


def member_rows(database: Database, tenant_id: uuid.UUID) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "SELECT external_id, roles, manager_id, team, job_title, status, version, "
            "created_at = updated_at FROM training.members WHERE tenant_id = %s "
            "ORDER BY external_id",
            (tenant_id,),
        ).fetchall()


def test_a_batch_of_registrations_writes_what_one_event_at_a_time_writes(
    database: Database,
) -> None:
    first, second, alone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    interleaved = [e for pair in zip(history(first), history(second), strict=True) for e in pair]
    apply_batched_then_alone(database, MembersView, MembersProjection, interleaved, history(alone))

    batched = member_rows(database, first)
    assert batched == member_rows(database, second) == member_rows(database, alone)
    assert [(row[0], row[1], row[6], row[7]) for row in batched] == [
        ("E0", ["engineer", "manager"], 2, False),
        ("E1", ["engineer"], 1, True),
        ("E2", ["engineer"], 1, True),
    ]
