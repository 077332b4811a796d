"""Foundation benchmark (issue #2): what one event costs, end to end and in the database.

One run measures, on a fresh embedded PostgreSQL:

1. commands over HTTP at several client concurrencies, the first level repeated last on the
   store the others filled: ``POST /v1/tenants`` (the platform operator registering tenants)
   and, with ``--paths tenants members``, ``POST /v1/members`` (an integration client
   registering members into one tenant);
2. the raw psycopg floor: one autocommitted INSERT per row into a copy of the events table;
3. projection catch-up: rebuilding the ``tenancy`` read model from the events step 1 wrote.

It prints a Markdown table on stdout (progress goes to stderr) and, with ``BENCH_RESULT``,
the issue #14 targets' measures (``harness.Results``). It is a measurement, not a test: there
is no pass or fail. Usage::

    .venv/bin/python scripts/bench/foundation.py [--clients 1 16 64 1] [--requests ...]
        [--paths tenants members]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from harness import (
    HTTP_TIMEOUT,
    CpuMeter,
    Errors,
    Measure,
    Results,
    Server,
    Stopwatch,
    Target,
    Window,
    cpu_shares,
    format_ms,
    percentile,
    postgres_facts,
    progress,
    report,
    run_benchmark,
    serving,
)
from tenants import Operator, Tenant

from training.infra.database import Database, database_for
from training.infra.settings import Settings
from training.maintenance.rebuild import rebuild

SCRATCH_TABLE = "public.bench_events"
# The DDL of training.training_events (migrations/0002_event_store.sql) without the
# immutability trigger, so the floor pays for the same heap, primary key, sequence and index.
SCRATCH_DDL = (
    f"""CREATE TABLE {SCRATCH_TABLE} (
        originator_id uuid NOT NULL,
        originator_version bigint NOT NULL,
        topic text,
        state bytea,
        notification_id bigserial NOT NULL,
        PRIMARY KEY (originator_id, originator_version)
    )""",
    f"CREATE UNIQUE INDEX bench_events_notification_id_idx ON {SCRATCH_TABLE} (notification_id)",
)
SCRATCH_INSERT = (
    f"INSERT INTO {SCRATCH_TABLE} (originator_id, originator_version, topic, state) "
    "VALUES (%s, %s, %s, %s)"
)
# Issue #14's targets for a one-event command: at 16 clients, 1,500/s with p99 <= 50 ms; at
# one client, a tenth of the raw single-insert floor.
TARGET_CLIENTS = 16
TARGET_RATE = Target(">=", 1500, ">= 1,500/s")
TARGET_P99 = Target("<=", 50, "<= 50 ms")
TARGET_OF_FLOOR = Target(">=", 0.1, ">= 0.1 of the floor", on_ratio=True)
TARGET_REBUILD = Target(">=", 15_000, ">= 15,000 events/s")


@dataclass
class Result:
    """One row of the table: ``count`` operations in ``window``."""

    label: str
    clients: int
    count: int
    window: Window
    latencies_ms: list[float] = field(default_factory=list)
    errors: Errors = field(default_factory=Errors)
    warmup_ok: int = 0  # successful operations before the window: they wrote events too
    warmup_errors: Errors = field(default_factory=Errors)
    store_events: int | None = None  # events in the store when the window opened

    @property
    def rate(self) -> float:
        return self.count / self.window.seconds if self.window.seconds else 0.0

    def percentile(self, fraction: float) -> float | None:
        """None when the operation has no per-item latency."""
        return percentile(self.latencies_ms, fraction)


# --- 1. HTTP commands -----------------------------------------------------------------------------


@dataclass
class Batch:
    """The outcome of a batch of POSTs; ``position`` is the highest Training-Position seen,
    the notification id of the newest event, so roughly the size of the event store.
    ``failures`` keeps the first few failures in full, for the log."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Errors = field(default_factory=Errors)
    failures: list[str] = field(default_factory=list)
    position: int = 0

    def fail(self, failure: int | BaseException, detail: str) -> None:
        self.errors.add(failure)
        if len(self.failures) < 10:
            self.failures.append(detail)


@dataclass(frozen=True)
class Command:
    """The command a level sends: where, who sends it, and the body for a unique name."""

    path: str
    token: Callable[[], str]
    body: Callable[[str], dict[str, Any]]

    @property
    def label(self) -> str:
        return f"HTTP POST {self.path}"


def tenants_command(token: Callable[[], str]) -> Command:
    return Command(
        "/v1/tenants",
        token,
        lambda name: {"slug": name, "name": f"Bench {name}", "seat_limit": 10},
    )


def members_command(tenant: Tenant) -> Command:
    return Command(
        "/v1/members",
        tenant.token,
        lambda name: {
            "external_id": name,
            "display_name": f"Engineer {name}",
            "email": f"{name}@bench.example",
            "roles": ["engineer"],
        },
    )


async def post_all(
    clients: Sequence[httpx.AsyncClient], command: Command, names: Sequence[str]
) -> Batch:
    """Sends one POST per name, each client one request at a time."""
    batch = Batch()
    pending = iter(names)  # shared by the workers: asyncio runs one of them at a time

    async def worker(client: httpx.AsyncClient) -> None:
        for name in pending:
            started = time.perf_counter()
            try:
                response = await client.post(command.path, json=command.body(name))
            except httpx.HTTPError as error:
                batch.fail(error, f"{name}: {type(error).__name__}: {error}")
                continue
            batch.latencies_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                detail = f"{name}: HTTP {response.status_code} {response.text[:300]}"
                batch.fail(response.status_code, detail)
                continue
            position = response.headers.get("Training-Position", "")
            if position.isdigit():
                batch.position = max(batch.position, int(position))

    await asyncio.gather(*(worker(client) for client in clients))
    return batch


async def http_level(
    server: Server, command: Command, concurrency: int, requests: int, warmup: int, prefix: str
) -> Result:
    async with contextlib.AsyncExitStack() as stack:
        # One AsyncClient (one keep-alive connection) per simulated client: one AsyncClient
        # with a 64-connection pool burns a whole core on its own pool bookkeeping, and the
        # bench then measures httpx rather than the service.
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=server.base_url,
                    headers={"Authorization": f"Bearer {command.token()}"},
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                    timeout=HTTP_TIMEOUT,
                )
            )
            for _ in range(concurrency)
        ]
        # The warm-up opens every connection and fills the server's pools, so the measured
        # window holds steady-state requests only.
        warmup_names = [f"{prefix}w{i}" for i in range(max(warmup, concurrency))]
        warmed = await post_all(clients, command, warmup_names)
        if warmed.errors.total == len(warmup_names):
            # Timing a service that rejects every command would report its error path.
            msg = f"every warm-up command failed, e.g. {warmed.failures[0]}"
            raise RuntimeError(msg)
        watch = Stopwatch(server.meter)
        names = [f"{prefix}m{i}" for i in range(requests)]
        measured = await post_all(clients, command, names)
        window = watch.stop()
    for failure in measured.failures:
        progress(f"failed: {failure}")
    if warmed.errors:
        progress(f"warm-up failures: {warmed.errors.summary()}")
    return Result(
        label=command.label,
        clients=concurrency,
        count=requests - measured.errors.total,
        window=window,
        latencies_ms=measured.latencies_ms,
        errors=measured.errors,
        warmup_ok=len(warmup_names) - warmed.errors.total,
        warmup_errors=warmed.errors,
        store_events=warmed.position,
    )


def commands_for(server: Server, args: argparse.Namespace) -> list[Command]:
    operator = Operator(server)
    commands = []
    for path in args.paths:
        if path == "tenants":
            commands.append(tenants_command(operator.token))
        else:
            # One tenant with a seat for every registration of every level.
            seats = sum(args.requests) + len(args.clients) * max(args.warmup, *args.clients)
            commands.append(members_command(operator.tenant(seats + 100)))
    return commands


def measure_http(server: Server, args: argparse.Namespace) -> list[Result]:
    run_id = uuid.uuid4().hex[:8]
    results = []
    for command in commands_for(server, args):
        for index, (clients, requests) in enumerate(zip(args.clients, args.requests, strict=True)):
            progress(f"{command.label}: {requests} commands at {clients} concurrent clients")
            prefix = f"b{run_id}-{index}-"  # names stay unique when a level is repeated
            result = asyncio.run(
                http_level(server, command, clients, requests, args.warmup, prefix)
            )
            progress(
                f"  {result.errors.or_rate(f'{result.rate:.0f} commands/s')}, "
                f"p50 {format_ms(result.percentile(0.5))} ms, "
                f"p99 {format_ms(result.percentile(0.99))} ms, errors: {result.errors.summary()}"
            )
            results.append(result)
    return results


# --- 2. raw psycopg floor -------------------------------------------------------------------------


def typical_event(admin_url: str) -> tuple[str, int]:
    """The most common topic and the mean state size, so the floor writes look-alike rows."""
    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            "SELECT mode() WITHIN GROUP (ORDER BY topic), avg(octet_length(state))::int "
            "FROM training.training_events"
        ).fetchone()
    if not row or row[0] is None:
        return "bench:Event", 256
    return str(row[0]), int(row[1])


def measure_raw_inserts(database: Database, meter: CpuMeter, rows: int) -> Result:
    topic, state_size = typical_event(database.admin_url)
    state = os.urandom(state_size)
    # prepare_threshold=0 prepares the INSERT on first use; autocommit makes every INSERT its
    # own transaction and so its own WAL flush, like one command writing one event.
    with psycopg.connect(database.admin_url, autocommit=True, prepare_threshold=0) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
        for statement in SCRATCH_DDL:
            conn.execute(statement)
        try:
            for _ in range(min(100, rows)):  # warm-up: prepare, extend the new relation
                conn.execute(SCRATCH_INSERT, (uuid.uuid4(), 1, topic, state))
            latencies: list[float] = []
            watch = Stopwatch(meter)
            for _ in range(rows):
                began = time.perf_counter()
                conn.execute(SCRATCH_INSERT, (uuid.uuid4(), 1, topic, state))
                latencies.append((time.perf_counter() - began) * 1000)
            window = watch.stop()
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
    progress(f"raw: {rows / window.seconds:.0f} inserts/s ({state_size}-byte state)")
    return Result(
        label=f"raw psycopg INSERT, autocommit ({state_size} B state)",
        clients=1,
        count=rows,
        window=window,
        latencies_ms=latencies,
    )


# --- 3. projection catch-up -----------------------------------------------------------------------


def measure_rebuild(database: Database, meter: CpuMeter) -> Result:
    def show(done: int, total: int) -> None:
        print(f"\r[bench] tenancy rebuild {done}/{total}", end="", file=sys.stderr, flush=True)

    watch = Stopwatch(meter)  # the runner's threads run in this process: "bench" CPU
    total = rebuild(database, "tenancy", show)
    window = watch.stop()
    print(file=sys.stderr)
    return Result(label="projection rebuild `tenancy`", clients=1, count=total, window=window)


# --- facts and the table --------------------------------------------------------------------------


def event_store_summary(admin_url: str, commands: int) -> str:
    """What the HTTP phase wrote, by topic: shows how many events one command really is."""
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT topic, count(*) FROM training.training_events GROUP BY topic ORDER BY 2 DESC"
        ).fetchall()
    total = sum(count for _, count in rows)
    counts = ", ".join(f"{topic.rpartition(':')[2]} {count}" for topic, count in rows)
    return (
        f"event store after the HTTP phase: {total} events from {commands} successful "
        f"commands (warm-ups included), the operator client and the tenants' set-up: {counts}"
    )


def table(results: Sequence[Result]) -> list[str]:
    lines = [
        "| measurement | clients | store events | n | per second | p50 ms | p99 ms | errors "
        "| CPU % bench / serve / pg |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for result in results:
        store = "-" if result.store_events is None else str(result.store_events)
        rate = result.errors.or_rate(f"{result.rate:.0f}")
        lines.append(
            f"| {result.label} | {result.clients} | {store} | {result.count} | {rate} "
            f"| {format_ms(result.percentile(0.5))} | {format_ms(result.percentile(0.99))} "
            f"| {result.errors.summary()} | {cpu_shares(result.window)} |"
        )
    return lines


def floor_ratios(http: Sequence[Result], raw: Result) -> list[str]:
    lines = []
    for label in dict.fromkeys(result.label for result in http):
        # The first level with the fewest clients: the smallest store.
        lowest = min((r for r in http if r.label == label), key=lambda r: r.clients)
        if lowest.errors:
            lines.append(
                f"{label} at {lowest.clients} client(s) / raw inserts/s: not computed, "
                f"the level had errors ({lowest.errors.summary()})"
            )
            continue
        ratio = lowest.rate / raw.rate if raw.rate else 0.0
        lines.append(
            f"{label} at {lowest.clients} client(s) / raw inserts/s = "
            f"{lowest.rate:.0f} / {raw.rate:.0f} = {ratio:.3f}"
        )
    return lines


def record(results: Results, http: Sequence[Result], raw: Result, rebuilt: Result) -> None:
    """The issue's targets: the first 1-client and 16-client level of each command."""
    for result in http:
        results.errors.extend(result.warmup_errors)
    for label in dict.fromkeys(result.label for result in http):
        levels = [r for r in http if r.label == label]
        name = label.removeprefix("HTTP ")
        single = next((r for r in levels if r.clients == 1), None)
        if single is not None:
            results.add(
                Measure(
                    f"{name}, 1 client, against one autocommitted INSERT",
                    None if single.errors else single.rate,
                    "/s",
                    floor=raw.rate,
                    floor_name="raw INSERT/s",
                    target=TARGET_OF_FLOOR,
                    errors=single.errors,
                )
            )
        loaded = next((r for r in levels if r.clients == TARGET_CLIENTS), None)
        for other in levels:
            if other is not single and other is not loaded:
                results.errors.extend(other.errors)
        if loaded is not None:
            value = None if loaded.errors else loaded.rate
            results.add(
                Measure(
                    f"{name}, {TARGET_CLIENTS} clients",
                    value,
                    "/s",
                    target=TARGET_RATE,
                    errors=loaded.errors,
                )
            )
            results.add(
                Measure(
                    f"{name}, {TARGET_CLIENTS} clients, p99",
                    None if loaded.errors else loaded.percentile(0.99),
                    "ms",
                    target=TARGET_P99,
                )
            )
    results.add(
        Measure("projection rebuild `tenancy`", rebuilt.rate, "events/s", target=TARGET_REBUILD)
    )


def summary(http: Sequence[Result], raw: Result, rebuilt: Result, events: str) -> list[str]:
    failed = [result for result in http if result.errors]
    lines = [
        *table([*http, raw, rebuilt]),
        "",
        "store events: the newest Training-Position when the window opened, about the number "
        "of events in the store.",
        "CPU %: share of one core used during the measured window by the bench process "
        "(load generator; for the rebuild, the projection runner), training serve, PostgreSQL "
        f"(all backends); {os.cpu_count()} cores = {100 * (os.cpu_count() or 1)} %.",
        *floor_ratios(http, raw),
        events,
    ]
    if failed:
        lines.append(
            f"ERRORS: {len(failed)} of {len(http)} HTTP levels had failed requests; their rate "
            "column shows the failures instead of a rate."
        )
    return lines


# --- the run --------------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path, results: Results) -> str:
    progress("starting training serve --no-demo")
    with serving(workdir) as server:
        http = measure_http(server, args)
    progress("training serve stopped")
    # With serve stopped nothing else in this run uses the database: the floor and the
    # rebuild have it to themselves (apart from whatever else shares the machine).
    data_dir = workdir / "serve"
    meter = CpuMeter(data_dir / "pg")
    with database_for(Settings(data_dir=data_dir)) as database:
        commands = sum(result.count + result.warmup_ok for result in http)
        events = event_store_summary(database.admin_url, commands)
        raw = measure_raw_inserts(database, meter, args.raw_rows)
        rebuilt = measure_rebuild(database, meter)
        postgres = postgres_facts(database.admin_url)
    record(results, http, raw, rebuilt)
    body = summary(http, raw, rebuilt, events)
    return report("Foundation benchmark", body, postgres, results.load_before)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    # The last level repeats the first on a store that the other levels have filled, which
    # separates what concurrency costs from what a bigger event store costs.
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[1, 16, 64, 1],
        help="concurrent clients of each level, in order (default: 1 16 64 1)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        nargs="+",
        default=[2000, 6000, 6000, 2000],
        help="measured requests of each level, one per --clients value",
    )
    parser.add_argument(
        "--warmup", type=int, default=200, help="unmeasured requests before each level"
    )
    parser.add_argument(
        "--raw-rows", type=int, default=10000, help="rows for the raw psycopg INSERT floor"
    )
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=("tenants", "members"),
        default=["tenants"],
        help="the commands measured, each at every level: POST /v1/tenants (default), "
        "POST /v1/members",
    )
    args = parser.parse_args(argv)
    if len(args.clients) != len(args.requests):
        parser.error("--clients and --requests need the same number of values")
    if min(args.clients) < 1 or min(args.requests) < 1 or args.raw_rows < 1:
        parser.error("counts must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results("foundation")
    return run_benchmark(lambda workdir: run(args, workdir, results), results, "foundation")


if __name__ == "__main__":
    sys.exit(main())
