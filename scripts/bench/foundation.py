"""Foundation benchmark (issue #2): what one event costs, end to end and in the database.

One run measures, on a fresh embedded PostgreSQL:

1. commands over HTTP (POST /v1/tenants, meant as the one-event command) at several client
   concurrencies, the first level repeated last on the store the others filled;
2. the raw psycopg floor: one autocommitted INSERT per row into a copy of the events table;
3. projection catch-up: rebuilding the ``tenancy`` read model from the events step 1 wrote.

It prints a Markdown table on stdout (progress goes to stderr). It is a measurement, not a
test: there is no pass or fail. Usage::

    .venv/bin/python scripts/bench/foundation.py [--clients 1 16 64 1] [--requests ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from harness import (
    HTTP_TIMEOUT,
    CpuMeter,
    Errors,
    Server,
    Stopwatch,
    Window,
    create_operator_client,
    fetch_token,
    machine_facts,
    postgres_facts,
    progress,
    running_server,
)

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
    store_events: int | None = None  # events in the store when the window opened

    @property
    def rate(self) -> float:
        return self.count / self.window.seconds if self.window.seconds else 0.0

    def percentile(self, fraction: float) -> float | None:
        """Nearest-rank percentile; None when the operation has no per-item latency."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        rank = max(1, round(fraction * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]


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


async def post_tenants(clients: Sequence[httpx.AsyncClient], slugs: Sequence[str]) -> Batch:
    """Sends one POST per slug, each client one request at a time."""
    batch = Batch()
    pending = iter(slugs)  # shared by the workers: asyncio runs one of them at a time

    async def worker(client: httpx.AsyncClient) -> None:
        for slug in pending:
            body = {"slug": slug, "name": f"Bench {slug}", "seat_limit": 10}
            started = time.perf_counter()
            try:
                response = await client.post("/v1/tenants", json=body)
            except httpx.HTTPError as error:
                batch.fail(error, f"{slug}: {type(error).__name__}: {error}")
                continue
            batch.latencies_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                detail = f"{slug}: HTTP {response.status_code} {response.text[:300]}"
                batch.fail(response.status_code, detail)
                continue
            position = response.headers.get("Training-Position", "")
            if position.isdigit():
                batch.position = max(batch.position, int(position))

    await asyncio.gather(*(worker(client) for client in clients))
    return batch


async def http_level(
    server: Server, token: str, concurrency: int, requests: int, warmup: int, prefix: str
) -> Result:
    async with contextlib.AsyncExitStack() as stack:
        # One AsyncClient (one keep-alive connection) per simulated client: one AsyncClient
        # with a 64-connection pool burns a whole core on its own pool bookkeeping, and the
        # bench then measures httpx rather than the service.
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=server.base_url,
                    headers={"Authorization": f"Bearer {token}"},
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                    timeout=HTTP_TIMEOUT,
                )
            )
            for _ in range(concurrency)
        ]
        # The warm-up opens every connection and fills the server's pools, so the measured
        # window holds steady-state requests only.
        warmup_slugs = [f"{prefix}w{i}" for i in range(max(warmup, concurrency))]
        warmed = await post_tenants(clients, warmup_slugs)
        if warmed.errors.total == len(warmup_slugs):
            # Timing a service that rejects every command would report its error path.
            msg = f"every warm-up command failed, e.g. {warmed.failures[0]}"
            raise RuntimeError(msg)
        watch = Stopwatch(server.meter)
        measured = await post_tenants(clients, [f"{prefix}m{i}" for i in range(requests)])
        window = watch.stop()
    for failure in measured.failures:
        progress(f"failed: {failure}")
    if warmed.errors:
        progress(f"warm-up failures: {warmed.errors.summary()}")
    return Result(
        label="HTTP POST /v1/tenants",
        clients=concurrency,
        count=requests - measured.errors.total,
        window=window,
        latencies_ms=measured.latencies_ms,
        errors=measured.errors,
        warmup_ok=len(warmup_slugs) - warmed.errors.total,
        store_events=warmed.position,
    )


def measure_http(
    server: Server, credentials: tuple[str, str], args: argparse.Namespace
) -> list[Result]:
    run_id = uuid.uuid4().hex[:8]
    results = []
    for index, (clients, requests) in enumerate(zip(args.clients, args.requests, strict=True)):
        # A token per level: a long custom run must not outlive the 900 s token lifetime.
        token = fetch_token(server, credentials)
        progress(f"HTTP: {requests} commands at {clients} concurrent clients")
        prefix = f"b{run_id}-{index}-"  # slugs stay unique when a level is repeated
        result = asyncio.run(http_level(server, token, clients, requests, args.warmup, prefix))
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
    per_command = (total - 1) / commands if commands else 0.0  # less the operator client
    return (
        f"event store after the HTTP phase: {total} events from {commands} successful "
        f"POST /v1/tenants (warm-ups included) and 1 operator client, "
        f"{per_command:.2f} events per command: {counts}"
    )


def format_ms(value: float | None) -> str:
    if value is None:
        return "-"
    # Sub-millisecond figures (the raw floor) need more than one decimal to say anything.
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def table(results: Sequence[Result]) -> list[str]:
    lines = [
        "| measurement | clients | store events | n | per second | p50 ms | p99 ms | errors "
        "| CPU % bench / serve / pg |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for result in results:
        cpu = " / ".join(f"{share * 100:.0f}" for share in result.window.cpu)
        store = "-" if result.store_events is None else str(result.store_events)
        rate = result.errors.or_rate(f"{result.rate:.0f}")
        lines.append(
            f"| {result.label} | {result.clients} | {store} | {result.count} | {rate} "
            f"| {format_ms(result.percentile(0.5))} | {format_ms(result.percentile(0.99))} "
            f"| {result.errors.summary()} | {cpu} |"
        )
    return lines


def report(
    command: str,
    facts: Sequence[str],
    http: Sequence[Result],
    raw: Result,
    rebuilt: Result,
    events: str,
) -> str:
    lowest = min(http, key=lambda result: result.clients)  # the first such level: a small store
    ratio = lowest.rate / raw.rate if raw.rate else 0.0
    if lowest.errors:
        ratio_line = (
            f"HTTP commands/s at {lowest.clients} client(s) / raw inserts/s: not computed, "
            f"the level had errors ({lowest.errors.summary()})"
        )
    else:
        ratio_line = (
            f"HTTP commands/s at {lowest.clients} client(s) / raw inserts/s = "
            f"{lowest.rate:.0f} / {raw.rate:.0f} = {ratio:.3f}"
        )
    failed = [result for result in http if result.errors]
    lines = [
        f"command: {command}",
        f"date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        *facts,
        "",
        *table([*http, raw, rebuilt]),
        "",
        "store events: the newest Training-Position when the window opened, about the number "
        "of events in the store.",
        "CPU %: share of one core used during the measured window by the bench process "
        "(load generator; for the rebuild, the projection runner), training serve, PostgreSQL "
        f"(all backends); {os.cpu_count()} cores = {100 * (os.cpu_count() or 1)} %.",
        ratio_line,
        events,
    ]
    if failed:
        lines.append(
            f"ERRORS: {len(failed)} of {len(http)} HTTP levels had failed requests; their rate "
            "column shows the failures instead of a rate."
        )
    return "\n".join(lines)


# --- the run --------------------------------------------------------------------------------------


def stop_orphaned_postgres(pg_dir: Path) -> None:
    """Last resort after a failed run: stop a postmaster that serve left behind."""
    pid_file = pg_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        deadline = time.monotonic() + 30
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)


def show_server_output(workdir: Path) -> None:
    """Shows what serve logged: JSON lines on stdout (warnings and worse at this log level)
    and, on stderr, the last traceback if it crashed."""
    logged = (workdir / "serve.stdout").read_text(errors="replace").splitlines()
    if logged:
        progress(f"training serve logged {len(logged)} lines; the last 5, cut to 400 chars:")
        for line in logged[-5:]:
            print(f"    {line[:400]}", file=sys.stderr)
    stderr = (workdir / "serve.stderr").read_text(errors="replace")
    if "Traceback" in stderr:
        crash = stderr[stderr.rindex("Traceback") :].splitlines()
        progress("training serve printed a traceback on stderr (last 30 lines):")
        for line in crash[-30:]:
            print(f"    {line}", file=sys.stderr)


def run(args: argparse.Namespace, workdir: Path) -> str:
    data_dir = workdir / "data"
    load_before = os.getloadavg()
    with (
        (workdir / "serve.stdout").open("wb") as stdout,
        (workdir / "serve.stderr").open("wb") as stderr,
    ):
        progress(f"starting training serve --no-demo (data in {data_dir})")
        try:
            with running_server(data_dir, stdout, stderr) as server:
                credentials = create_operator_client(server)
                http = measure_http(server, credentials, args)
            progress("training serve stopped")
        finally:
            show_server_output(workdir)
    # With serve stopped nothing else in this run uses the database: the floor and the
    # rebuild have it to themselves (apart from whatever else shares the machine).
    meter = CpuMeter(data_dir / "pg")
    with database_for(Settings(data_dir=data_dir)) as database:
        commands = sum(result.count + result.warmup_ok for result in http)
        events = event_store_summary(database.admin_url, commands)
        raw = measure_raw_inserts(database, meter, args.raw_rows)
        rebuilt = measure_rebuild(database, meter)
        postgres = postgres_facts(database.admin_url)
    command = shlex.join([sys.executable, *sys.argv])
    return report(command, machine_facts(postgres, load_before), http, raw, rebuilt, events)


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
    args = parser.parse_args(argv)
    if len(args.clients) != len(args.requests):
        parser.error("--clients and --requests need the same number of values")
    if min(args.clients) < 1 or min(args.requests) < 1 or args.raw_rows < 1:
        parser.error("counts must be positive")
    return args


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # asyncio.run turns the first Ctrl-C into a cancellation of its task, and here the
    # cancellation got lost in httpx's transport: the level ran on to the end. With a handler
    # of our own, asyncio.run leaves SIGINT alone and Ctrl-C raises at once.
    signal.signal(signal.SIGINT, interrupt)
    # mkdtemp makes a 0700 directory, but PostgreSQL runs as the pgserver system user and
    # has to reach its data directory inside it.
    workdir = Path(tempfile.mkdtemp(prefix="training-bench-", dir="/tmp"))
    workdir.chmod(0o755)
    try:
        print(run(args, workdir))
    except RuntimeError as error:
        progress(f"stopped: {error}")
        return 1
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    finally:
        stop_orphaned_postgres(workdir / "data" / "pg")
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
