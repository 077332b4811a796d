"""Next-item latency benchmark (issue #5): how long an answer takes to bring the next item.

One run, on a fresh embedded PostgreSQL behind ``training serve``:

1. a tenant, an all-scopes integration client, ``--engineers`` engineers registered over
   HTTP and the retake cool-down set to 0 days (so an engineer may take a skill again);
2. a member token per engineer, signed with the service's own key (read from its database,
   as the sign-in flow would issue it; there is no login endpoint yet);
3. per concurrency level, ``--attempts`` adaptive tests taken by simulated examinees, that
   many at a time: each attempt draws an ability theta ~ N(0, 1) and answers each item right
   with the 2PL probability of the item's shipped parameters. Every ``POST .../answers`` is
   timed on the client; the ones that answer with a next item are the measurement (the last
   answer of an attempt, which scores it, and the start are reported apart).

An attempt's (engineer, skill) pairs are taken in turn, so no engineer runs two attempts on
the same skill at once. A refused start or answer ends its attempt and is counted by status
(or exception class, for a request that got no answer); a level with failures shows them in
place of its answers/s. It prints a Markdown report on stdout (progress goes to stderr). A
measurement, not a test: the target (p99 <= 30 ms) is marked PASS or NOT MET and the exit
code is 0 either way. Usage::

    .venv/bin/python scripts/bench/next_item_latency.py [--engineers 50] [--attempts 150]
        [--concurrency 1 8] [--warmup 8]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Sequence
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
    Window,
    cpu_shares,
    percentile,
    progress,
    report,
    run_benchmark,
    server_postgres_facts,
    serving,
)
from joserfc import jwt
from tenants import ALL_SCOPES, Operator, Tenant, checked

from training.assessments.domain.items import Item, ItemKind
from training.assessments.domain.scoring import probability_correct
from training.assessments.queries import starter_bank
from training.identity.keys import KeyRing
from training.infra.database import database_for
from training.infra.secretbox import SecretBox
from training.infra.settings import Settings

TARGET_P99_MS = 30.0
# Issue #14 asks it at 8 engineers answering at a time.
TARGET_CONCURRENCY = 8
TARGET_P99 = Target("<=", TARGET_P99_MS, f"<= {TARGET_P99_MS:.0f} ms")
TOKEN_SECONDS = 3600


@dataclass
class Samples:
    """Client-side latencies in milliseconds, by kind of request."""

    next_item: list[float] = field(default_factory=list)
    completing: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    items_per_attempt: list[int] = field(default_factory=list)
    errors: Errors = field(default_factory=Errors)


@dataclass
class Level:
    concurrency: int
    attempts: int
    window: Window
    samples: Samples


def wrong_answer(item: Item) -> tuple[str, ...]:
    if item.kind is ItemKind.ORDERING:
        return tuple(reversed(item.answer))
    return (next(o.id for o in item.options if o.id not in item.answer),)


# --- setup ----------------------------------------------------------------------------------


def setup_tenant(server: Server, engineers: int) -> tuple[Tenant, list[str]]:
    """A tenant with an all-scopes client and ``engineers`` engineers; their member ids."""
    tenant = Operator(server).tenant(engineers + 10, ALL_SCOPES)
    members = []
    with tenant.client() as client:
        for index in range(engineers):
            body = {
                "external_id": f"E{index:04d}",
                "display_name": f"Engineer {index}",
                "roles": ["engineer"],
                "team": f"Team {index % 5}",
            }
            members.append(checked(client.post("/v1/members", json=body)).json()["member_id"])
        policy = {"at_risk_threshold": 20, "retake_cooldown_days": 0}
        checked(client.put("/v1/training-policy", json=policy))
    return tenant, members


def member_tokens(server: Server, tenant_id: uuid.UUID, members: Sequence[str]) -> list[str]:
    """Access tokens as the sign-in flow issues them, signed with the service's active key."""
    settings = Settings.from_env(dict(server.env))
    with database_for(settings) as database:
        signing_key = KeyRing(database.app_url, SecretBox.from_settings(settings)).current()
    key = signing_key.signing_key
    now = int(time.time())
    tokens = []
    for member_id in members:
        claims = {
            "iss": settings.issuer,
            "aud": [settings.audience],
            "sub": f"member:{member_id}",
            "member_id": member_id,
            "tenant_id": str(tenant_id),
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        tokens.append(jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, claims, key))
    return tokens


# --- the load -------------------------------------------------------------------------------


async def take_attempt(
    client: httpx.AsyncClient, token: str, skill: str, rng: random.Random, samples: Samples
) -> None:
    bank = starter_bank().items[skill]
    headers = {"Authorization": f"Bearer {token}"}
    theta = rng.gauss(0.0, 1.0)
    started = time.perf_counter()
    try:
        response = await client.post("/v1/assessments", json={"skill": skill}, headers=headers)
    except httpx.HTTPError as error:
        samples.errors.add(error)
        return
    samples.starts.append((time.perf_counter() - started) * 1000)
    if response.status_code != 201:
        samples.errors.add(response.status_code)
        progress(f"start refused: {response.status_code} {response.text[:200]}")
        return
    state: dict[str, Any] = response.json()
    answered = 0
    while state["status"] == "in_progress" and state["item"] is not None:
        item, parameters = bank[state["item"]["item_id"]]
        right = rng.random() < probability_correct(theta, parameters)
        body = {
            "item_id": item.item_id,
            "answer": list(item.answer if right else wrong_answer(item)),
        }
        started = time.perf_counter()
        try:
            response = await client.post(
                f"/v1/assessments/{state['attempt_id']}/answers", json=body, headers=headers
            )
        except httpx.HTTPError as error:
            samples.errors.add(error)
            return
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            samples.errors.add(response.status_code)
            progress(f"answer refused: {response.status_code} {response.text[:200]}")
            return
        state = response.json()
        answered += 1
        if state["item"] is not None:
            samples.next_item.append(elapsed)
        else:
            samples.completing.append(elapsed)
    samples.items_per_attempt.append(answered)


async def run_level(
    server: Server,
    pairs: list[tuple[str, str]],
    concurrency: int,
    seed: int,
) -> tuple[Window, Samples]:
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for pair in pairs:
        queue.put_nowait(pair)
    samples = Samples()
    rng = random.Random(seed)

    async def worker() -> None:
        # One client and one keep-alive connection per simulated engineer at a time, as a
        # browser would hold; a shared pool would measure the load generator instead.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=server.base_url, timeout=HTTP_TIMEOUT, limits=limits
        ) as client:
            while True:
                try:
                    token, skill = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await take_attempt(client, token, skill, rng, samples)
                done = len(pairs) - queue.qsize()
                if done % 25 == 0:
                    progress(f"{concurrency} at a time: {done}/{len(pairs)} attempts")

    watch = Stopwatch(server.meter)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return watch.stop(), samples


# --- the report -----------------------------------------------------------------------------


def fmt(values: Sequence[float], fraction: float) -> str:
    value = percentile(values, fraction)
    return "-" if value is None else f"{value:.1f}"


def table(levels: Sequence[Level]) -> list[str]:
    lines = [
        "| request | at a time | attempts | n | p50 ms | p95 ms | p99 ms | max ms "
        "| answers/s | errors | CPU % bench / serve / pg |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for level in levels:
        s = level.samples
        answers = len(s.next_item) + len(s.completing)
        rate = s.errors.or_rate(
            f"{answers / level.window.seconds if level.window.seconds else 0.0:.0f}"
        )
        for label, values in (
            ("POST answers -> next item", s.next_item),
            ("POST answers -> result (last)", s.completing),
            ("POST /v1/assessments (start)", s.starts),
        ):
            lines.append(
                f"| {label} | {level.concurrency} | {level.attempts} | {len(values)} "
                f"| {fmt(values, 0.5)} | {fmt(values, 0.95)} | {fmt(values, 0.99)} "
                f"| {max(values, default=0):.1f} | {rate} | {s.errors.summary()} "
                f"| {cpu_shares(level.window)} |"
            )
    return lines


def verdicts(levels: Sequence[Level]) -> list[str]:
    lines = []
    for level in levels:
        values = level.samples.next_item
        if not values:
            continue
        p99 = percentile(values, 0.99) or 0.0
        verdict = "PASS" if p99 <= TARGET_P99_MS else "NOT MET"
        items = level.samples.items_per_attempt
        errors = level.samples.errors
        failed = f"; requests failed: {errors.summary()}" if errors else ""
        lines.append(
            f"- {level.concurrency} at a time: next-item p99 {p99:.1f} ms against the target "
            f"{TARGET_P99_MS:.0f} ms: **{verdict}** ({len(values)} answers; "
            f"{statistics.fmean(items or [0]):.1f} items per attempt on average{failed})"
        )
    return lines


def record(results: Results, levels: Sequence[Level]) -> None:
    """The next item's p99 at 8 at a time (issue #14), against its p99 at one at a time."""
    single = next((level for level in levels if level.concurrency == 1), None)
    for level in levels:
        if level.concurrency == TARGET_CONCURRENCY:
            results.add(
                Measure(
                    f"POST answers -> next item, p99 at {level.concurrency} at a time",
                    percentile(level.samples.next_item, 0.99),
                    "ms",
                    floor=None if single is None else percentile(single.samples.next_item, 0.99),
                    floor_name="p99 at 1 at a time",
                    target=TARGET_P99,
                    errors=level.samples.errors,
                )
            )
        elif level is not single:
            results.errors.extend(level.samples.errors)
    if single is not None:
        results.errors.extend(single.samples.errors)


def run(args: argparse.Namespace, workdir: Path, results: Results) -> str:
    skills = sorted(starter_bank().skills)
    with serving(workdir, worker=args.projections_in_worker) as server:
        progress(f"registering {args.engineers} engineers")
        tenant, members = setup_tenant(server, args.engineers)
        tokens = member_tokens(server, tenant.tenant_id, members)
        # Engineer-major: consecutive attempts belong to different skills of one engineer,
        # and a pair comes round again only after every other pair.
        pairs = [(token, skill) for token in tokens for skill in skills]
        cursor = 0

        def take(count: int) -> list[tuple[str, str]]:
            nonlocal cursor
            chosen = [pairs[(cursor + n) % len(pairs)] for n in range(count)]
            cursor += count
            return chosen

        if args.warmup:
            progress(f"warming up with {args.warmup} attempts")
            asyncio.run(run_level(server, take(args.warmup), min(8, args.warmup), args.seed))
        levels = []
        for number, concurrency in enumerate(args.concurrency):
            chosen = take(args.attempts)
            window, samples = asyncio.run(
                run_level(server, chosen, concurrency, args.seed + number + 1)
            )
            levels.append(Level(concurrency, len(chosen), window, samples))
        postgres = server_postgres_facts(server)
    record(results, levels)
    body = [
        f"Engineers: {args.engineers}; skills: {', '.join(skills)}; warm-up attempts: "
        f"{args.warmup} (not measured); starter bank version {starter_bank().version}",
        "",
        *table(levels),
        "",
        *verdicts(levels),
    ]
    return report("Next-item latency benchmark", body, postgres, results.load_before)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--engineers", type=int, default=50)
    parser.add_argument("--attempts", type=int, default=150, help="attempts per level")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 8], help="attempts at a time"
    )
    parser.add_argument("--warmup", type=int, default=8, help="unmeasured attempts first")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--projections-in-worker",
        action="store_true",
        help="serve the API only (serve --no-projections) and run the projections in a "
        "training worker process; the serve CPU column counts both",
    )
    args = parser.parse_args(argv)
    if args.engineers < 1 or args.attempts < 1 or min(args.concurrency) < 1:
        parser.error("--engineers, --attempts and --concurrency are at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results("next_item_latency")
    return run_benchmark(lambda workdir: run(args, workdir, results), results, "next-item")


if __name__ == "__main__":
    raise SystemExit(main())
