"""Bulk enrolment benchmark (issue #4): 10,000 engineers enrolled in 10 requests of 1,000.

One run, on a fresh embedded PostgreSQL behind ``training serve --no-demo``:

1. a tenant with 10,100 seats and a client holding every tenant scope;
2. 10,000 members imported through the CSV import endpoint (the job is awaited);
3. a curriculum created and published, and 10 cohorts of its version, 1,000 seats each;
4. the measured window: 10 sequential ``POST /v1/cohorts/{id}/enrolments`` of 1,000 member
   ids each (every engineer goes into exactly one cohort: one open cohort per curriculum
   per person), while ``/healthz`` is probed every 20 ms to show the service stays
   responsive;
5. then how long the cohorts read model takes to show all 10,000 enrolments.

A failed enrolment request stops the run (its enrolments would be missing from the count); a
failed ``/healthz`` probe is counted by status (or exception class) in the table.

It prints a Markdown table on stdout (progress goes to stderr). A measurement, not a test.
Usage::

    .venv/bin/python scripts/bench/bulk_enrolment.py [--members 10000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import (
    HTTP_TIMEOUT,
    Errors,
    Results,
    Server,
    Stopwatch,
    Window,
    cpu_shares,
    percentile,
    probe_health,
    progress,
    report,
    run_benchmark,
    server_postgres_facts,
    serving,
)
from tenants import ALL_SCOPES, Operator, Tenant, published_curriculum, scheduled_cohort

from training.people.domain.members import Member

PROBE_SECONDS = 0.02
POLL_SECONDS = 0.2
SPARE_SEATS = 100
CATCH_UP_TIMEOUT = 300.0


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@dataclass
class Run:
    requests: int
    enrolled: int
    waitlisted: int
    window: Window
    request_ms: list[float]
    health_ms: list[float]
    health_errors: Errors
    catch_up_seconds: float

    @property
    def rate(self) -> float:
        return self.enrolled / self.window.seconds if self.window.seconds else 0.0


class Client:
    """The HR integration: every scope of a tenant, reads after its own writes."""

    def __init__(self, server: Server, tenant: Tenant) -> None:
        self.http = httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT)
        self.tenant = tenant
        self.position = 0

    @property
    def token(self) -> str:
        return self.tenant.token()

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        if method == "GET" and self.position:
            headers["Training-Position"] = str(self.position)
        response = self.http.request(method, url, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:500]}")
        if "training-position" in response.headers:
            self.position = max(self.position, int(response.headers["training-position"]))
        return response


def import_members(hr: Client, count: int) -> list[str]:
    lines = ["external_id,display_name,email,roles"]
    external_ids = [f"E{index:06d}" for index in range(count)]
    lines += [f"{e},Engineer {e},{e.lower()}@bench.example,engineer" for e in external_ids]
    accepted = hr.http.post(
        "/v1/member-imports",
        content=("\n".join(lines) + "\n").encode(),
        headers={"Authorization": f"Bearer {hr.token}", "Content-Type": "text/csv"},
    )
    accepted.raise_for_status()
    url = accepted.headers["location"]
    while True:
        job = hr.call("GET", url).json()
        if job["status"] in ("completed", "failed"):
            break
        progress(f"import: {job['processed_rows']}/{job['total_rows'] or '?'} rows")
        time.sleep(POLL_SECONDS)
    if job["status"] != "completed" or job["created"] != count:
        raise RuntimeError(f"the import did not complete cleanly: {job}")
    return external_ids


def schedule_cohorts(hr: Client, count: int, seats: int) -> list[str]:
    with httpx.Client(
        base_url=hr.http.base_url, timeout=HTTP_TIMEOUT, headers=hr.tenant.headers()
    ) as http:
        curriculum = published_curriculum(http, "Bench backend", modules=3)
        return [
            scheduled_cohort(http, curriculum, seats, f"Bench cohort {index + 1}")
            for index in range(count)
        ]


async def enrol_all(
    server: Server, hr: Client, cohorts: list[str], batches: list[list[str]]
) -> tuple[Window, list[float], list[float], Errors, int, int]:
    health: list[float] = []
    health_errors = Errors()
    latencies: list[float] = []
    enrolled = waitlisted = 0
    stop = asyncio.Event()
    probe = asyncio.create_task(
        probe_health(server.base_url, stop, health, health_errors, PROBE_SECONDS)
    )
    await asyncio.sleep(0.2)  # the probe's connection is open before the window starts
    health.clear()  # only probes answered during the window count
    health_errors.counts.clear()
    headers = {"Authorization": f"Bearer {hr.token}"}
    watch = Stopwatch(server.meter)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HTTP_TIMEOUT) as client:
        for cohort_id, member_ids in zip(cohorts, batches, strict=True):
            started = time.perf_counter()
            response = await client.post(
                f"/v1/cohorts/{cohort_id}/enrolments",
                json={"member_ids": member_ids},
                headers=headers,
            )
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"enrolment failed: {response.status_code} {response.text}")
            body = response.json()
            enrolled += len(body["enrolled"])
            waitlisted += len(body["waitlisted"])
            hr.position = max(hr.position, int(response.headers["training-position"]))
            progress(f"enrolled {enrolled:,} in {len(latencies)} requests")
    window = watch.stop()
    stop.set()
    await probe
    return window, latencies, health, health_errors, enrolled, waitlisted


def wait_for_read_model(hr: Client, cohorts: list[str], expected: int) -> float:
    """Seconds until the cohorts view shows every enrolment (reads wait on the position)."""
    started = time.perf_counter()
    while True:
        if time.perf_counter() - started > CATCH_UP_TIMEOUT:
            raise RuntimeError("the cohorts read model did not catch up")
        total = 0
        try:
            for cohort_id in cohorts:
                total += int(hr.call("GET", f"/v1/cohorts/{cohort_id}").json()["enrolled"])
        except RuntimeError as error:  # 503: the view is still behind the position
            progress(f"read model behind: {str(error)[:80]}")
            time.sleep(POLL_SECONDS)
            continue
        if total >= expected:
            return time.perf_counter() - started
        time.sleep(POLL_SECONDS)


def table(run: Run) -> list[str]:
    per_request = (run.enrolled + run.waitlisted) // run.requests
    return [
        "| measurement | value |",
        "|---|--:|",
        f"| enrolment requests (sequential, {per_request:,} ids each) | {run.requests} |",
        f"| engineers enrolled / waitlisted | {run.enrolled:,} / {run.waitlisted:,} |",
        f"| total wall time, s | {run.window.seconds:.2f} |",
        f"| enrolments/s | {run.rate:,.0f} |",
        f"| request latency p50 / max, ms | {fmt(percentile(run.request_ms, 0.5))} / "
        f"{fmt(max(run.request_ms))} |",
        f"| /healthz during the run: p50 / p99 / max, ms (n={len(run.health_ms)}) "
        f"| {fmt(percentile(run.health_ms, 0.5))} / {fmt(percentile(run.health_ms, 0.99))} / "
        f"{fmt(max(run.health_ms) if run.health_ms else None)} |",
        f"| /healthz probes that failed | {run.health_errors.summary()} |",
        f"| CPU % bench / serve / pg (100 % = one core) | {cpu_shares(run.window)} |",
        f"| read model shows all enrolments, s after the last response | "
        f"{run.catch_up_seconds:.2f} |",
    ]


def run(members: int, batch: int, workdir: Path, results: Results) -> str:
    with serving(workdir) as server:
        tenant = Operator(server).tenant(members + SPARE_SEATS, ALL_SCOPES)
        hr = Client(server, tenant)
        progress(f"importing {members:,} members")
        external_ids = import_members(hr, members)
        member_ids = [str(Member.create_id(tenant.tenant_id, e)) for e in external_ids]
        count = members // batch
        cohorts = schedule_cohorts(hr, count, batch)
        batches = [member_ids[i : i + batch] for i in range(0, members, batch)]
        progress(f"enrolling {members:,} engineers into {count} cohorts")
        window, latencies, health, health_errors, enrolled, waitlisted = asyncio.run(
            enrol_all(server, hr, cohorts, batches)
        )
        catch_up = wait_for_read_model(hr, cohorts, enrolled)
        postgres = server_postgres_facts(server)
        hr.http.close()
    result = Run(count, enrolled, waitlisted, window, latencies, health, health_errors, catch_up)
    results.errors.extend(health_errors)
    body = [
        *table(result),
        "",
        "Request latencies, ms: " + ", ".join(f"{ms:.0f}" for ms in latencies),
    ]
    return report("Bulk enrolment benchmark", body, postgres, results.load_before)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=10_000, help="engineers to enrol")
    parser.add_argument("--batch", type=int, default=1_000, help="ids per request and seats")
    args = parser.parse_args(argv)
    if args.members % args.batch:
        parser.error("--members must be a multiple of --batch")
    results = Results("bulk_enrolment")
    return run_benchmark(
        lambda workdir: run(args.members, args.batch, workdir, results), results, "enrol"
    )


if __name__ == "__main__":
    raise SystemExit(main())
