"""Authenticated reads while strangers send garbage bearer tokens (issue #11).

Per scenario, on a fresh embedded PostgreSQL behind ``training serve``:

1. an operator client and its access token, fetched from 127.0.0.1;
2. ``--rounds`` rounds of two blocks of ``--reads`` sequential ``GET /v1/tenants`` with that
   token from 127.0.0.1, each read timed on the client: one block alone, one block while
   ``--attackers`` connections from 127.0.0.2 (a different client address: any 127.x.y.z is
   loopback on Linux) send ``GET /v1/tenants`` with garbage bearer tokens, at most
   ``--attack-rate`` requests per second in all (0: as fast as they are answered). The
   blocks alternate so that both see the same noisy neighbours; ``--warmup`` reads first.

A garbage token has a plausible header naming a random kid and a garbage signature; its
claims are alternately random bytes (what an outside probe sent) and made-up JSON claims
with our issuer, which get as far as the key lookup. The attackers run in a process of
their own, so they do not share the measuring client's interpreter (their CPU is reported).

Scenarios: ``limited``, the service's default per-address limits, and ``unlimited`` with the
per-address limit for strangers lifted, so that every garbage token reaches the token
verifier (what the key ring alone costs). ``unlimited`` has a third block per round, under
tokens that name our real kid with made-up claims and a garbage signature: a made-up kid
should cost no more than a bad signature. The per-client limit is lifted in both (the
harness lifts every limit; ``limited`` sets the anonymous one back to the service's default)
so the measuring client itself is never refused; a legitimate read that fails anyway is
counted by status in the errors column. Prints a Markdown report on stdout (progress on
stderr): p50/p99 alone and under garbage, and whether the p99 under garbage stays within 2x
the quiet p99. A measurement, not a test: the exit code is 0 either way. Usage::

    .venv/bin/python scripts/bench/auth_under_garbage.py [--rounds 40] [--reads 25]
        [--warmup 100] [--attackers 6] [--attack-rate 300] [--scenarios limited unlimited]
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import secrets
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import httpx
from harness import (
    HTTP_TIMEOUT,
    Errors,
    RawConnection,
    Results,
    Server,
    Stopwatch,
    Window,
    create_operator_client,
    fetch_token,
    percentile,
    progress,
    report,
    run_benchmark,
    server_postgres_facts,
    serving,
)

from training.infra.settings import Settings

LEGITIMATE_ADDRESS = "127.0.0.1"
ATTACKER_ADDRESS = "127.0.0.2"
READ_PATH = "/v1/tenants"
MAX_RATIO = 2.0
ATTACK_SECONDS_CAP = 1800.0  # the attackers stop by themselves at the latest after this
ATTACK_SETTLE_SECONDS = 0.2  # between switching the attack on or off and measuring

MADE_UP_KID = "made-up kids"
BAD_SIGNATURE = "bad signatures"
# The service's own default for strangers (TRAINING_RATE_LIMIT_ANONYMOUS), which the harness
# lifts for every benchmark and ``limited`` means to meet.
SERVICE_ANONYMOUS_LIMIT = Settings().rate_limit_anonymous


@dataclass(frozen=True)
class Scenario:
    environment: dict[str, str]  # for `training serve`, over the harness's lifted limits
    garbage: tuple[str, ...]  # the kinds of garbage sent, one block each per round


SCENARIOS: dict[str, Scenario] = {
    "limited": Scenario({"TRAINING_RATE_LIMIT_ANONYMOUS": SERVICE_ANONYMOUS_LIMIT}, (MADE_UP_KID,)),
    "unlimited": Scenario({}, (MADE_UP_KID, BAD_SIGNATURE)),
}


def percentile_or_nan(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for a phase in which no read was answered."""
    value = percentile(values, fraction)
    return float("nan") if value is None else value


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def garbage_token(issuer: str, number: int, known_kid: str | None = None) -> str:
    """A made-up kid (claims alternately random bytes and made-up JSON), or with
    ``known_kid`` one of our kids and made-up claims: a bad signature."""
    kid = known_kid or secrets.token_hex(16)
    header = _segment(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": kid}).encode())
    if number % 2 and known_kid is None:
        claims = _segment(secrets.token_bytes(180))
    else:
        made_up = {
            "iss": issuer,
            "aud": ["training-api"],
            "sub": secrets.token_hex(8),
            "client_id": secrets.token_hex(8),
            "exp": 2**31,
        }
        claims = _segment(json.dumps(made_up).encode())
    return f"{header}.{claims}.{_segment(secrets.token_bytes(256))}"


# --- the attackers (a process of their own) ---------------------------------------------------


def attack(
    base_url: str,
    connections: int,
    rate: float,
    known_kid: str | None,
    attacking: EventType,
    stop: EventType,
    results: Any,
) -> None:
    """Sends garbage tokens from ATTACKER_ADDRESS while ``attacking`` is set, until ``stop``
    (or the cap); reports the statuses and its own CPU seconds."""
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + ATTACK_SECONDS_CAP
    interval = connections / rate if rate > 0 else 0.0
    cpu_started = time.process_time()

    def one_connection(number: int) -> None:
        connection: RawConnection | None = None
        sent = 0
        next_at = time.monotonic() + (interval * number / connections)
        while not stop.is_set() and time.monotonic() < deadline:
            if not attacking.wait(0.05):
                next_at = time.monotonic()
                continue
            if interval:
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                next_at += interval
            token = garbage_token(base_url, sent * connections + number, known_kid)
            if not attacking.is_set():  # switched off during the pause
                continue
            try:
                if connection is None:
                    connection = RawConnection(base_url, ATTACKER_ADDRESS)
                    status = str(connection.get(READ_PATH, token))
                else:
                    try:
                        status = str(connection.get(READ_PATH, token))
                    except ConnectionError:
                        # Idle between blocks longer than the server keeps a connection.
                        connection.close()
                        connection = RawConnection(base_url, ATTACKER_ADDRESS)
                        status = str(connection.get(READ_PATH, token))
            except (OSError, ValueError) as error:
                status = type(error).__name__
                if connection is not None:
                    connection.close()
                connection = None
            sent += 1
            with lock:
                statuses[status] += 1
        if connection is not None:
            connection.close()

    threads = [
        threading.Thread(target=one_connection, args=(n,), daemon=True) for n in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put({"statuses": dict(statuses), "cpu": time.process_time() - cpu_started})


@dataclass(frozen=True)
class AttackReport:
    statuses: dict[str, int]
    seconds: float  # switched on
    cpu: float  # the attacker process's, over its whole life

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())


class Attackers:
    """The attacker process: started once per scenario, switched on and off per block."""

    def __init__(
        self, server: Server, connections: int, rate: float, known_kid: str | None = None
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.attacking = context.Event()
        self.stop = context.Event()
        self.results = context.Queue()
        self.process = context.Process(
            target=attack,
            args=(
                server.base_url,
                connections,
                rate,
                known_kid,
                self.attacking,
                self.stop,
                self.results,
            ),
            daemon=True,
        )
        self.process.start()
        self.switched_on = 0.0
        self.seconds_on = 0.0

    def on(self) -> None:
        self.attacking.set()
        self.switched_on = time.perf_counter()

    def off(self) -> None:
        self.attacking.clear()
        self.seconds_on += time.perf_counter() - self.switched_on

    def finish(self) -> AttackReport:
        if self.attacking.is_set():
            self.off()
        self.stop.set()
        outcome = self.results.get(timeout=ATTACK_SECONDS_CAP + 60)
        self.process.join(60)
        return AttackReport(outcome["statuses"], self.seconds_on, outcome["cpu"])


# --- the legitimate reader ----------------------------------------------------------------------


@dataclass
class Phase:
    """All the blocks of one kind in a scenario: latencies, and CPU seconds by party."""

    scenario: str
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: Errors = field(default_factory=Errors)
    seconds: float = 0.0
    cpu_seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    attack: AttackReport | None = None

    def add(self, window: Window, latencies: list[float], errors: Errors) -> None:
        self.latencies += latencies
        self.errors.extend(errors)
        self.seconds += window.seconds
        for party, share in enumerate(window.cpu):
            self.cpu_seconds[party] += share * window.seconds

    def cpu_percent(self, party: int) -> float:
        return 100 * self.cpu_seconds[party] / self.seconds if self.seconds else 0.0


def read_block(
    server: Server, http: httpx.Client, token: str, reads: int
) -> tuple[Window, list[float], Errors]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors = Errors()
    watch = Stopwatch(server.meter)
    for _ in range(reads):
        started = time.perf_counter()
        try:
            response = http.get(READ_PATH, headers=headers)
        except httpx.HTTPError as error:
            errors.add(error)
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            errors.add(response.status_code)
    return watch.stop(), latencies, errors


def run_scenario(scenario: str, args: argparse.Namespace, workdir: Path) -> tuple[list[Phase], str]:
    alone = Phase(scenario, "alone")
    loaded = [Phase(scenario, f"under {kind}") for kind in SCENARIOS[scenario].garbage]
    with (
        serving(workdir, scenario, env=SCENARIOS[scenario].environment) as server,
        httpx.Client(
            base_url=server.base_url,
            transport=httpx.HTTPTransport(local_address=LEGITIMATE_ADDRESS),
            timeout=HTTP_TIMEOUT,
        ) as http,
    ):
        progress(f"{scenario}: serve is up at {server.base_url}")
        token = fetch_token(server, create_operator_client(server))
        [our_kid] = [key["kid"] for key in http.get("/.well-known/jwks.json").json()["keys"]]
        attackers = [
            Attackers(
                server,
                args.attackers,
                args.attack_rate,
                our_kid if kind == BAD_SIGNATURE else None,
            )
            for kind in SCENARIOS[scenario].garbage
        ]
        try:
            read_block(server, http, token, args.warmup)
            for number in range(args.rounds):
                progress(f"{scenario}: round {number + 1} of {args.rounds}")
                alone.add(*read_block(server, http, token, args.reads))
                for phase, attacker in zip(loaded, attackers, strict=True):
                    attacker.on()
                    time.sleep(ATTACK_SETTLE_SECONDS)
                    phase.add(*read_block(server, http, token, args.reads))
                    attacker.off()
                    time.sleep(ATTACK_SETTLE_SECONDS)
        finally:
            for phase, attacker in zip(loaded, attackers, strict=True):
                phase.attack = attacker.finish()
        postgres = server_postgres_facts(server)
    return [alone, *loaded], postgres


def table(phases: list[Phase]) -> list[str]:
    lines = [
        "| scenario | legitimate reads | n | p50 ms | p95 ms | p99 ms | max ms | errors "
        "| garbage sent | answers to garbage | CPU % bench / attackers / serve / pg |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for phase in phases:
        values = phase.latencies
        attack = phase.attack
        if attack is None:
            garbage = "0 | -"
            attacker_cpu = "-"
        else:
            answers = ", ".join(
                f"{status}: {count}" for status, count in sorted(attack.statuses.items())
            )
            garbage = f"{attack.sent} ({attack.sent / attack.seconds:.0f}/s) | {answers}"
            attacker_cpu = f"{100 * attack.cpu / attack.seconds:.0f}"
        lines.append(
            f"| {phase.scenario} | {phase.name} | {len(values)} "
            f"| {percentile_or_nan(values, 0.50):.1f} | {percentile_or_nan(values, 0.95):.1f} "
            f"| {percentile_or_nan(values, 0.99):.1f} | {max(values, default=0):.1f} "
            f"| {phase.errors.summary()} "
            f"| {garbage} | {phase.cpu_percent(0):.0f} / {attacker_cpu} "
            f"/ {phase.cpu_percent(1):.0f} / {phase.cpu_percent(2):.0f} |"
        )
    return lines


def verdicts(phases: list[Phase]) -> list[str]:
    lines = []
    quiet: dict[str, Phase] = {p.scenario: p for p in phases if p.attack is None}
    for loaded in phases:
        if loaded.attack is None:
            continue
        before = percentile_or_nan(quiet[loaded.scenario].latencies, 0.99)
        after = percentile_or_nan(loaded.latencies, 0.99)
        ratio = after / before
        verdict = "within" if ratio <= MAX_RATIO else "NOT within"
        failed = [p.errors.summary() for p in (quiet[loaded.scenario], loaded) if p.errors]
        caveat = f" (legitimate reads failed: {'; '.join(failed)})" if failed else ""
        lines.append(
            f"- {loaded.scenario}: p99 {before:.1f} ms alone, {after:.1f} ms {loaded.name}: "
            f"{ratio:.2f}x, **{verdict}** {MAX_RATIO:g}x{caveat}"
        )
    return lines


def run(args: argparse.Namespace, workdir: Path, results: Results) -> str:
    phases: list[Phase] = []
    postgres = ""
    for scenario in args.scenarios:
        scenario_phases, postgres = run_scenario(scenario, args, workdir)
        phases += scenario_phases
    for phase in phases:
        results.errors.extend(phase.errors)
    rate = f"at most {args.attack_rate:g}/s" if args.attack_rate > 0 else "as fast as answered"
    body = [
        f"Legitimate: {args.rounds} rounds of {args.reads} sequential GET {READ_PATH} alone "
        f"and {args.reads} under garbage, from {LEGITIMATE_ADDRESS} ({args.warmup} warm-up "
        f"reads first); garbage: {args.attackers} connections from {ATTACKER_ADDRESS}, {rate}",
        "",
        *table(phases),
        "",
        *verdicts(phases),
    ]
    return report("Authenticated reads under garbage tokens", body, postgres, results.load_before)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="alone/under-garbage rounds")
    parser.add_argument("--reads", type=int, default=25, help="measured reads per block")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured reads first")
    parser.add_argument("--attackers", type=int, default=6, help="garbage connections")
    parser.add_argument(
        "--attack-rate",
        type=float,
        default=300.0,
        help="garbage requests per second in all; 0: as fast as they are answered",
    )
    parser.add_argument(
        "--scenarios", nargs="+", choices=sorted(SCENARIOS), default=["limited", "unlimited"]
    )
    args = parser.parse_args(argv)
    if min(args.rounds, args.reads, args.attackers) < 1 or min(args.warmup, args.attack_rate) < 0:
        parser.error("--rounds, --reads, --attackers >= 1; --warmup, --attack-rate >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results("auth_under_garbage")
    return run_benchmark(lambda workdir: run(args, workdir, results), results, "auth-garbage")


if __name__ == "__main__":
    raise SystemExit(main())
