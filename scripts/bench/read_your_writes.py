"""What read-your-writes per view and tenant (ADR 0028) costs, and what it buys.

On a fresh embedded PostgreSQL, in one process (the API through Litestar's test client, the
projections running as in ``training serve``):

1. **Beside a bulk import.** Tenant B imports ``--rows`` members through
   ``POST /v1/member-imports`` while tenant A, four times a second, registers a member and
   reads it back with the position it got. Once with the import unpaced (as before) and
   once paced (``ImportPace``): A's reads (how many answered 503, how long they took) and
   B's import (until the job completed, until the members and audit views showed it).
2. **The wait's query.** How long finding a tenant's last pending event takes when another
   tenant's backlog of N events lies in front of the view, by searching the stored bytes for
   the tenant (as the wait does) and by decoding each state as JSON, against counting every
   pending event (the query the wait ran before), on the same rows.
3. **The alternative not taken.** Inserting events into a copy of the events table with a
   stored ``tenant_id`` column (generated from the state) and an index on it, against the
   same table without: what every append would pay.

It prints Markdown tables on stdout (progress goes to stderr). A measurement, not a test::

    .venv/bin/python scripts/bench/read_your_writes.py [--rows 4000] [--backlogs 1000,5000,20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from harness import machine_facts, postgres_facts, progress
from litestar.testing import TestClient

from training.app import create_app
from training.bootstrap import Services, build_services
from training.core.access import Role, Scope
from training.core.context import CommandContext
from training.core.read_store import ReadStore
from training.identity.keys import ensure_signing_key
from training.infra.database import Database, database_for
from training.infra.logging import configure_logging
from training.infra.migrations import migrate
from training.infra.secretbox import SecretBox
from training.infra.settings import Settings
from training.people.domain.members import Member
from training.people.views import MEMBERS
from training.tenancy.handlers import RegisterApiClient, RegisterTenant

ALL_SCOPES = tuple(str(s) for s in Scope)
# Tenant A writes and reads back at most this often (seconds), in both runs alike.
A_EVERY = 0.25


@contextmanager
def fresh_database() -> Iterator[tuple[Database, Settings]]:
    data_dir = Path(tempfile.mkdtemp(prefix="training-bench-ryw-"))
    settings = Settings(
        data_dir=data_dir,
        secret_key=SecretBox.new_key(),
        environment="test",
        public_url="https://training.bench",
        read_wait=2.0,
        rate_limit="1000000/60",
        rate_limit_anonymous="1000000/60",
        rate_limit_token="1000000/60",
    )
    try:
        with database_for(settings) as database:
            migrate(database.admin_url)
            ensure_signing_key(database.admin_url, SecretBox.from_settings(settings))
            yield database, settings
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def tenant_with_token(
    client: TestClient[Any], services: Services, seats: int
) -> tuple[uuid.UUID, dict[str, str]]:
    slug = f"b-{uuid.uuid4().hex[:8]}"
    context = CommandContext.system("bench", request_id=f"bench-{slug}")
    tenant_id = services.bus.execute(context, RegisterTenant(slug, slug, seats)).result.tenant_id
    issued = services.bus.execute(context, RegisterApiClient(tenant_id, "bench", ALL_SCOPES)).result
    token = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(issued.client_id, issued.client_secret),
    ).json()["access_token"]
    return tenant_id, {"Authorization": f"Bearer {token}"}


def views_show(services: Services, position: int) -> bool:
    """Whether the members and audit views (those an import floods) are at ``position``."""
    with psycopg.connect(services.database.app_url) as conn:
        tracked = [
            conn.execute(
                f"SELECT notification_id FROM training.{view}_tracking "
                "WHERE application_name = 'training'"
            ).fetchone()
            for view in ("members", "audit")
        ]
    return all(row and row[0] is not None and row[0] >= position for row in tracked)


def beside_an_import(
    client: TestClient[Any], services: Services, rows: int, pace: Any
) -> dict[str, Any]:
    """A's write-then-read loop while B's import runs; the figures of one run."""
    services.import_runner.pace = pace
    _, a = tenant_with_token(client, services, 10_000)
    _, b = tenant_with_token(client, services, rows + 10)
    prefix = uuid.uuid4().hex[:6]
    csv = "external_id,display_name,email,roles\n" + "".join(
        f"{prefix}-{n},Person {n},{prefix}-{n}@b.example,engineer\n" for n in range(rows)
    )
    started = time.monotonic()
    job = client.post(
        "/v1/member-imports", content=csv.encode(), headers={**b, "content-type": "text/csv"}
    ).headers["location"]
    statuses: list[int] = []
    seconds: list[float] = []
    completed_after = None
    n = 0
    while completed_after is None:
        n += 1
        time.sleep(max(0.0, started + n * A_EVERY - time.monotonic()))
        created = client.post(
            "/v1/members",
            json={"external_id": f"A-{prefix}-{n}", "display_name": "A", "roles": ["engineer"]},
            headers=a,
        )
        asked = time.monotonic()
        read = client.get(
            f"/v1/members/{created.json()['member_id']}",
            headers={**a, "Training-Position": created.headers["training-position"]},
        )
        seconds.append(time.monotonic() - asked)
        statuses.append(read.status_code)
        if client.get(job, headers=b).json()["status"] == "completed":
            completed_after = time.monotonic() - started
    last = services.app.recorder.max_notification_id()
    while not views_show(services, last):
        time.sleep(0.05)
    return {
        "reads": len(statuses),
        "503": statuses.count(503),
        "other": len([s for s in statuses if s not in (200, 503)]),
        "p50": statistics.median(seconds),
        "p95": statistics.quantiles(seconds, n=20, method="inclusive")[-1]
        if len(seconds) > 1
        else seconds[0],
        "max": max(seconds),
        "job": completed_after,
        "visible": time.monotonic() - started,
    }


def register(services: Services, tenant_id: uuid.UUID, count: int) -> None:
    members = [
        Member.register(tenant_id=tenant_id, external_id=f"Q-{n}", roles=(Role.ENGINEER,))
        for n in range(count)
    ]
    for start in range(0, count, 500):
        services.app.save(*members[start : start + 500])


# The same search, decoding each state as JSON instead of searching its bytes.
DECODED = (
    "SELECT notification_id FROM training.training_events WHERE notification_id > %s "
    "AND notification_id <= %s AND topic = ANY(%s) "
    "AND (convert_from(state, 'UTF8')::jsonb ->> 'tenant_id') = %s "
    "ORDER BY notification_id DESC LIMIT 1"
)


async def wait_query(
    services: Services, a: uuid.UUID, after: int, upto: int, runs: int = 15
) -> tuple[float, float, float]:
    """Median ms of finding A's last pending event (by its bytes, by decoding the JSON) and
    of counting every pending event."""
    store = ReadStore(services.database.app_url, min_size=1, max_size=2)
    await store.open()
    try:
        found, decoded, counted = [], [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            await store.last_pending_event(MEMBERS.info, after, upto, a)
            found.append(time.perf_counter() - t0)
            async with store.pool.connection() as conn:
                t0 = time.perf_counter()
                await conn.execute(DECODED, (after, upto, list(MEMBERS.info.topics), str(a)))
                decoded.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await store.pending_events(MEMBERS.info, after, upto)
            counted.append(time.perf_counter() - t0)
    finally:
        await store.close()
    by_bytes, by_json, count = (statistics.median(t) * 1000 for t in (found, decoded, counted))
    return by_bytes, by_json, count


EVENT_TENANT = """
CREATE FUNCTION bench_event_tenant(state bytea) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN t ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    THEN t::uuid END
  FROM (SELECT CASE WHEN p > 0 THEN encode(substring(state FROM p + 13 FOR 36), 'escape') END
        AS t FROM (SELECT position('"tenant_id":"'::bytea IN state) AS p) AS found) AS cut
$$;
CREATE TABLE bench_plain (LIKE training.training_events INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE INDEX ON bench_plain (topic, notification_id);
CREATE TABLE bench_tenant (LIKE bench_plain INCLUDING DEFAULTS INCLUDING INDEXES);
ALTER TABLE bench_tenant ADD COLUMN tenant_id uuid
    GENERATED ALWAYS AS (bench_event_tenant(state)) STORED;
CREATE INDEX ON bench_tenant (tenant_id, notification_id);
"""


def insert_cost(database: Database, runs: int = 5) -> dict[str, float]:
    """Median µs per row of copying the stored events into each table, in one statement."""
    timings: dict[str, list[float]] = {"bench_plain": [], "bench_tenant": []}
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(EVENT_TENANT)
        rows = 0
        for run in range(runs):
            order = list(timings) if run % 2 == 0 else list(reversed(timings))
            for table in order:
                conn.execute(f"TRUNCATE {table}")
                t0 = time.perf_counter()
                cur = conn.execute(
                    f"INSERT INTO {table} (originator_id, originator_version, topic, state, "
                    "notification_id) SELECT originator_id, originator_version, topic, state, "
                    "notification_id FROM training.training_events"
                )
                timings[table].append(time.perf_counter() - t0)
                rows = cur.rowcount
        conn.execute("DROP TABLE bench_plain, bench_tenant")
        conn.execute("DROP FUNCTION bench_event_tenant")
    return {table: statistics.median(t) / rows * 1e6 for table, t in timings.items()} | {
        "rows": rows
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--backlogs", default="1000,5000,20000")
    args = parser.parse_args()
    configure_logging("warning", stream=sys.stderr)
    load_before = os.getloadavg()
    with fresh_database() as (database, settings):
        services = build_services(settings, database, run_projections=True)
        with TestClient(app=create_app(services), base_url=settings.issuer) as client:
            runs = {}
            pace = services.import_runner.pace
            for paced in (False, True):
                progress(f"A writes and reads while B imports {args.rows} members, paced={paced}")
                runs[paced] = beside_an_import(client, services, args.rows, pace if paced else None)

            progress("the wait's query against another tenant's backlog")
            assert services.supervisor is not None
            services.supervisor.stop()  # the backlog stays in front of the view
            a, _ = tenant_with_token(client, services, 10)
            queries = []
            for backlog in (int(n) for n in args.backlogs.split(",")):
                b, _ = tenant_with_token(client, services, backlog + 10)
                after = services.app.recorder.max_notification_id()
                register(services, b, backlog)
                upto = services.app.recorder.max_notification_id()
                queries.append((backlog, *asyncio.run(wait_query(services, a, after, upto))))

            progress("the stored tenant column, on a copy of the events table")
            inserts = insert_cost(database)
        services.app.close()
        postgres = postgres_facts(database.admin_url)

    print(f"Tenant A registers a member and reads it back while tenant B imports {args.rows}:")
    print()
    print("| B's import | A's reads | 503 | other | p50 s | p95 s | max s | job s | visible s |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for paced, run in runs.items():
        label = "paced (ImportPace)" if paced else "unpaced (before)"
        print(
            f"| {label} | {run['reads']} | {run['503']} | {run['other']} | {run['p50']:.2f} "
            f"| {run['p95']:.2f} | {run['max']:.2f} | {run['job']:.1f} | {run['visible']:.1f} |"
        )
    print()
    print("Finding tenant A's last pending event behind tenant B's backlog (median of 15):")
    print()
    print(
        "| B's events pending | A's last pending event, ms | the same decoding JSON, ms "
        "| count of all pending (before), ms |"
    )
    print("|--:|--:|--:|--:|")
    for backlog, found, decoded, counted in queries:
        print(f"| {backlog:,} | {found:.2f} | {decoded:.2f} | {counted:.2f} |")
    print()
    rows = int(inserts["rows"])
    plain, tenant = inserts["bench_plain"], inserts["bench_tenant"]
    print(f"Inserting {rows:,} stored events in one statement (median of 5), per row:")
    print()
    print("| events table | µs per row | ratio |")
    print("|---|--:|--:|")
    print(f"| as it is | {plain:.1f} | 1.00 |")
    print(
        f"| with a generated tenant_id column and its index | {tenant:.1f} | {tenant / plain:.2f} |"
    )
    print()
    for fact in machine_facts(postgres, load_before):
        print(f"- {fact}")


if __name__ == "__main__":
    main()
