"""Hot aggregates (issue #12): bursts of commands that all change one aggregate.

One run, on a fresh embedded PostgreSQL behind ``training serve --no-demo``:

1. a tenant with room for everyone and a client holding every tenant scope;
2. registrations (``POST /v1/members``), each of which takes a seat on the tenant's one
   ``SeatRoster``: first one at a time (the floor: nothing to race with), then ``--members``
   of them ``--at-a-time`` in flight;
3. single enrolments (``POST /v1/cohorts/{id}/enrolments``, one person per request) into
   one cohort (a new one for each burst): one at a time (the floor), then ``--enrolments``
   of them all in flight at once.

No client ever retries: every refusal counts. A 409 is the race this measures and has a
column of its own; any other failure (by status, or exception class for a request that got
no answer) shows in the "other" column and in place of the burst's rate. It prints a
Markdown table on stdout (progress goes to stderr). A measurement, not a test. Usage::

    .venv/bin/python scripts/bench/hot_aggregates.py [--members 90] [--at-a-time 8]
        [--enrolments 60] [--runs 3]

To measure other code (the version before a change), put its ``src`` first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter
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
    progress,
    report,
    run_benchmark,
    server_postgres_facts,
    serving,
)
from tenants import ALL_SCOPES, Operator, published_curriculum, scheduled_cohort

import training


def percentile_or_nan(values: Sequence[float], fraction: float) -> float:
    """NaN when no request of the burst was answered."""
    value = percentile(values, fraction)
    return float("nan") if value is None else value


@dataclass
class Burst:
    name: str
    statuses: Counter[int]
    unanswered: Errors  # requests that got no answer, by exception class
    latencies_ms: list[float]
    window: Window

    def failures(self) -> Errors:
        """What failed besides the conflicts this measures."""
        errors = Errors()
        for status, count in sorted(self.statuses.items()):
            if status >= 300 and status != 409:
                errors.add(status, count)
        errors.extend(self.unanswered)
        return errors

    def row(self) -> str:
        total = sum(self.statuses.values()) + self.unanswered.total
        ok = sum(n for status, n in self.statuses.items() if status < 300)
        conflicts = self.statuses.get(409, 0)
        failures = self.failures()
        rate = failures.or_rate(f"{total / self.window.seconds:.0f}")
        return (
            f"| {self.name} | {ok}/{total} | {conflicts} | {failures.summary()} "
            f"| {self.window.seconds:.2f} | {rate} "
            f"| {percentile_or_nan(self.latencies_ms, 0.5):.0f} "
            f"| {percentile_or_nan(self.latencies_ms, 0.95):.0f} "
            f"| {percentile_or_nan(self.latencies_ms, 1.0):.0f} | {cpu_shares(self.window)} |"
        )


async def burst(
    server: Server,
    name: str,
    token: str,
    requests: list[tuple[str, dict[str, Any]]],
    at_a_time: int,
) -> Burst:
    """POSTs every request once, ``at_a_time`` in flight, all released at the same moment."""
    start = asyncio.Event()
    slots = asyncio.Semaphore(at_a_time)
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    unanswered = Errors()

    async def send(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> int | None:
        await start.wait()
        async with slots:
            started = time.perf_counter()
            try:
                response = await client.post(path, json=body, headers=headers)
            except httpx.HTTPError as error:
                unanswered.add(error)
                return None
            latencies.append((time.perf_counter() - started) * 1000)
            return response.status_code

    limits = httpx.Limits(max_connections=at_a_time)
    async with httpx.AsyncClient(
        base_url=server.base_url, timeout=HTTP_TIMEOUT, limits=limits
    ) as client:
        # Open the connections first, so the race is between commands, not TCP handshakes.
        await asyncio.gather(*(client.get("/healthz") for _ in range(at_a_time)))
        tasks = [asyncio.create_task(send(client, path, body)) for path, body in requests]
        await asyncio.sleep(0.05)
        watch = Stopwatch(server.meter)
        start.set()
        answered = await asyncio.gather(*tasks)
        window = watch.stop()
    statuses = Counter(status for status in answered if status is not None)
    return Burst(name, statuses, unanswered, latencies, window)


def registrations(count: int, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "/v1/members",
            {
                "external_id": f"{prefix}-{index}",
                "display_name": f"Engineer {index}",
                "email": f"{prefix}-{index}@bench.example",
                "roles": ["engineer"],
            },
        )
        for index in range(count)
    ]


def new_cohort(server: Server, token: str, capacity: int) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT, headers=headers) as http:
        curriculum = published_curriculum(http, f"Hot {uuid.uuid4().hex[:6]}")
        return scheduled_cohort(http, curriculum, capacity, "Hot cohort")


def member_ids(server: Server, token: str, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    ids: list[str] = []
    cursor: str | None = None
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT, headers=headers) as http:
        while len(ids) < count:
            params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = http.get("/v1/members", params=params)
            page.raise_for_status()
            ids += [item["member_id"] for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
    return ids[:count]


def run(args: argparse.Namespace, workdir: Path, results: Results) -> str:
    bursts: list[Burst] = []
    members = args.members
    with serving(workdir) as server:
        seats = 2 * members * args.runs + args.enrolments + 10
        token = Operator(server).tenant(seats, ALL_SCOPES).token()
        for run_index in range(args.runs):
            prefix = f"r{run_index}-{uuid.uuid4().hex[:4]}"
            progress(f"run {run_index + 1}: {members} registrations one at a time")
            bursts.append(
                asyncio.run(
                    burst(
                        server,
                        "registrations, 1 at a time",
                        token,
                        registrations(members, f"{prefix}a"),
                        1,
                    )
                )
            )
            progress(f"run {run_index + 1}: {members} registrations {args.at_a_time} at a time")
            bursts.append(
                asyncio.run(
                    burst(
                        server,
                        f"registrations, {args.at_a_time} at a time",
                        token,
                        registrations(members, f"{prefix}b"),
                        args.at_a_time,
                    )
                )
            )
        people = member_ids(server, token, args.enrolments)
        for run_index in range(args.runs):
            for at_a_time in (1, len(people)):
                cohort_id = new_cohort(server, token, capacity=len(people) // 3)
                path = f"/v1/cohorts/{cohort_id}/enrolments"
                requests = [(path, {"member_ids": [member_id]}) for member_id in people]
                name = f"single enrolments into one cohort, {at_a_time} at a time"
                progress(f"run {run_index + 1}: {name}")
                bursts.append(asyncio.run(burst(server, name, token, requests, at_a_time)))
        postgres = server_postgres_facts(server)
    for finished in bursts:
        results.errors.extend(finished.failures())
    body = [
        f"Code from {Path(training.__file__).parent}",
        "",
        "| burst | succeeded | 409 | other | wall s | requests/s | p50 ms | p95 ms | max ms "
        "| CPU % bench / serve / pg |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *[b.row() for b in bursts],
    ]
    return report("Hot aggregates benchmark", body, postgres, results.load_before)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=90, help="registrations per burst")
    parser.add_argument("--at-a-time", type=int, default=8, help="registrations in flight")
    parser.add_argument("--enrolments", type=int, default=60, help="enrolments per burst")
    parser.add_argument("--runs", type=int, default=3, help="bursts of each kind")
    args = parser.parse_args(argv)
    results = Results("hot_aggregates")
    return run_benchmark(lambda workdir: run(args, workdir, results), results, "hot")


if __name__ == "__main__":
    raise SystemExit(main())
