"""What a live ``training serve`` holds: PostgreSQL connections and threads (issue #14).

One run, on a fresh embedded PostgreSQL behind ``training serve``: once ``/readyz`` shows
every projection running in the process, the server's sessions are counted by role and by
what they last ran (a ``LISTEN`` session is a subscription waiting for notifications), and
serve's threads. The counts are sampled a few times, a second apart, and the
largest is reported (pools open connections on demand).

It prints a Markdown table on stdout. A measurement, not a test. Usage::

    .venv/bin/python scripts/bench/connections.py [--samples 5]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from harness import progress, running_server

from training.infra.database import database_for
from training.infra.settings import Settings

READY_TIMEOUT = 120.0


def wait_all_running(base_url: str) -> list[str]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        body = httpx.get(f"{base_url}/readyz", timeout=10.0).json()
        projections = body.get("projections", [])
        if projections and all(p.get("runner") == "here" for p in projections):
            return [str(p["name"]) for p in projections]
        time.sleep(0.5)
    raise RuntimeError("the projections were not all running within the time allowed")


def sessions(admin_url: str) -> Counter[str]:
    """The database's sessions (this one excepted), by role and by kind."""
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT usename, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    counts: Counter[str] = Counter()
    for user, query in rows:
        counts["total"] += 1
        counts[f"role {user}"] += 1
        if str(query or "").lstrip().upper().startswith("LISTEN"):
            counts["LISTEN sessions"] += 1
            # The channel a session listened on last.
            counts[f"LISTEN sessions: {str(query).split()[-1]}"] += 1
    return counts


def threads(pid: int) -> int:
    """Serve's threads (Python 3.11 does not name them for the kernel, so only a count)."""
    return sum(1 for _ in Path(f"/proc/{pid}/task").iterdir())


def serve_pid(data_dir: Path) -> int:
    """The ``training serve`` process using ``data_dir`` (the harness does not expose it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"serve" in command and f"TRAINING_DATA_DIR={data_dir}".encode() in environ:
            return int(entry.name)
    raise RuntimeError("no serve process found")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="training-bench-connections-"))
    workdir.chmod(0o755)
    data_dir = workdir / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    most: Counter[str] = Counter()
    thread_count = 0
    try:
        with (
            (workdir / "serve.out").open("wb") as out,
            (workdir / "serve.err").open("wb") as err,
            running_server(data_dir, out, err) as server,
        ):
            projections = wait_all_running(server.base_url)
            progress(f"running: {', '.join(projections)}")
            pid = serve_pid(data_dir)
            with database_for(Settings.from_env(dict(server.env))) as database:
                for _ in range(args.samples):
                    time.sleep(1.0)
                    for key, value in sessions(database.admin_url).items():
                        most[key] = max(most[key], value)
                    thread_count = max(thread_count, threads(pid))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    command = shlex.join(["scripts/bench/connections.py", *(argv or sys.argv[1:])])
    print(f"# A live serve's connections and threads ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n")
    print(f"Command: `.venv/bin/python {command}`; nproc {os.cpu_count()}")
    print(f"Load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f}\n")
    print("| what | most seen |")
    print("|---|--:|")
    for key in sorted(most):
        print(f"| PostgreSQL sessions: {key} | {most[key]} |")
    print(f"| serve threads | {thread_count} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
