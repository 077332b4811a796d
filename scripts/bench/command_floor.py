"""What a one-event command cannot cost less than on this machine: the CPU floor of item 2.

Issue #14 asks for 1,500 one-event commands a second at 16 clients on two cores. A command
over HTTP is at least an HTTP exchange that touches nothing (the service's own stack:
uvicorn, Litestar, its middleware) plus one committed INSERT (PostgreSQL's own work, and the
driver's on the client side). This benchmark measures both at the same concurrency, on a
fresh embedded PostgreSQL behind ``training serve``:

1. ``GET /healthz`` (no database, no token, no rate limit) from ``--clients`` threads, each
   on a hand-written keep-alive connection (``harness.RawConnection``): requests/s and the
   CPU each party used per request (this process, serve, PostgreSQL);
2. one autocommitted INSERT per row into a copy of the events table from ``--clients``
   threads, each with its own connection (``foundation.py``'s floor, at the same
   concurrency): inserts/s and CPU per insert;
3. ``POST /v1/tenants`` at the same concurrency through ``foundation.http_level``: the real
   command, its rate and CPU per command.

The floor of a command's CPU is the exchange's serve CPU plus the insert's PostgreSQL CPU
(the load generator's CPU is left out: in production it is on other machines), so the most
commands a second the machine's cores can carry, whatever the code does between the two, is
``cores / floor``. A measurement, not a test. Usage::

    PYTHONPATH=src:scripts/bench .venv/bin/python scripts/bench/command_floor.py \
        [--clients 16] [--requests 20000] [--rows 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from foundation import SCRATCH_DDL, SCRATCH_INSERT, SCRATCH_TABLE, http_level, tenants_command
from harness import (
    HTTP_TIMEOUT,
    CpuMeter,
    Measure,
    RawConnection,
    Results,
    Server,
    Stopwatch,
    Window,
    progress,
    report,
    run_benchmark,
    server_postgres_facts,
    serving,
)
from tenants import Operator

from training.infra.database import database_for
from training.infra.settings import Settings

TARGET_RATE = 1500  # issue #14, item 2: one-event commands a second at 16 clients


@dataclass(frozen=True)
class Level:
    """``count`` operations in ``window``; CPU per operation in ms, by party."""

    label: str
    count: int
    window: Window

    @property
    def rate(self) -> float:
        return self.count / self.window.seconds

    def cpu_ms(self, party: int) -> float:
        """CPU ms per operation of this process (0), serve (1) or PostgreSQL (2)."""
        return self.window.cpu[party] * self.window.seconds / self.count * 1000


def in_threads(clients: int, each: int, work: Callable[[int], Callable[[], None]]) -> None:
    """``clients`` threads, each running its own ``work(index)`` function ``each`` times."""
    barrier = threading.Barrier(clients)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        step = work(index)
        barrier.wait()
        try:
            for _ in range(each):
                step()
        except BaseException as error:  # reported once every thread has stopped
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} clients failed, e.g. {failures[0]!r}")


def measure_exchanges(
    server: Server, clients: int, requests: int, path: str = "/healthz", token: str = ""
) -> Level:
    connections = [RawConnection(server.base_url) for _ in range(clients)]
    authorization = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {connections[0].host}\r\n{authorization}\r\n".encode()

    def exchange(index: int) -> Callable[[], None]:
        def step() -> None:
            if connections[index].exchange(request) != 200:
                raise RuntimeError(f"GET {path} did not answer 200")

        return step

    try:
        in_threads(clients, 200, exchange)  # warm-up: every connection open and served
        watch = Stopwatch(server.meter)
        in_threads(clients, requests // clients, exchange)
        window = watch.stop()
    finally:
        for connection in connections:
            connection.close()
    label = "GET /healthz (no database)" if not token else f"GET {path} (a token, one read)"
    return Level(label, requests // clients * clients, window)


def measure_authenticated_read(server: Server, clients: int, requests: int) -> Level:
    """The least an API client's request costs: its token checked, its rate limit counted
    and one row read under its scope (the operator reading one tenant)."""
    operator = Operator(server)
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as http:
        tenant_id = operator.register_tenant(http, f"floor-{uuid.uuid4().hex[:8]}", 10)
    path = f"/v1/tenants/{tenant_id}"
    return measure_exchanges(server, clients, requests, path, operator.token())


def measure_inserts(admin_url: str, meter: CpuMeter, clients: int, rows: int) -> Level:
    state = os.urandom(400)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
        for statement in SCRATCH_DDL:
            conn.execute(statement)
    connections = [
        psycopg.connect(admin_url, autocommit=True, prepare_threshold=0) for _ in range(clients)
    ]

    def insert(index: int) -> Callable[[], None]:
        def step() -> None:
            connections[index].execute(SCRATCH_INSERT, (uuid.uuid4(), 1, "bench:Event", state))

        return step

    try:
        in_threads(clients, 100, insert)
        watch = Stopwatch(meter)
        in_threads(clients, rows // clients, insert)
        window = watch.stop()
    finally:
        for connection in connections:
            connection.close()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
    return Level("one autocommitted INSERT (400 B state)", rows // clients * clients, window)


def measure_command(server: Server, clients: int, requests: int) -> Level:
    command = tenants_command(Operator(server).token)
    result = asyncio.run(http_level(server, command, clients, requests, 200, "floor-"))
    if result.errors:
        raise RuntimeError(f"POST /v1/tenants failed: {result.errors.summary()}")
    return Level("POST /v1/tenants (the command)", result.count, result.window)


def table(levels: Sequence[Level], clients: int) -> list[str]:
    lines = [
        f"| at {clients} clients | per s | CPU ms per operation: bench / serve / pg |",
        "|---|--:|---|",
    ]
    for level in levels:
        cpu = " / ".join(f"{level.cpu_ms(party):.3f}" for party in range(3))
        lines.append(f"| {level.label} | {level.rate:,.0f} | {cpu} |")
    return lines


def run(args: argparse.Namespace, workdir: Path, results: Results) -> str:
    with serving(workdir) as server:
        progress(f"GET /healthz at {args.clients} clients")
        exchanges = measure_exchanges(server, args.clients, args.requests)
        progress(f"GET /v1/tenants/{{id}} with a token at {args.clients} clients")
        read = measure_authenticated_read(server, args.clients, args.requests // 4)
        progress(f"POST /v1/tenants at {args.clients} clients")
        command = measure_command(server, args.clients, args.commands)
        progress(f"raw INSERTs at {args.clients} clients")
        settings = Settings.from_env(dict(server.env))
        with database_for(settings) as database:
            inserts = measure_inserts(database.admin_url, server.meter, args.clients, args.rows)
        postgres = server_postgres_facts(server)
    floor_ms = exchanges.cpu_ms(1) + inserts.cpu_ms(2)
    cores = os.cpu_count() or 1
    ceiling = cores * 1000 / floor_ms
    results.add(Measure("CPU floor of a one-event command (serve + pg)", floor_ms, "ms"))
    results.add(
        Measure(f"most one-event commands/s {cores} cores carry at that floor", ceiling, "/s")
    )
    results.add(
        Measure(
            "GET /v1/tenants/{id} with a token, CPU serve + pg per request",
            read.cpu_ms(1) + read.cpu_ms(2),
            "ms",
            floor=floor_ms,
            floor_name="the floor",
        )
    )
    results.add(
        Measure(
            "POST /v1/tenants, CPU serve + pg per command",
            command.cpu_ms(1) + command.cpu_ms(2),
            "ms",
            floor=floor_ms,
            floor_name="the floor",
        )
    )
    body = [
        *table([exchanges, read, inserts, command], args.clients),
        "",
        f"Floor of a command's CPU: {exchanges.cpu_ms(1):.3f} ms of serve for the exchange + "
        f"{inserts.cpu_ms(2):.3f} ms of PostgreSQL for the insert = {floor_ms:.3f} ms; "
        f"{cores} cores carry at most {ceiling:,.0f} such commands a second "
        f"(issue #14: {TARGET_RATE:,}), before the load generator's own CPU.",
        f"The command itself: {command.cpu_ms(1) + command.cpu_ms(2):.3f} ms of serve and "
        f"PostgreSQL, {(command.cpu_ms(1) + command.cpu_ms(2)) / floor_ms:.1f} times the floor.",
    ]
    return report("Command floor benchmark", body, postgres, results.load_before)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20_000, help="GET /healthz in all")
    parser.add_argument("--rows", type=int, default=20_000, help="raw INSERTs in all")
    parser.add_argument("--commands", type=int, default=3_000, help="POST /v1/tenants")
    args = parser.parse_args(argv)
    if min(args.clients, args.requests, args.rows, args.commands) < 1:
        parser.error("every count is at least 1")
    results = Results("command_floor")
    return run_benchmark(lambda workdir: run(args, workdir, results), results, "floor")


if __name__ == "__main__":
    raise SystemExit(main())
