"""Read models in batches (ADR 0034): how fast a view applies events, one event per
transaction against the runner's batches.

One run, on a fresh embedded PostgreSQL, in this process (no HTTP):

1. a tenant and ``--members`` members imported through the command bus, 500 per command
   (each member is one ``Member.Registered`` for the members view, two events for the audit
   view);
2. for each view named, a catch-up from nothing: its tables and position emptied, the
   runner (``ProjectionSupervisor`` with that view alone) started and timed until it holds
   the last event it follows, with batches of at most 1 event (one transaction per event,
   as before ADR 0034) and then of at most 500;
3. for each view named, ``training projections rebuild``'s code: every event replayed into
   the view in one transaction that replaces the old view when it commits;
4. with ``--together``, every view of the training log from nothing at once, each with a
   reader of its own (as one runner each did) and in one process reading the log once for
   all of them (ADR 0036), twice each in the order a b b a; the table gives the events of
   all the views over the time until the last is caught up.

It prints a Markdown table on stdout (progress goes to stderr) and, with ``BENCH_RESULT``,
each view's batched catch-up and rebuild against issue #14's 15,000 events/s, the catch-up
one event per transaction as their floor (``harness.Results``). A measurement, not a test.
Usage::

    .venv/bin/python scripts/bench/view_batches.py [--members 20000] [--views members audit]
        [--together]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from harness import Measure, Results, Target, progress
from psycopg import sql

from training.bootstrap import command_bus, training_application
from training.cli.database import prepare_database
from training.core import projection_runner
from training.core.access import Role
from training.core.application import TrainingApplication
from training.core.context import Actor, ActorKind, CommandContext
from training.core.projection_runner import ProjectionSupervisor
from training.core.views import ProjectionSpec
from training.infra.database import Database, database_for
from training.infra.settings import Settings
from training.maintenance.rebuild import rebuild
from training.people.handlers.imports import ImportMembers, MemberRow
from training.registry import PROJECTIONS, by_name
from training.tenancy.handlers import RegisterTenant

BATCH = 500
# Issue #14: a view catches up or is rebuilt at 15,000 events/s.
TARGET = Target(">=", 15_000, ">= 15,000 events/s")


def fill(settings: Settings, database: Database, members: int) -> None:
    app = training_application(database)
    try:
        bus = command_bus(app, settings)
        system = CommandContext.system("bench", "view-batches")
        tenant = bus.execute(system, RegisterTenant("bench", "Bench", members + 1)).result
        hr = CommandContext(Actor(ActorKind.CLIENT, "bench"), "view-batches", tenant.tenant_id)
        for start in range(0, members, BATCH):
            rows = tuple(
                MemberRow(
                    n,
                    f"E{start + n:07d}",
                    f"Person {start + n}",
                    f"person{start + n}@bench.example",
                    (Role.ENGINEER,),
                    None,
                    None,
                    None,
                )
                for n in range(min(BATCH, members - start))
            )
            bus.execute(hr, ImportMembers(rows))
            progress(f"imported {start + len(rows)}/{members}")
    finally:
        app.close()


def last_followed(database: Database, spec: ProjectionSpec) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT max(notification_id) FROM training.training_events WHERE topic = ANY(%s)",
            (list(spec.info.topics),),
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def tracked(database: Database, spec: ProjectionSpec) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            sql.SQL("SELECT max(notification_id) FROM training.{}").format(
                sql.Identifier(f"{spec.name}_tracking")
            )
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def empty(database: Database, spec: ProjectionSpec) -> None:
    """The view's tables and position emptied: it starts again from nothing."""
    assert spec.view_class is not None
    with psycopg.connect(database.admin_url) as admin, admin.transaction():
        for table in spec.view_class.tables:
            schema, _, bare = table.partition(".")
            admin.execute(
                sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(schema), sql.Identifier(bare))
            )
        admin.execute(
            sql.SQL("DELETE FROM training.{}").format(sql.Identifier(f"{spec.name}_tracking"))
        )


def runner_env(database: Database) -> dict[str, str]:
    return database.eventsourcing_env(pool_size=2, max_overflow=2)


def catch_up(database: Database, spec: ProjectionSpec, batch: int) -> float:
    """Seconds the runner takes to apply every event the view follows, from nothing."""
    empty(database, spec)
    target = last_followed(database, spec)
    projection_runner.MAX_BATCH = batch
    started = time.perf_counter()
    runner = ProjectionSupervisor([spec], runner_env(database), database.app_url)
    runner.start()
    try:
        while tracked(database, spec) < target:
            time.sleep(0.05)
    finally:
        runner.stop()
    return time.perf_counter() - started


def checkpoint(database: Database) -> None:
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def app_sessions(database: Database) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND usename = 'training_app'"
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Together:
    seconds: float
    pages: int  # the log's pages read
    sessions: int  # the most PostgreSQL sessions the runners held at once


def together(database: Database, specs: Sequence[ProjectionSpec], *, shared: bool) -> Together:
    """Every view in ``specs`` from nothing at once: in one process reading the log once for
    all of them (``shared``), or with a reader of its own each (as one runner each did)."""
    for spec in specs:
        empty(database, spec)
    targets = {spec.name: last_followed(database, spec) for spec in specs}
    projection_runner.MAX_BATCH = BATCH
    groups = [list(specs)] if shared else [[spec] for spec in specs]
    sessions = app_sessions(database)
    started = time.perf_counter()
    runners = [ProjectionSupervisor(g, runner_env(database), database.app_url) for g in groups]
    most = 0
    for runner in runners:
        runner.start()
    try:
        while any(tracked(database, spec) < targets[spec.name] for spec in specs):
            most = max(most, app_sessions(database) - sessions)
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        pages = sum(feed.pages_read for runner in runners for feed in runner.feeds.values())
    finally:
        for runner in runners:
            runner.stop()
    return Together(seconds, pages, most)


def count_followed(database: Database, spec: ProjectionSpec) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM training.training_events WHERE topic = ANY(%s)",
            (list(spec.info.topics),),
        ).fetchone()
    return int(row[0]) if row else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--views", nargs="+", default=["members", "audit"])
    parser.add_argument(
        "--together",
        action="store_true",
        help="also every view of the training log from nothing at once: a reader each, then "
        "one reading shared by all (ADR 0036)",
    )
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="view-batches-"))
    # Always a throw-away embedded server: no DATABASE_URL is passed on.
    settings = Settings.from_env({"TRAINING_DATA_DIR": str(data_dir)})
    results = Results("view_batches")
    load_before = results.load_before
    rows = []
    notes: list[str] = []
    with database_for(settings) as database:
        prepare_database(settings, database.admin_url)
        fill(settings, database, args.members)
        for name in args.views:
            spec = by_name(name)
            events = count_followed(database, spec)
            for size in (1, BATCH):
                seconds = catch_up(database, spec, size)
                rows.append((name, f"catch-up, batches of at most {size}", events, seconds))
                progress(f"{name}, batches of at most {size}: {events / seconds:,.0f} events/s")
            started = time.perf_counter()
            replayed = rebuild(database, name, lambda done, total: None)
            seconds = time.perf_counter() - started
            rows.append((name, "rebuild, one transaction", replayed, seconds))
            progress(f"{name}, rebuild: {replayed / seconds:,.0f} events/s")
        if args.together:
            views = [s for s in PROJECTIONS if s.view_class and s.upstream is TrainingApplication]
            events = sum(count_followed(database, spec) for spec in views)
            # Each way twice, in the order a b b a: what runs second on this machine meets
            # the first run's aftermath (its checkpoint, autovacuum), so neither way always
            # does.
            for n, shared in enumerate((False, True, True, False), start=1):
                checkpoint(database)
                run = together(database, views, shared=shared)
                how = (
                    "catch-up together, one reading shared by all"
                    if shared
                    else "catch-up together, a reader each"
                )
                rows.append((f"all {len(views)} views", f"{how} (run {n})", events, run.seconds))
                notes.append(
                    f"run {n}, {how}: {run.pages:,} pages of the log read, at most "
                    f"{run.sessions} PostgreSQL sessions"
                )
                progress(f"{how}: {events / run.seconds:,.0f} events/s, {notes[-1]}")
    load_after = os.getloadavg()
    print(f"# Read models in batches ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n")
    command = shlex.join(["scripts/bench/view_batches.py", *(argv or sys.argv[1:])])
    print(f"Command: `.venv/bin/python {command}`")
    print(f"Load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f}\n")
    print("| view | how | events | seconds | events/s |")
    print("|---|---|--:|--:|--:|")
    for name, how, total, seconds in rows:
        print(f"| {name} | {how} | {total} | {seconds:.1f} | {total / seconds:,.0f} |")
    if notes:
        print()
    for note in notes:
        print(f"- {note}")
    record(results, rows)
    results.write()
    return 0


def record(results: Results, rows: Sequence[tuple[str, str, int, float]]) -> None:
    """Each view's batched catch-up (against one event per transaction) and its rebuild; the
    ``--together`` rows add up several views, so the per-view target does not apply."""
    for name in dict.fromkeys(row[0] for row in rows if not row[0].startswith("all ")):
        rates = {how: total / seconds for view, how, total, seconds in rows if view == name}
        single = rates.get("catch-up, batches of at most 1")
        for how, rate in rates.items():
            if how == "catch-up, batches of at most 1":
                continue
            batched = how.startswith("catch-up")
            results.add(
                Measure(
                    f"{name}: {how}",
                    rate,
                    "events/s",
                    floor=single if batched else None,
                    floor_name="one event per transaction" if batched else "",
                    target=TARGET,
                )
            )


if __name__ == "__main__":
    raise SystemExit(main())
