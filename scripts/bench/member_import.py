"""Member import benchmark (issue #3): members per second for a 10,000-row CSV import.

One run, on a fresh embedded PostgreSQL behind ``training serve``:

1. a tenant with room for the file and an integration client with ``members:write``;
2. a CSV of N members (one manager per ten engineers, so reporting lines are resolved);
3. the import job submitted over HTTP and polled until it completes: members/s is rows
   created over the wall time from the upload to the job's completion; ``/healthz`` is
   probed meanwhile to show the service stays responsive;
4. ``/readyz`` polled from the moment the job was seen completed until every view has no
   event left to apply (the job is polled every 0.2 s, so its end is known to within that);
5. the same file imported again, where every row is checked and found unchanged.

A failed ``/healthz`` probe or job poll is counted by status (or exception class) in the
table's last column; a refused upload stops the run.

It prints a Markdown table on stdout. A measurement, not a test. Usage::

    .venv/bin/python scripts/bench/member_import.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from harness import (
    HTTP_TIMEOUT,
    Errors,
    Server,
    Stopwatch,
    Window,
    create_operator_client,
    fetch_token,
    machine_facts,
    postgres_facts,
    probe_health,
    progress,
    running_server,
)

from training.infra.database import database_for
from training.infra.settings import Settings

POLL_SECONDS = 0.2
PROBE_SECONDS = 0.05
READYZ_POLL_SECONDS = 0.05


def members_csv(rows: int) -> bytes:
    lines = ["external_id,display_name,email,roles,manager_external_id,team,job_title"]
    for index in range(rows):
        manager = "" if index % 10 == 0 else f"M{index - index % 10:06d}"
        roles = "manager;engineer" if index % 10 == 0 else "engineer"
        team = f"Team {index // 100:03d}"
        lines.append(
            f"M{index:06d},Person {index},person{index}@bench.example,{roles},{manager},{team},"
            "Engineer"
        )
    return ("\n".join(lines) + "\n").encode()


@dataclass
class ImportRun:
    label: str
    rows: int
    window: Window
    job: dict[str, object]
    health_ms: list[float]
    errors: Errors  # failed probes and polls during the import

    @property
    def rate(self) -> float:
        return self.rows / self.window.seconds if self.window.seconds else 0.0

    def health_percentile(self, fraction: float) -> float | None:
        if not self.health_ms:
            return None
        ordered = sorted(self.health_ms)
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def run_import(server: Server, token: str, content: bytes, label: str) -> ImportRun:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    samples: list[float] = []
    errors = Errors()
    stop = asyncio.Event()
    probe = asyncio.create_task(probe_health(server.base_url, stop, samples, errors, PROBE_SECONDS))
    watch = Stopwatch(server.meter)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HTTP_TIMEOUT) as client:
        accepted = await client.post("/v1/member-imports", content=content, headers=headers)
        accepted.raise_for_status()
        url = accepted.headers["location"]
        while True:
            try:
                polled = await client.get(url, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as error:
                polled = None
                errors.add(error)
            if polled is not None and polled.status_code != 200:
                errors.add(polled.status_code)
            elif polled is not None:
                job = polled.json()
                if job["status"] in ("completed", "failed"):
                    break
                progress(f"{label}: {job['processed_rows']}/{job['total_rows'] or '?'} rows")
            await asyncio.sleep(POLL_SECONDS)
    window = watch.stop()
    stop.set()
    await probe
    if job["status"] != "completed" or job["failed"]:
        raise RuntimeError(f"the import did not complete cleanly: {job}")
    rows = int(job["total_rows"])
    return ImportRun(label, rows, window, job, samples, errors)


@dataclass(frozen=True)
class CatchUp:
    """From the moment the import was seen completed until ``/readyz`` showed every view with
    no event left to apply."""

    seconds: float
    behind_at_end: dict[str, int]  # the views with events left when the import completed
    first_answer: float  # seconds until /readyz first answered (the measure's resolution)


async def views_caught_up(server: Server, timeout: float = 300.0) -> CatchUp:
    started = time.perf_counter()
    behind_at_end: dict[str, int] | None = None
    first_answer = 0.0
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HTTP_TIMEOUT) as client:
        while time.perf_counter() - started < timeout:
            body = (await client.get("/readyz")).json()
            behind = {p["name"]: int(p["lag"]) for p in body["projections"] if p["lag"]}
            if behind_at_end is None:
                behind_at_end, first_answer = behind, time.perf_counter() - started
            if not behind:
                return CatchUp(time.perf_counter() - started, behind_at_end, first_answer)
            await asyncio.sleep(READYZ_POLL_SECONDS)
    raise RuntimeError(f"the views had not caught up {timeout:.0f} s after the import")


def setup_tenant(server: Server, operator_token: str, seats: int) -> str:
    auth = {"Authorization": f"Bearer {operator_token}"}
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as client:
        tenant = client.post(
            "/v1/tenants",
            json={"slug": f"bench-{uuid.uuid4().hex[:8]}", "name": "Bench", "seat_limit": seats},
            headers=auth,
        )
        tenant.raise_for_status()
        created = client.post(
            f"/v1/tenants/{tenant.json()['tenant_id']}/clients",
            json={"name": "HRIS", "scopes": ["members:write", "members:read"]},
            headers=auth,
        )
        created.raise_for_status()
        credentials = created.json()
    return fetch_token(server, (credentials["client_id"], credentials["client_secret"]))


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(runs: Sequence[ImportRun]) -> list[str]:
    lines = [
        "| import | rows | wall s | rows/s | created | unchanged | /healthz p50 ms | p99 ms "
        "| CPU % bench / serve / pg | failed probes and polls |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|--:|",
    ]
    for run in runs:
        cpu = " / ".join(f"{share * 100:.0f}" for share in run.window.cpu)
        lines.append(
            f"| {run.label} | {run.rows:,} | {run.window.seconds:.2f} | {run.rate:,.0f} "
            f"| {run.job['created']} | {run.job['unchanged']} "
            f"| {fmt(run.health_percentile(0.5))} | {fmt(run.health_percentile(0.99))} | {cpu} "
            f"| {run.errors.summary()} |"
        )
    return lines


def run(rows: int, workdir: Path) -> str:
    load_before = os.getloadavg()
    data_dir = workdir / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    with (
        (workdir / "serve.out").open("wb") as out,
        (workdir / "serve.err").open("wb") as err,
        running_server(data_dir, out, err) as server,
    ):
        operator_token = fetch_token(server, create_operator_client(server))
        token = setup_tenant(server, operator_token, seats=rows + 10)
        content = members_csv(rows)
        progress(f"importing {rows} members ({len(content) / 1024:.0f} KiB CSV)")
        first = asyncio.run(run_import(server, token, content, "first import (creates)"))
        caught_up = asyncio.run(views_caught_up(server))
        second = asyncio.run(run_import(server, token, content, "same file again (unchanged)"))
        with database_for(Settings.from_env(dict(server.env))) as database:
            postgres = postgres_facts(database.admin_url)
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    lines = [
        f"Member import benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"Command: `{command}`",
        "",
        *table([first, second]),
        "",
        f"Members/s (first import): {first.rate:,.0f}",
        "",
        f"Every view caught up (`/readyz`, no event left to apply) {caught_up.seconds:.2f} s "
        "after the first import was seen completed; views with events left at the first "
        f"answer ({caught_up.first_answer:.2f} s): "
        + (", ".join(f"{k} {v}" for k, v in caught_up.behind_at_end.items()) or "none"),
        "",
        *[f"- {fact}" for fact in machine_facts(postgres, load_before)],
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000, help="members in the file")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="training-bench-import-"))
    workdir.chmod(0o755)
    try:
        print(run(args.rows, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
