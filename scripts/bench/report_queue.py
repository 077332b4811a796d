"""The report queue's claims (ADR 0027): how many reports one claim leases, what a claim
costs, and how soon the report of a killed worker is taken again.

On a fresh embedded PostgreSQL, with queued rows written straight into ``training.reports``
(a claim reads nothing else):

1. the claim statement before ADR 0027 (``UPDATE ... FROM (SELECT ... LIMIT 1 FOR UPDATE
   SKIP LOCKED)`` with a 600 s lease) and the queue's claim now: reports leased by one claim,
   in a database just made from the migrated one (the table never analyzed: a new
   installation, the demo, until autovacuum first analyzes the table after 50 rows) and
   after ``ANALYZE``;
2. a claim and the release of its lease, in a loop, while other sessions hold 0, 8 or 64
   leases (the claim reads ``pg_locks``);
3. a process that holds a lease is killed with SIGKILL: the time from the kill until another
   queue claims the same report.

It prints a Markdown table on stdout (progress goes to stderr). It is a measurement, not a
test: there is no pass or fail. Usage::

    .venv/bin/python scripts/bench/report_queue.py [--queued 2000] [--claims 500] \
        [--kills 10] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from harness import machine_facts, postgres_facts, progress
from psycopg.conninfo import conninfo_to_dict

from training.infra.database import (
    Database,
    app_url_for,
    create_database,
    database_for,
    with_dbname,
)
from training.infra.logging import configure_logging
from training.infra.migrations import migrate
from training.infra.settings import Settings
from training.reports.queue import LEASE_SPACE, TAKE, SqlReportQueue
from training.reports.views import INSERT

BEFORE = (
    "UPDATE training.reports r SET claimed_until = now() + make_interval(secs => 600), "
    "attempts = r.attempts + 1 FROM (SELECT report_id FROM training.reports "
    "WHERE status = 'queued' AND (claimed_until IS NULL OR claimed_until < now()) "
    "ORDER BY priority, created_at, report_id LIMIT 1 FOR UPDATE SKIP LOCKED) next "
    "WHERE r.report_id = next.report_id RETURNING r.report_id"
)
# A stand-in for a worker: takes one lease on its own session and waits to be killed.
HOLDER = """
import sys, time, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.execute(sys.argv[2], {"report": sys.argv[3]})
print("held", flush=True)
time.sleep(3600)
"""


@contextmanager
def fresh_database() -> Iterator[Database]:
    data_dir = Path(tempfile.mkdtemp(prefix="training-bench-report-queue-"))
    try:
        settings = Settings(data_dir=data_dir, secret_key=None, environment="test")
        with database_for(settings) as database:
            migrate(database.admin_url)
            yield database
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def copy_of(database: Database) -> Iterator[Database]:
    """A new database made from the migrated one: its tables as a new installation has
    them, never analyzed."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    server = with_dbname(database.admin_url, "postgres")
    create_database(server, name, template=conninfo_to_dict(database.admin_url)["dbname"])
    admin_url = with_dbname(database.admin_url, name)
    try:
        yield Database(admin_url=admin_url, app_url=app_url_for(admin_url, None))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def refill(database: Database, count: int, *, empty_first: bool = True) -> list[uuid.UUID]:
    """``count`` queued reports of one tenant, in place of the table's rows."""
    tenant = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(count)]
    if empty_first:
        with psycopg.connect(database.admin_url, autocommit=True) as conn:
            conn.execute("TRUNCATE training.reports")
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        with conn.cursor() as cur:
            cur.executemany(
                INSERT,
                [
                    {
                        "report": report_id,
                        "tenant": tenant,
                        "kind": "effectiveness",
                        "subject": None,
                        "for_plan": None,
                        "priority": 1,
                        "by": "system:bench",
                        "request": "bench",
                        "trigger": "bench",
                    }
                    for report_id in ids
                ],
            )
    return ids


def analyze(database: Database) -> None:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute("ANALYZE training.reports")


def leased_by_one_claim(migrated: Database, queued: int, *, stats: bool, before: bool) -> int:
    with copy_of(migrated) as database:
        refill(database, queued, empty_first=False)
        if stats:
            analyze(database)
        return _leased_by_one_claim(database, before=before)


def _leased_by_one_claim(database: Database, *, before: bool) -> int:
    if before:
        with psycopg.connect(database.worker_url) as conn:
            conn.execute(BEFORE).fetchall()
        with psycopg.connect(database.admin_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM training.reports WHERE claimed_until > now()"
            ).fetchone()
        return int(row[0]) if row else 0
    queue = SqlReportQueue(database.app_url, worker_conninfo=database.worker_url)
    queue.open()
    try:
        assert queue.claim() is not None
        with psycopg.connect(database.admin_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM training.reports WHERE attempts > 0"
            ).fetchone()
        return int(row[0]) if row else 0
    finally:
        queue.close()


def claim_cost(database: Database, queued: int, held: int, claims: int) -> list[float]:
    """Milliseconds per claim and release while ``held`` other sessions hold a lease each."""
    ids = refill(database, queued)
    analyze(database)
    holders = [psycopg.connect(database.worker_url, autocommit=True) for _ in range(held)]
    queue = SqlReportQueue(database.app_url, worker_conninfo=database.worker_url)
    queue.open()
    try:
        for conn, report_id in zip(holders, ids, strict=False):
            conn.execute(TAKE, {"report": report_id})
        timings = []
        for _ in range(claims):
            started = time.perf_counter()
            job = queue.claim()
            assert job is not None
            queue.retry_later(job, 0.0)
            timings.append((time.perf_counter() - started) * 1000)
        return timings
    finally:
        queue.close()
        for conn in holders:
            conn.close()


def takeover(database: Database, kills: int) -> list[float]:
    """Milliseconds from the SIGKILL of a lease's holder to another queue's claim of it."""
    [report_id] = refill(database, 1)
    queue = SqlReportQueue(database.app_url, worker_conninfo=database.worker_url)
    queue.open()
    timings = []
    try:
        for _ in range(kills):
            holder = subprocess.Popen(
                [sys.executable, "-c", HOLDER, database.worker_url, TAKE, str(report_id)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            assert queue.claim() is None
            started = time.perf_counter()
            os.kill(holder.pid, signal.SIGKILL)
            while (job := queue.claim()) is None:
                time.sleep(0.001)
            timings.append((time.perf_counter() - started) * 1000)
            holder.wait()
            queue.retry_later(job, 0.0)
    finally:
        queue.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=2000)
    parser.add_argument("--claims", type=int, default=500)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="new databases per row of table 1")
    args = parser.parse_args()
    configure_logging("warning")
    load_before = os.getloadavg()
    rows = []
    with fresh_database() as database:
        progress("reports leased by one claim")
        for queued in (7, 16, 40, args.queued):
            for stats in (False, True):
                counts = {
                    before: [
                        leased_by_one_claim(database, queued, stats=stats, before=before)
                        for _ in range(args.runs)
                    ]
                    for before in (True, False)
                }
                when = "after ANALYZE" if stats else "never analyzed"
                rows.append(
                    f"| one claim, {queued} queued, {when} | "
                    + " | ".join(
                        f"{statistics.mean(counts[b]):.1f} (max {max(counts[b])})"
                        for b in (True, False)
                    )
                    + " |"
                )
        costs = []
        for held in (0, 8, 64):
            progress(f"claim and release, {held} leases held elsewhere")
            timings = claim_cost(database, args.queued, held, args.claims)
            cuts = statistics.quantiles(timings, n=20)
            costs.append(
                f"| claim + release, {args.queued} queued, {held} leases held elsewhere "
                f"| {statistics.median(timings):.2f} ms | {cuts[18]:.2f} ms |"
            )
        progress("takeover after SIGKILL of the lease holder")
        taken = takeover(database, args.kills)
        facts = machine_facts(postgres_facts(database.admin_url), load_before)
    print(f"| Reports leased by one claim ({args.runs} runs: mean, max) | before | now |")
    print("|---|---|---|")
    print("\n".join(rows))
    print()
    print("| Claim cost | median | p95 |")
    print("|---|---|---|")
    print("\n".join(costs))
    print()
    print(
        f"Takeover of a killed holder's report ({args.kills} kills): median "
        f"{statistics.median(taken):.1f} ms, max {max(taken):.1f} ms (before: the 600 s lease)"
    )
    print()
    print(f"LEASE_SPACE {LEASE_SPACE}; command: .venv/bin/python scripts/bench/report_queue.py")
    for fact in facts:
        print(f"- {fact}")


if __name__ == "__main__":
    main()
