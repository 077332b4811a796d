"""Queries read from a streaming replica (``TRAINING_READ_DATABASE_URL``), and still read
their own writes.

The service runs against a real primary and a hot standby that streams its WAL over TCP on
loopback (``tests/replication.py``). The read-your-writes tests of every query family run
here again, against the pair; the tests below show that the reads really come from the
replica, that ``Training-Position`` is honoured against the replica's own replay and
tracking rows, and that a replica that is gone answers 503, never 500 or stale data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from tests.api.test_read_your_writes import (
    test_a_query_reads_its_own_write,
    test_a_view_too_far_behind_answers_503,
)
from tests.api.test_read_your_writes_beside_an_import import (
    a,
    importing,
    test_assessments,
    test_audit,
    test_cohorts,
    test_curricula,
    test_members,
    test_reports,
    test_reviews,
    test_scim,
    test_skills,
    test_tenancy,
    test_tracks,
)
from tests.conftest import make_settings
from tests.helpers import PROBLEM, TenantUnderTest
from tests.replication import ReplicatedServers, primary_and_replica, replicated
from tests.waiting import wait_until
from training.bootstrap import Services
from training.identity.keys import ensure_signing_key
from training.infra.database import Database, app_url_for, create_database, with_dbname
from training.infra.migrations import migrate
from training.infra.secretbox import SecretBox

# The read-your-writes tests, collected again here with this module's database: the pair.
AGAINST_THE_PAIR = (
    test_a_query_reads_its_own_write,
    test_a_view_too_far_behind_answers_503,
    test_members,
    test_skills,
    test_curricula,
    test_cohorts,
    test_assessments,
    test_reviews,
    test_tracks,
    test_reports,
    test_audit,
    test_tenancy,
    test_scim,
    a,
    importing,
)
DBNAME = "training"


@pytest.fixture(scope="module")
def servers() -> Iterator[ReplicatedServers]:
    with primary_and_replica() as pair:
        yield pair


@pytest.fixture(scope="module")
def database(servers: ReplicatedServers) -> Database:
    """The service's database on the primary, its queries on the replica."""
    create_database(servers.primary_url, DBNAME)
    admin_url = with_dbname(servers.primary_url, DBNAME)
    migrate(admin_url)
    ensure_signing_key(admin_url, SecretBox.from_settings(make_settings()))
    replicated(servers, DBNAME)
    return Database(
        admin_url=admin_url,
        app_url=app_url_for(admin_url, None),
        read_url=app_url_for(with_dbname(servers.replica_url, DBNAME), None),
    )


def _on_replica(services: Services) -> None:
    assert services.store.on_replica
    with psycopg.connect(services.database.read_url) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    assert row == (True,)


def test_queries_read_the_replica_and_wait_for_its_replay(
    tenant: TenantUnderTest, client: TestClient[Any], services: Services, servers: ReplicatedServers
) -> None:
    _on_replica(services)
    seen = tenant.add(f"R-{uuid.uuid4().hex[:8]}")
    assert seen.status_code == 201, seen.text
    servers.pause_replay()
    try:
        # The primary takes the write; the replica receives it but does not apply it.
        created = tenant.add(f"R-{uuid.uuid4().hex[:8]}")
        assert created.status_code == 201, created.text
        member_url = created.headers["location"]
        position = created.headers["training-position"]
        # Without the position: what the replica holds, which is not the write yet.
        stale = client.get(member_url, headers={"Authorization": tenant.headers()["Authorization"]})
        assert stale.status_code == 404
        # With it: the query waits for the replica's replay, then says it is behind.
        behind = client.get(member_url, headers=tenant.headers(position))
        assert behind.status_code == 503, behind.text
        assert behind.headers["content-type"] == PROBLEM
        assert behind.json()["type"].endswith("/view-behind")
        assert "replica" in behind.json()["detail"]
        assert behind.headers["retry-after"] == "1"
    finally:
        servers.resume_replay()
    fresh = client.get(member_url, headers=tenant.headers(position))
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["member_id"] == created.json()["member_id"]


def test_readiness_reports_the_replica(client: TestClient[Any]) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["replica"] == "ok"
    assert ready.json()["replica_delay_seconds"] >= 0


def test_a_replica_that_is_gone_answers_503_and_takes_no_write_down(
    tenant: TenantUnderTest, client: TestClient[Any], servers: ReplicatedServers
) -> None:
    servers.stop_replica()
    try:
        listed = client.get("/v1/members", headers=tenant.headers())
        assert listed.status_code == 503, listed.text
        assert listed.headers["content-type"] == PROBLEM
        assert listed.json()["type"].endswith("/database-unavailable")
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["replica"].startswith("unreachable")
        # Commands go to the primary: they still work.
        created = tenant.add(f"R-{uuid.uuid4().hex[:8]}")
        assert created.status_code == 201, created.text
    finally:
        servers.start_replica()
    # As a client told Retry-After does: back once the pool has reconnected to the replica.
    wait_until(lambda: client.get("/readyz").status_code == 200, 60, "the replica's return")
    position = created.headers["training-position"]
    read = client.get(created.headers["location"], headers=tenant.headers(position))
    assert read.status_code == 200, read.text
