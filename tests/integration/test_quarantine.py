"""One tenant's unprojectable event is quarantined; every other tenant's reads go on.

The members view is given a row that the victim tenant's next registration collides with (as
the write-model race left it): the registration cannot be projected. The runner keeps running
for everyone else, holds the victim's later events back in order, says so in /readyz and in an
error log line, and `training projections retry members` applies them all once the row is gone.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import psycopg
import pytest
from eventsourcing.utils import get_topic
from litestar.testing import TestClient
from structlog.testing import capture_logs

from tests import waiting
from tests.helpers import PROBLEM, TenantUnderTest
from training.bootstrap import Services
from training.cli import main
from training.infra.database import Database
from training.people.domain.members import Member

wait_until = partial(waiting.wait_until, timeout=30.0)


def quarantined(database: Database) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "SELECT status, topic, originator_id, originator_version, tenant_id, error_type, "
            "error_message, attempts, resolution FROM training.projection_quarantine "
            "WHERE view_name = 'members' ORDER BY notification_id"
        ).fetchall()


def members_ready(client: TestClient[Any]) -> dict[str, Any]:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body: dict[str, Any] = ready.json()
    [members] = [p for p in body["projections"] if p["name"] == "members"]
    return {"status": body["status"], "members": members, "all": body["projections"]}


def test_a_tenants_unprojectable_event_is_quarantined_and_retried_after_the_fix(
    client: TestClient[Any],
    services: Services,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    victim = TenantUnderTest(client, services)
    other = TenantUnderTest(client, services)
    squatter = uuid.uuid4()
    with psycopg.connect(database.admin_url) as conn:
        conn.execute(
            "INSERT INTO training.members (member_id, tenant_id, external_id, roles, status, "
            "version, created_at, updated_at) "
            "VALUES (%s, %s, 'E-100', '{engineer}', 'active', 1, now(), now())",
            (squatter, victim.tenant_id),
        )

    with capture_logs() as logs:
        first = victim.add("E-100")
        assert first.status_code == 201, first.text
        wait_until(lambda: len(quarantined(database)) == 1)
    first_id = first.json()["member_id"]
    alerts = [entry for entry in logs if entry["event"] == "projection.event_quarantined"]
    assert [(a["log_level"], a["projection"], a["tenant_id"]) for a in alerts] == [
        ("error", "members", str(victim.tenant_id))
    ]

    # The victim's later events wait behind the one that failed, in order.
    later = victim.add("E-101")
    assert later.status_code == 201, later.text
    promoted = client.patch(
        f"/v1/members/{first_id}",
        json={"roles": ["engineer", "manager"]},
        headers=victim.headers(),
    )
    assert promoted.status_code == 200, promoted.text

    # Every other tenant goes on, reading its own writes.
    for n in range(3):
        created = other.add(f"O-{n}")
        assert created.status_code == 201, created.text
        read = client.get(
            created.headers["location"],
            headers=other.headers(created.headers["training-position"]),
        )
        assert read.status_code == 200, read.text
        assert read.json()["external_id"] == f"O-{n}"

    # The victim's own read of its write says the view is behind instead of answering stale.
    behind = client.get(
        later.headers["location"], headers=victim.headers(promoted.headers["training-position"])
    )
    assert behind.status_code == 503
    assert behind.headers["content-type"] == PROBLEM
    assert behind.json()["type"].endswith("view-behind")

    wait_until(lambda: len(quarantined(database)) == 3)
    registered, roles_changed = get_topic(Member.Registered), get_topic(Member.RolesChanged)
    rows = quarantined(database)
    assert [row[:5] for row in rows] == [
        ("failed", registered, uuid.UUID(first_id), 1, victim.tenant_id),
        ("parked", registered, uuid.UUID(later.json()["member_id"]), 1, victim.tenant_id),
        ("parked", roles_changed, uuid.UUID(first_id), 2, victim.tenant_id),
    ]
    error_type, error_message, attempts = rows[0][5:8]
    assert error_type == "psycopg.errors.UniqueViolation"
    assert error_message.startswith("SQLSTATE 23505, table training.members, constraint ")
    assert "E-100" not in error_message  # the row's values are never recorded
    assert attempts == 1
    assert [row[5:8] for row in rows[1:]] == [(None, None, 0), (None, None, 0)]

    ready = members_ready(client)
    assert ready["status"] == "degraded"
    assert ready["members"]["status"] == "degraded"
    assert ready["members"]["runner"] == "here"
    assert ready["members"]["degraded_tenant_count"] == 1
    [degraded] = ready["members"]["degraded_tenants"]
    assert degraded["tenant_id"] == str(victim.tenant_id)
    assert (degraded["quarantined"], degraded["parked"]) == (1, 2)
    assert degraded["since"]
    assert all(p["status"] == "ok" for p in ready["all"] if p["name"] != "members")

    # The operator removes the stray row and retries, while the runner keeps running.
    with psycopg.connect(database.admin_url) as conn:
        conn.execute("DELETE FROM training.members WHERE member_id = %s", (squatter,))
    monkeypatch.setenv("DATABASE_URL", database.admin_url)
    assert main(["projections", "retry", "members"]) == 0
    # (The runners' log lines go to the same stdout in tests.)
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("members: ")]
    assert lines == [
        "members: re-applied 3 held event(s) in order for 1 tenant(s); "
        "members is healthy again for every tenant"
    ]

    # Applied in order: the registration, then the role change on the row it created.
    headers = victim.headers(promoted.headers["training-position"])
    first_read = client.get(first.headers["location"], headers=headers)
    assert first_read.status_code == 200, first_read.text
    assert first_read.json()["roles"] == ["engineer", "manager"]
    assert first_read.json()["version"] == 2
    assert client.get(later.headers["location"], headers=headers).status_code == 200
    assert [row[0::8] for row in quarantined(database)] == [
        ("failed", "retried"),
        ("parked", "retried"),
        ("parked", "retried"),
    ]
    ready = members_ready(client)
    assert (ready["status"], ready["members"]["status"]) == ("ready", "ok")
    assert ready["members"]["degraded_tenants"] == []

    # The victim's next member is applied directly again.
    again = victim.add("E-102")
    read = client.get(
        again.headers["location"], headers=victim.headers(again.headers["training-position"])
    )
    assert read.status_code == 200, read.text
