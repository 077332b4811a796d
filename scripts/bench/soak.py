"""Soak (issue #14): mixed reads and writes on one tenant growing to 10,000 members.

One run, on a fresh embedded PostgreSQL behind ``training serve --no-demo``:

1. a tenant with an all-scopes integration client, a published curriculum of three modules
   and ``--seed-members`` members registered first (unmeasured), so the reads have something
   to read from the first second;
2. for ``--minutes``, at once:

   - **registrations**: one client registers ``--members`` members (``POST /v1/members``) at
     an even pace over the run, and enrols every ``--enrol-every``-th of them into the
     current cohort (``POST /v1/cohorts/{id}/enrolments``, one member; the planning process
     then plans their track and the report trigger queues their automatic report),
     scheduling a new cohort (``POST /v1/cohorts``) every ``--cohort-size`` enrolments;
   - **mixed clients**: ``--clients`` clients, each with one keep-alive connection, together
     offering ``--rate`` requests a second (each at an even pace; one that falls behind
     starts again from now rather than sending a burst): a page of the member list (each
     client follows ``next_cursor`` to the end, then starts again), one member, one enrolled
     member's track (of members enrolled ``TRACK_AFTER_S`` or more before) and a change of a
     member's job title (``PATCH /v1/members/{id}``), in the proportions of ``MIX``.

Every request is timed on the client; a request answered with another status than the one
expected, or not answered, is counted by status (or exception class). Each minute the
service's resident memory is read from ``/proc/PID/status`` (``VmRSS``): serve's own process,
and its process tree (serve, its render processes and, on Linux, any other child; PostgreSQL
is not in it: pgserver starts it apart).

It prints a table per minute (requests, rate, p50, p99, errors, serve RSS, load average) and
the summary the issue asks for: the p99 of the last minute against the p99 of the second
(target at most 1.5) and serve's RSS at the end against the end of the second minute, the
warm-up (target less than 10 % growth), with the errors by status. With ``--profile PATH``,
``py-spy`` (when installed beside this Python) samples serve for 20 s three minutes before
the end, so the last minute is measured without it; PATH receives collapsed stacks. A
measurement, not a test. Usage::

    .venv/bin/python scripts/bench/soak.py [--minutes 20] [--members 10000] [--clients 8]
        [--rate 40] [--profile /tmp/soak.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import (
    HTTP_TIMEOUT,
    Errors,
    Measure,
    Results,
    Server,
    Stopwatch,
    Target,
    cpu_shares,
    format_ms,
    percentile,
    progress,
    report,
    run_benchmark,
    server_postgres_facts,
    serving,
)
from tenants import ALL_SCOPES, Operator, Tenant, checked, published_curriculum, scheduled_cohort

# The mixed clients' requests, by share.
MIX: dict[str, float] = {
    "GET /v1/members (page)": 0.30,
    "GET /v1/members/{id}": 0.25,
    "GET /v1/members/{id}/track": 0.15,
    "PATCH /v1/members/{id}": 0.30,
}
REGISTER = "POST /v1/members"
ENROL = "POST /v1/cohorts/{id}/enrolments"
SCHEDULE = "POST /v1/cohorts"
PAGE_LIMIT = 50
# A track is planned by the planning process after the enrolment, and shown by the tracks
# view after that: a member's track is read only once it has had time to appear.
TRACK_AFTER_S = 60.0
WARMUP_MINUTES = 2
PROFILE_SECONDS = 20
PROFILE_RATE = 50  # samples a second; each costs serve a little, more when it has many threads
PROFILE_BEFORE_END_S = 180.0
# Issue #14: no slower at the end than after the warm-up, and memory bounded.
TARGET_P99 = Target("<=", 1.5, "<= 1.5 x minute 2", on_ratio=True)
TARGET_RSS = Target("<", 1.10, "< 1.10 x minute 2 (growth < 10 %)", on_ratio=True)


@dataclass(frozen=True)
class Sample:
    started: float  # seconds since the soak began
    operation: str
    latency_ms: float
    failure: int | BaseException | None  # a status other than the expected one, or no answer


@dataclass
class Minute:
    number: int  # from 1
    rss_mb: float = 0.0  # serve's own process at the end of the minute
    tree_mb: float = 0.0  # serve and its children
    load: float = 0.0
    cpu: str = ""  # bench / serve / pg, % of one core over the minute
    profiled: bool = False
    samples: list[Sample] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [s.latency_ms for s in self.samples if s.failure is None]

    @property
    def errors(self) -> Errors:
        errors = Errors()
        for sample in self.samples:
            if sample.failure is not None:
                errors.add(sample.failure)
        return errors


@dataclass
class Soak:
    """What the clients share: the members so far, who is enrolled since when, the samples."""

    started: float
    tenant: Tenant
    members: list[str] = field(default_factory=list)
    enrolled: list[tuple[float, str]] = field(default_factory=list)  # (when, member id)
    samples: list[Sample] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    async def timed(
        self, operation: str, request: Awaitable[httpx.Response], expected: int
    ) -> httpx.Response | None:
        """Awaits one request (a coroutine does nothing until awaited: the time starts
        here) and records it; answers the response when it has the expected status."""
        started = self.elapsed()
        failure: int | BaseException | None = None
        response: httpx.Response | None = None
        try:
            response = await request
        except httpx.HTTPError as error:
            failure = error
        else:
            if response.status_code != expected:
                failure = response.status_code
                progress(f"{operation}: {response.status_code} {response.text[:200]}")
        self.samples.append(Sample(started, operation, (self.elapsed() - started) * 1000, failure))
        return response if failure is None else None


# --- the memory of the service --------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def serve_memory(pid: int) -> tuple[float, float]:
    """Serve's own resident memory and its process tree's, in MB."""
    own = rss_mb(pid)
    return own, own + sum(rss_mb(child) for child in descendants(pid))


# --- the clients ----------------------------------------------------------------------------------


def new_client(server: Server, tenant: Tenant) -> httpx.AsyncClient:
    """One keep-alive connection; each request carries the tenant's current token, fetched
    again before it expires (a token lives 15 minutes, the soak longer)."""

    def authorise(request: httpx.Request) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {tenant.token()}"
        return request

    return httpx.AsyncClient(
        base_url=server.base_url,
        auth=authorise,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=HTTP_TIMEOUT,
    )


def member_body(number: int) -> dict[str, Any]:
    external_id = f"S{number:06d}"
    return {
        "external_id": external_id,
        "display_name": f"Engineer {external_id}",
        "email": f"{external_id.lower()}@soak.example",
        "roles": ["engineer"],
        "team": f"Team {number // 100:03d}",
        "job_title": "Engineer",
    }


async def register_all(
    server: Server,
    soak: Soak,
    args: argparse.Namespace,
    curriculum: tuple[str, int],
    first_cohort: str,
) -> None:
    """Registers ``--members`` members at an even pace, enrolling every ``--enrol-every``-th;
    behind its schedule it sends at once, so the tenant reaches its size by the end."""
    interval = args.minutes * 60 / args.members
    cohort, seated = first_cohort, 0
    async with new_client(server, soak.tenant) as client:
        for number in range(args.seed_members, args.seed_members + args.members):
            pause = soak.started + (number - args.seed_members) * interval - time.perf_counter()
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(soak.stop.wait(), pause)
            if soak.stop.is_set():
                return
            body = member_body(number)
            answer = await soak.timed(REGISTER, client.post("/v1/members", json=body), 201)
            if answer is None:
                continue
            member_id = str(answer.json()["member_id"])
            soak.members.append(member_id)
            if number % args.enrol_every:
                continue
            if seated >= args.cohort_size:
                schedule = client.post("/v1/cohorts", json=cohort_body(curriculum, args))
                answer = await soak.timed(SCHEDULE, schedule, 201)
                if answer is not None:
                    cohort, seated = str(answer.json()["cohort_id"]), 0
            enrolment = {"member_ids": [member_id]}
            path = f"/v1/cohorts/{cohort}/enrolments"
            if await soak.timed(ENROL, client.post(path, json=enrolment), 200):
                seated += 1
                soak.enrolled.append((soak.elapsed(), member_id))


def cohort_body(curriculum: tuple[str, int], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": "Soak cohort",
        "curriculum_id": curriculum[0],
        "curriculum_version": curriculum[1],
        "starts_on": "2030-01-07",
        "ends_on": "2030-03-29",
        "timezone": "Europe/Berlin",
        "capacity": args.cohort_size,
    }


async def mixed_client(server: Server, soak: Soak, interval: float, seed: int) -> None:
    rng = random.Random(seed)
    operations, weights = list(MIX), list(MIX.values())
    cursor: str | None = None
    titles = ("Engineer A", "Engineer B")
    async with new_client(server, soak.tenant) as client:
        next_at = time.perf_counter() + rng.uniform(0, interval)
        while not soak.stop.is_set():
            pause = next_at - time.perf_counter()
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(soak.stop.wait(), pause)
                if soak.stop.is_set():
                    return
            # Behind by more than one interval: start again from now rather than catch up
            # with a burst the other clients would not send.
            next_at = max(next_at + interval, time.perf_counter())
            operation = rng.choices(operations, weights)[0]
            member = rng.choice(soak.members)
            now = soak.elapsed()
            ready = [m for when, m in soak.enrolled[-500:] if now - when >= TRACK_AFTER_S]
            if operation == "GET /v1/members/{id}/track" and not ready:
                operation = "GET /v1/members/{id}"  # nobody's track is there yet
            if operation == "GET /v1/members (page)":
                params: dict[str, str | int] = {"limit": PAGE_LIMIT}
                if cursor:
                    params["cursor"] = cursor
                page = await soak.timed(operation, client.get("/v1/members", params=params), 200)
                cursor = page.json()["next_cursor"] if page is not None else None
            elif operation == "GET /v1/members/{id}":
                await soak.timed(operation, client.get(f"/v1/members/{member}"), 200)
            elif operation == "GET /v1/members/{id}/track":
                track_of = rng.choice(ready)
                await soak.timed(operation, client.get(f"/v1/members/{track_of}/track"), 200)
            else:
                body = {"job_title": rng.choice(titles)}
                await soak.timed(operation, client.patch(f"/v1/members/{member}", json=body), 200)


# --- the run --------------------------------------------------------------------------------------


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def watch_minutes(
    server: Server, soak: Soak, args: argparse.Namespace, minutes: list[Minute]
) -> None:
    """Each minute: serve's memory and the load average; starts the profiler when due; sets
    ``soak.stop`` at the end."""
    serve_pid = server.meter.serve_pid
    assert serve_pid is not None
    profile_at = args.minutes * 60 - PROFILE_BEFORE_END_S if args.profile else None
    profiler: subprocess.Popen[bytes] | None = None
    profiled: list[float] = []  # when the profiler started and, once it did, ended
    for number in range(1, args.minutes + 1):
        minute = Minute(number)
        watch = Stopwatch(server.meter)
        while soak.elapsed() < number * 60:
            if profile_at is not None and soak.elapsed() >= profile_at:
                profile_at = None  # once
                profiler = start_profiler(args.profile, serve_pid)
                if profiler is not None:
                    profiled.append(soak.elapsed())
            if profiler is not None and len(profiled) == 1:
                if soak.elapsed() >= profiled[0] + PROFILE_SECONDS:
                    # py-spy's --duration counts samples, which fall behind on a busy
                    # machine; on SIGINT it writes what it has and stops.
                    profiler.send_signal(signal.SIGINT)
                if profiler.poll() is not None:
                    profiled.append(soak.elapsed())
            await asyncio.sleep(min(1.0, max(0.0, number * 60 - soak.elapsed())))
        minute.profiled = (
            bool(profiled)
            and profiled[0] < number * 60
            and (len(profiled) == 1 or profiled[1] > (number - 1) * 60)
        )
        minute.cpu = cpu_shares(watch.stop())
        minute.rss_mb, minute.tree_mb = serve_memory(serve_pid)
        minute.load = os.getloadavg()[0]
        minutes.append(minute)
        done = [s for s in soak.samples if number - 1 <= s.started / 60 < number]
        p99 = percentile([s.latency_ms for s in done if s.failure is None], 0.99)
        progress(
            f"minute {number}: {len(done)} requests, p99 {format_ms(p99)} ms, "
            f"{len(soak.members):,} members, serve RSS {minute.rss_mb:.0f} MB "
            f"(tree {minute.tree_mb:.0f} MB), load {minute.load:.2f}"
        )
    soak.stop.set()
    if profiler is not None:
        profiler.wait(timeout=60)


def start_profiler(path: Path | None, pid: int) -> subprocess.Popen[bytes] | None:
    found = py_spy()
    if path is None or found is None:
        progress("py-spy not found: no profile")
        return None
    progress(f"py-spy samples serve for {PROFILE_SECONDS} s into {path}")
    command = [found, "record", "--pid", str(pid), "--rate", str(PROFILE_RATE), "--nonblocking"]
    command += ["--format", "raw", "--output", str(path)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def soak_for(
    server: Server, tenant: Tenant, args: argparse.Namespace, setup: tuple[list[str], Any]
) -> tuple[Soak, list[Minute]]:
    members, (curriculum, cohort) = setup
    soak = Soak(time.perf_counter(), tenant, members=list(members))
    minutes: list[Minute] = []
    interval = args.clients / args.rate
    tasks = [
        register_all(server, soak, args, curriculum, cohort),
        *(mixed_client(server, soak, interval, args.seed + n) for n in range(args.clients)),
        watch_minutes(server, soak, args, minutes),
    ]
    await asyncio.gather(*tasks)
    for sample in soak.samples:
        index = min(int(sample.started // 60), len(minutes) - 1)
        minutes[index].samples.append(sample)
    return soak, minutes


def set_up(tenant: Tenant, args: argparse.Namespace) -> tuple[list[str], Any]:
    """The seed members, a published curriculum and the first cohort."""
    with tenant.client() as http:
        members = [
            str(checked(http.post("/v1/members", json=member_body(n))).json()["member_id"])
            for n in range(args.seed_members)
        ]
        curriculum = published_curriculum(http, "Soak curriculum", modules=3)
        cohort = scheduled_cohort(http, curriculum, args.cohort_size, "Soak cohort")
    return members, (curriculum, cohort)


# --- the report -----------------------------------------------------------------------------------


def minute_table(minutes: Sequence[Minute]) -> list[str]:
    lines = [
        "| minute | requests | per s | p50 ms | p99 ms | errors | serve RSS MB | serve tree MB "
        "| load 1m | CPU % bench / serve / pg |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for minute in minutes:
        latencies = minute.latencies
        note = " (profiled)" if minute.profiled else ""
        lines.append(
            f"| {minute.number}{note} | {len(minute.samples):,} | {len(minute.samples) / 60:.1f} "
            f"| {format_ms(percentile(latencies, 0.5))} | {format_ms(percentile(latencies, 0.99))} "
            f"| {minute.errors.summary()} | {minute.rss_mb:.0f} | {minute.tree_mb:.0f} "
            f"| {minute.load:.2f} | {minute.cpu} |"
        )
    return lines


def operation_table(warm: Minute, last: Minute) -> list[str]:
    """p50 and p99 by operation, after the warm-up and in the last minute."""
    lines = [
        f"| operation | n (minute {warm.number} / {last.number}) | p50 ms | p99 ms "
        f"| p50 ms, minute {last.number} | p99 ms, minute {last.number} |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for operation in (REGISTER, ENROL, SCHEDULE, *MIX):
        before = [s.latency_ms for s in warm.samples if s.operation == operation]
        after = [s.latency_ms for s in last.samples if s.operation == operation]
        lines.append(
            f"| {operation} | {len(before)} / {len(after)} "
            f"| {format_ms(percentile(before, 0.5))} | {format_ms(percentile(before, 0.99))} "
            f"| {format_ms(percentile(after, 0.5))} | {format_ms(percentile(after, 0.99))} |"
        )
    return lines


def ratio_text(measure: Measure, digits: int) -> str:
    return "-" if measure.ratio is None else f"{measure.ratio:.{digits}f}"


def record(results: Results, minutes: Sequence[Minute]) -> list[str]:
    warm, last = minutes[WARMUP_MINUTES - 1], minutes[-1]
    errors = Errors()
    for minute in minutes:
        errors.extend(minute.errors)
    p99_warm, p99_last = percentile(warm.latencies, 0.99), percentile(last.latencies, 0.99)
    latency = results.add(
        Measure(
            f"p99 of minute {last.number}, against minute {warm.number}",
            p99_last,
            "ms",
            floor=p99_warm,
            floor_name=f"p99 of minute {warm.number}",
            target=TARGET_P99,
            errors=errors,
        )
    )
    memory = results.add(
        Measure(
            f"serve RSS at the end of minute {last.number}, against minute {warm.number}",
            last.rss_mb,
            "MB",
            floor=warm.rss_mb,
            floor_name=f"serve RSS, end of minute {warm.number}",
            target=TARGET_RSS,
        )
    )
    tree = last.tree_mb / warm.tree_mb if warm.tree_mb else 0.0
    return [
        f"- p99 of minute {last.number} / p99 of minute {warm.number} = "
        f"{format_ms(p99_last)} / {format_ms(p99_warm)} ms = **{ratio_text(latency, 2)}** "
        f"(target {TARGET_P99.text}); errors: {errors.summary()}",
        f"- serve RSS, end of minute {last.number} / end of minute {warm.number} = "
        f"{last.rss_mb:.0f} / {warm.rss_mb:.0f} MB = **{ratio_text(memory, 3)}** "
        f"(target {TARGET_RSS.text}); serve's process tree {last.tree_mb:.0f} / "
        f"{warm.tree_mb:.0f} MB = {tree:.3f}",
    ]


def run(args: argparse.Namespace, workdir: Path, results: Results) -> str:
    with serving(workdir) as server:
        tenant = Operator(server).tenant(args.seed_members + args.members + 100, ALL_SCOPES)
        setup = set_up(tenant, args)
        progress(
            f"soak: {args.minutes} min, {args.members:,} registrations, {args.clients} clients "
            f"at {args.rate:g} requests/s in all"
        )
        soak, minutes = asyncio.run(soak_for(server, tenant, args, setup))
        postgres = server_postgres_facts(server)
    summary = record(results, minutes)
    body = [
        f"One tenant: {args.seed_members} members first, then "
        f"{len(soak.members) - args.seed_members:,} registered over the run (one client, "
        f"an even pace), every {args.enrol_every}th enrolled into a cohort of "
        f"{args.cohort_size}; {args.clients} mixed clients at "
        f"{args.rate:g} requests/s in all: "
        + ", ".join(f"{op} {share:.0%}" for op, share in MIX.items())
        + f"; {len(soak.enrolled):,} enrolments.",
        "",
        *minute_table(minutes),
        "",
        *operation_table(minutes[WARMUP_MINUTES - 1], minutes[-1]),
        "",
        *summary,
    ]
    return report("Soak", body, postgres, results.load_before)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=20, help="how long the soak runs")
    parser.add_argument("--members", type=int, default=10_000, help="members registered")
    parser.add_argument("--seed-members", type=int, default=50, help="members registered first")
    parser.add_argument("--clients", type=int, default=8, help="mixed clients")
    parser.add_argument("--rate", type=float, default=40.0, help="mixed requests/s in all")
    parser.add_argument("--enrol-every", type=int, default=10, help="enrol every n-th member")
    parser.add_argument("--cohort-size", type=int, default=50, help="seats of each cohort")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--profile", type=Path, help="py-spy's collapsed stacks of serve, 3 min before the end"
    )
    args = parser.parse_args(argv)
    if args.minutes < WARMUP_MINUTES + 1:
        parser.error(f"--minutes is at least {WARMUP_MINUTES + 1}: a warm-up and a minute after")
    if min(args.members, args.seed_members, args.clients, args.enrol_every, args.cohort_size) < 1:
        parser.error("counts are at least 1")
    if args.rate <= 0:
        parser.error("--rate is positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results("soak")
    return run_benchmark(lambda workdir: run(args, workdir, results), results, "soak")


if __name__ == "__main__":
    raise SystemExit(main())
