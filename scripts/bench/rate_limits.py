"""What the shared rate limits cost a request (issue #14, ADR 0035).

Three ``training serve`` processes, each on a fresh embedded PostgreSQL, differ only in the
per-client limit (``TRAINING_RATE_LIMIT``), chosen so that the measuring client is never
refused and each process draws from its shared bucket at a different pace:

- ``lifted``: ``1000000/60``, what the other benchmarks run with: a block is 62,500 tokens,
  so the client's first request draws and every other one is decided from memory (the
  cost of the limiter itself, about what the per-process buckets cost before ADR 0035);
- ``shared``: ``1200/1``: blocks of 75 like the service's default ``1200/60``, so one draw
  every 75 requests, with the refill fast enough that the client is never refused;
- ``every request``: ``15/0.01``: blocks of 1, so each request draws: what a limiter that
  asks the database on every request would cost;
- ``lifted again``: a second server like the first, to show how much two servers of the same
  code differ on this machine (the noise the other ratios must be read against).

Each round sends ``--requests`` ``GET /v1/tenants`` with one operator token over
``--connections`` keep-alive connections (closed loop, a thread each, HTTP written by hand so
the load generator stays cheap) to each server in turn, in a rotating order, so they all see
the same noisy neighbours. Prints a Markdown table: requests/s (median of the rounds), the
ratio to ``lifted`` in the same rounds (median), the draws the database counted (inserts and
updates of ``training.rate_limit_buckets``) per 1,000 requests, the CPU serve and PostgreSQL
spent per request, and who used the CPUs.

Then, in this process, ``--draws`` draws in a row for one caller on the first server's
database, one statement each: on an autocommit connection of the draws' own pool (what the
service does) and in a transaction on a pool configured like the read store's (checked on
lending), with the wall time and this process's CPU per draw. A measurement, not a test: the
exit code is 0 either way. Usage::

    .venv/bin/python scripts/bench/rate_limits.py [--rounds 7] [--requests 3000]
        [--connections 4] [--draws 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from harness import (
    Errors,
    RawConnection,
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
from psycopg_pool import AsyncConnectionPool

from training.core.http.ratelimit import RateLimit
from training.core.rate_limit_store import SharedBucketStore, draw_pool
from training.infra.database import database_for
from training.infra.settings import Settings

READ_PATH = "/v1/tenants"
WARMUP_REQUESTS = 300
SCENARIOS: dict[str, str] = {
    "lifted": "1000000/60",
    "shared": "1200/1",
    "every request": "15/0.01",
    "lifted again": "1000000/60",
}
# The draws alone: a limit that never runs dry, a token per draw.
DRAW_LIMIT = RateLimit(1_000_000, 1.0)
DRAW_WARMUP = 200


@dataclass
class Target:
    """One server under test and the request it is sent."""

    name: str
    server: Server
    request: bytes
    connections: int
    windows: list[Window] = field(default_factory=list)
    errors: Errors = field(default_factory=Errors)
    sent: int = 0
    draws: int = 0

    def send(self, count: int) -> Window:
        """``count`` requests spread over new keep-alive connections (uvicorn closes idle
        ones after 5 s, which is less than the other servers' turns), each answer awaited."""
        connections = [RawConnection(self.server.base_url) for _ in range(self.connections)]
        try:
            return self._send(count, connections)
        finally:
            for connection in connections:
                connection.close()

    def _send(self, count: int, connections: list[RawConnection]) -> Window:
        shares = [count // len(connections)] * len(connections)
        shares[0] += count - sum(shares)
        failures: list[Errors] = [Errors() for _ in connections]

        def one(connection: RawConnection, share: int, errors: Errors) -> None:
            for _ in range(share):
                try:
                    status = connection.exchange(self.request)
                except OSError as error:
                    errors.add(error)
                    return
                if status != 200:
                    errors.add(status)

        watch = Stopwatch(self.server.meter)
        threads = [
            threading.Thread(target=one, args=job)
            for job in zip(connections, shares, failures, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        window = watch.stop()
        for errors in failures:
            self.errors.extend(errors)
        return window


# An idle backend reports what it counted to the statistics within 10 s.
STATISTICS_DELAY = 11.0


def bucket_writes(server: Server) -> int:
    """Draws so far: the inserts and updates PostgreSQL counted on the shared buckets (wait
    ``STATISTICS_DELAY`` after the last request first)."""
    with (
        database_for(Settings.from_env(dict(server.env))) as database,
        psycopg.connect(database.admin_url) as conn,
    ):
        row = conn.execute(
            "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables "
            "WHERE schemaname = 'training' AND relname = 'rate_limit_buckets'"
        ).fetchone()
    return int(row[0]) if row else 0


async def time_draws(store: SharedBucketStore, count: int) -> tuple[float, float]:
    """Milliseconds of wall time and of this process's CPU per draw, ``count`` in a row."""
    await store.open()
    try:
        for _ in range(DRAW_WARMUP):
            await store.draw("bench", "caller", DRAW_LIMIT, 1)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(count):
            await store.draw("bench", "caller", DRAW_LIMIT, 1)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await store.close()
    if store.failures:
        raise RuntimeError(f"{store.failures} draws failed")
    return 1000 * wall / count, 1000 * cpu / count


def draw_costs(server: Server, count: int) -> list[str]:
    with database_for(Settings.from_env(dict(server.env))) as database:
        own = SharedBucketStore(draw_pool(database.app_url), b"bench" * 8)
        shared = SharedBucketStore(
            AsyncConnectionPool(
                database.app_url,
                min_size=1,
                max_size=2,
                open=False,
                check=AsyncConnectionPool.check_connection,
            ),
            b"bench" * 8,
        )
        rows = [
            ("autocommit, the draws' own pool (the service)", asyncio.run(time_draws(own, count))),
            (
                "transaction on a checked pool (like the read store's)",
                asyncio.run(time_draws(shared, count)),
            ),
        ]
    return [
        f"{count} draws in a row for one caller, one statement each:",
        "",
        "| connection | wall ms per draw | CPU ms per draw (this process) |",
        "|---|--:|--:|",
        *[f"| {name} | {wall:.3f} | {cpu:.3f} |" for name, (wall, cpu) in rows],
    ]


def start(stack: ExitStack, name: str, limit: str, workdir: Path, connections: int) -> Target:
    slug = name.replace(" ", "-")
    data_dir = workdir / slug
    data_dir.mkdir()
    log = stack.enter_context((workdir / f"{slug}-serve.log").open("wb"))
    env = {"TRAINING_RATE_LIMIT": limit, "TRAINING_RENDER_PROCESSES": "1"}
    server = stack.enter_context(running_server(data_dir, log, log, env=env))
    progress(f"{name}: serve is up at {server.base_url} with TRAINING_RATE_LIMIT={limit}")
    token = fetch_token(server, create_operator_client(server))
    host = server.base_url.removeprefix("http://")
    request = (
        f"GET {READ_PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    return Target(name, server, request, connections)


def run(args: argparse.Namespace, workdir: Path) -> str:
    load_before = os.getloadavg()
    with ExitStack() as stack:
        targets = [
            start(stack, name, limit, workdir, args.connections)
            for name, limit in SCENARIOS.items()
        ]
        for target in targets:
            target.send(WARMUP_REQUESTS)
            target.errors = Errors()
        time.sleep(STATISTICS_DELAY)
        for target in targets:
            target.draws = -bucket_writes(target.server)
        for number in range(args.rounds):
            progress(f"round {number + 1} of {args.rounds}")
            order = targets[number % len(targets) :] + targets[: number % len(targets)]
            for target in order:
                target.windows.append(target.send(args.requests))
                target.sent += args.requests
        time.sleep(STATISTICS_DELAY)
        for target in targets:
            target.draws += bucket_writes(target.server)
        progress(f"{args.draws} draws in a row, two ways")
        draws = draw_costs(targets[0].server, args.draws)
        with database_for(Settings.from_env(dict(targets[0].server.env))) as database:
            postgres = postgres_facts(database.admin_url)
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    lines = [
        f"Rate limits shared through the database, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"Command: `{command}`",
        f"{args.rounds} rounds of {args.requests} GET {READ_PATH} per server with one "
        f"operator token over {args.connections} keep-alive connections "
        f"({WARMUP_REQUESTS} warm-up requests first)",
        "",
        *table(targets, args.requests),
        "",
        *draws,
        "",
        *[f"- {fact}" for fact in machine_facts(postgres, load_before)],
        f"- nproc: {len(os.sched_getaffinity(0))}",
    ]
    return "\n".join(lines)


def table(targets: list[Target], requests: int) -> list[str]:
    lifted = targets[0]
    lines = [
        "| limit | TRAINING_RATE_LIMIT | requests/s (median) | vs lifted (median of rounds) "
        "| draws per 1,000 requests | CPU ms per request: serve / pg | errors "
        "| CPU % bench / serve / pg |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for target in targets:
        rates = [requests / window.seconds for window in target.windows]
        ratios = [
            mine.seconds and theirs.seconds / mine.seconds
            for mine, theirs in zip(target.windows, lifted.windows, strict=True)
        ]
        seconds = sum(window.seconds for window in target.windows)
        used = [sum(w.cpu[n] * w.seconds for w in target.windows) for n in range(3)]
        lines.append(
            f"| {target.name} | `{SCENARIOS[target.name]}` "
            f"| {target.errors.or_rate(f'{statistics.median(rates):,.0f}')} "
            f"| {statistics.median(ratios):.2f} "
            f"| {1000 * target.draws / target.sent:.1f} "
            f"| {1000 * used[1] / target.sent:.2f} / {1000 * used[2] / target.sent:.2f} "
            f"| {target.errors.summary()} "
            f"| {100 * used[0] / seconds:.0f} / {100 * used[1] / seconds:.0f} "
            f"/ {100 * used[2] / seconds:.0f} |"
        )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds over the three servers")
    parser.add_argument("--requests", type=int, default=3000, help="requests per server a round")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections")
    parser.add_argument("--draws", type=int, default=2000, help="draws timed in this process")
    args = parser.parse_args(argv)
    if min(args.rounds, args.requests, args.connections, args.draws) < 1:
        parser.error("--rounds, --requests, --connections and --draws are at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="training-bench-rate-limits-"))
    workdir.chmod(0o755)
    try:
        print(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
