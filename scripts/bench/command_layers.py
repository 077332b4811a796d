"""Where a single-event command's time goes, layer by layer, in serve and in PostgreSQL.

Runs ``POST /v1/tenants`` (the operator's) and ``POST /v1/members`` (a tenant's) at 1 and
at 16 clients against ``training serve`` on a throw-away embedded PostgreSQL, and meanwhile:

- samples serve's Python stacks with py-spy (CPU only: threads waiting on a socket or a lock
  are not sampled) and puts each sample in the innermost layer its stack passes through:
  our HTTP layer, the write path, the handlers, the event store library, the driver, the
  framework, the server, logging, token checks, serialisation;
- samples ``pg_stat_activity`` every few milliseconds (the embedded PostgreSQL has no
  ``pg_stat_statements``): each active backend of the service counts once per sample under
  what it waits for (``CPU`` when nothing) and under its statement, so the counts times the
  interval are the database's busy seconds per wait and per statement.

Then, with serve stopped, it measures the raw single-insert floor of the same database (one
``INSERT`` per transaction, as ``foundation.py``), so each rate has its ratio to the floor.

    PYTHONPATH=src .venv/bin/python scripts/bench/command_layers.py
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from foundation import Result, http_level, measure_raw_inserts, members_command, tenants_command
from harness import (
    CpuMeter,
    machine_facts,
    postgres_facts,
    progress,
    running_server,
)
from tenants import Operator

from training.infra.database import database_for
from training.infra.settings import Settings

PY_SPY = Path(sys.executable).parent / "py-spy"
SAMPLE_EVERY = 0.005  # seconds between pg_stat_activity samples

# The innermost of these a stack passes through owns the sample: (layer, path fragments).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("database driver (psycopg, its pool)", ("psycopg/", "psycopg_pool/")),
    ("event store library (eventsourcing)", ("eventsourcing/",)),
    ("serialisation (msgspec, json)", ("msgspec/", "json/")),
    ("token checks (authlib, joserfc, cryptography)", ("authlib/", "joserfc/", "cryptography/")),
    ("logging (structlog, logging)", ("structlog/", "logging/")),
    (
        "our write path (bus, group commit, recorder, repository)",
        (
            "training/core/bus",
            "training/core/group_commit",
            "training/core/repository",
            "training/core/loading",
            "training/core/application",
            "training/core/mapper",
            "training/core/turns",
            "training/core/retry",
            "training/infra/",
            "training/core/command_outcomes",
            "training/core/idempotency",
        ),
    ),
    (
        "our HTTP layer (middleware, auth, rate limits, answers)",
        (
            "training/core/http/",
            "training/app",
            "training/identity/http/",
        ),
    ),
    ("handlers and domain", ("/handlers", "/domain", "training/tenancy/", "training/people/")),
    ("training, other", ("training/",)),
    ("framework (litestar)", ("litestar/",)),
    ("HTTP server (uvicorn, h11)", ("uvicorn/", "h11/", "httptools/")),
    (
        "event loop and threads (asyncio, anyio, threading)",
        (
            "asyncio/",
            "anyio/",
            "concurrent/",
            "threading.py",
        ),
    ),
)
FRAME_FILE = re.compile(r"\(([^()]*?):\d+\)$")


# A sample whose innermost frame is one of these is a thread waiting, not working: py-spy
# counts a thread blocked in a C call it does not know as active.
WAITING = re.compile(
    r"^(Connection\.wait|EpollSelector\.select|Condition\.wait|_worker|Event\.wait|"
    r"Thread\._wait_for_tstate_lock|BaseSelectorEventLoop\.select) "
)
IDLE = "waiting (not CPU)"


def layer_of(stack: str) -> str:
    """The layer of one collapsed py-spy stack (root;...;leaf)."""
    frames = stack.split(";")
    if WAITING.match(frames[-1]):
        return IDLE
    for frame in reversed(frames):
        match = FRAME_FILE.search(frame)
        path = match.group(1) if match else frame
        for layer, fragments in LAYERS:
            if any(fragment in path for fragment in fragments):
                return layer
    return "other (standard library, C extensions' callers)"


def layers(raw_profile: Path) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    if not raw_profile.exists():
        return counts
    for line in raw_profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[layer_of(stack)] += int(count)
    return counts


@contextlib.contextmanager
def py_spy(pid: int, output: Path, seconds: int) -> Iterator[None]:
    """py-spy records ``pid`` (and its threads) for at most ``seconds`` while the block runs."""
    if not PY_SPY.exists():
        progress("py-spy is not in the virtual environment: no serve profile")
        yield
        return
    spy = subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            "-p",
            str(pid),
            "-d",
            str(seconds),
            "-r",
            "100",
            # Only the thread holding the interpreter lock: where serve's Python CPU goes.
            "--gil",
            "-f",
            "raw",
            "-o",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)  # attached before the load starts
        yield
    finally:
        spy.send_signal(2)  # SIGINT: py-spy writes what it has
        with contextlib.suppress(subprocess.TimeoutExpired):
            spy.wait(timeout=30)


NORMALISE = (
    (re.compile(r"\$\d+"), "?"),
    (re.compile(r"'[^']*'"), "'?'"),
    (re.compile(r"\s+"), " "),
)


def statement_class(query: str) -> str:
    text = query
    for pattern, replacement in NORMALISE:
        text = pattern.sub(replacement, text)
    return text.strip()[:70]


@dataclass
class DatabaseSampler:
    """Counts the service's active backends by wait event and by statement."""

    admin_url: str
    waits: collections.Counter[str] = field(default_factory=collections.Counter)
    statements: collections.Counter[str] = field(default_factory=collections.Counter)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), query "
                    "FROM pg_stat_activity WHERE state = 'active' "
                    "AND usename IN ('training_app', 'training_worker') "
                    "AND pid <> pg_backend_pid()"
                ).fetchall()
                self.samples += 1
                for wait, query in rows:
                    self.waits[str(wait)] += 1
                    self.statements[statement_class(str(query))] += 1
                time.sleep(SAMPLE_EVERY)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join(10)


@dataclass
class Profile:
    result: Result
    layers: collections.Counter[str]
    database: DatabaseSampler


def table_of(counts: collections.Counter[str], total: int, unit: str, top: int = 12) -> list[str]:
    lines = [f"| {unit} | samples | share |", "|---|--:|--:|"]
    for name, count in counts.most_common(top):
        lines.append(f"| {name} | {count} | {100 * count / total:.1f}% |")
    return lines


def run(args: argparse.Namespace, workdir: Path) -> str:
    data_dir = workdir / "data"
    load_before = os.getloadavg()
    profiles: list[Profile] = []
    with (workdir / "serve.log").open("wb") as log, running_server(data_dir, log, log) as server:
        operator = Operator(server)
        seats = args.requests * 5 * len(args.clients) + 1000
        commands = [tenants_command(operator.token), members_command(operator.tenant(seats))]
        serve_pid = server.meter.serve_pid
        assert serve_pid is not None
        with database_for(Settings(data_dir=data_dir)) as database:
            for command in commands:
                for clients in args.clients:
                    requests = args.requests * (4 if clients > 1 else 1)
                    prefix = f"l{clients}-{uuid.uuid4().hex[:6]}-"
                    progress(f"{command.label}: {requests} commands at {clients} clients")
                    sampler = DatabaseSampler(database.admin_url)
                    raw = workdir / f"{command.path.rsplit('/', 1)[-1]}-{clients}.txt"
                    with py_spy(serve_pid, raw, 600), sampler.sampling():
                        result = asyncio.run(
                            http_level(server, command, clients, requests, 50, prefix)
                        )
                    progress(f"  {result.errors.or_rate(f'{result.rate:.0f}/s')}")
                    profiles.append(Profile(result, layers(raw), sampler))
    with database_for(Settings(data_dir=data_dir)) as database:
        floor = measure_raw_inserts(database, CpuMeter(data_dir / "pg"), args.raw_rows)
        postgres = postgres_facts(database.admin_url)
    return report(profiles, floor, machine_facts(postgres, load_before))


def report(profiles: Sequence[Profile], floor: Result, machine: list[str]) -> str:
    lines = [
        "Command layers benchmark",
        f"Command: `{shlex.join([sys.executable, *sys.argv])}`",
        "",
        "| command | clients | rate/s | p50 ms | p99 ms | rate / raw floor "
        "| CPU % bench / serve / pg | errors |",
        "|---|--:|--:|--:|--:|--:|---|---|",
    ]
    for profile in profiles:
        result = profile.result
        cpu = " / ".join(f"{100 * share:.0f}" for share in result.window.cpu)
        rate = result.errors.or_rate(f"{result.rate:.0f}")
        lines.append(
            f"| {result.label} | {result.clients} | {rate} | {result.percentile(0.5):.1f} | "
            f"{result.percentile(0.99):.1f} | {result.rate / floor.rate:.3f} | {cpu} | "
            f"{result.errors.summary()} |"
        )
    lines += [
        "",
        f"Raw single-insert floor: {floor.rate:.0f} inserts/s (p50 {floor.percentile(0.5):.2f} ms)",
        "",
    ]
    for profile in profiles:
        result = profile.result
        lines += [f"### {result.label}, {result.clients} client(s)", ""]
        working = collections.Counter(
            {name: count for name, count in profile.layers.items() if name != IDLE}
        )
        total = sum(working.values())
        if total:
            lines += [
                f"serve's Python CPU by layer ({total} py-spy samples at 100 Hz of the thread "
                f"holding the interpreter lock; {profile.layers[IDLE]} more were waits):",
                "",
            ]
            lines += table_of(working, total, "layer")
            lines.append("")
        sampler = profile.database
        busy = sum(sampler.waits.values())
        lines += [
            f"PostgreSQL: {sampler.samples} samples of pg_stat_activity, mean "
            f"{busy / max(sampler.samples, 1):.2f} active backends of the service:",
            "",
        ]
        if busy:
            lines += table_of(sampler.waits, busy, "waiting for")
            lines.append("")
            lines += table_of(sampler.statements, busy, "statement", top=8)
            lines.append("")
    return "\n".join([*lines, *machine])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--requests", type=int, default=500, help="commands at 1 client (4 times more at 16)"
    )
    parser.add_argument("--raw-rows", type=int, default=5000)
    args = parser.parse_args(argv)
    # PostgreSQL runs as its own system user and must reach its data directory.
    workdir = Path(tempfile.mkdtemp(prefix="training-bench-", dir="/tmp"))
    workdir.chmod(0o755)
    print(run(args, workdir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
