"""Two `serve` processes on one database keep one rate limit between them (issue 14, item 8).

Two apps, each with services of its own (their own buckets, pools and leases: what two
processes hold), serve on loopback against the same database. A caller whose requests
alternate between them is admitted about its limit in all, not its limit from each: the
shared bucket lives in the database, and each process draws tokens from it in blocks
(ADR 0035), so the total may exceed the limit by at most one block per process.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.helpers import PROBLEM, bearer, fetch_token, register_operator
from tests.live_server import LiveServer, live_server
from training.core.http.ratelimit import RateLimit, lease_block
from training.infra.database import Database

PRINCIPAL_LIMIT = RateLimit.parse("64/60")
ANONYMOUS_LIMIT = RateLimit.parse("12/60")
PROCESSES = 2


@dataclass(frozen=True)
class Pair:
    first: LiveServer
    second: LiveServer

    @property
    def both(self) -> tuple[LiveServer, LiveServer]:
        return self.first, self.second


async def answer_at_once(seconds: float) -> None:
    """Refusals to strangers are held back up to a second; not in these tests."""


@pytest.fixture(scope="module")
def pair(database: Database) -> Iterator[Pair]:
    limits = {
        "rate_limit": f"{PRINCIPAL_LIMIT.requests}/{PRINCIPAL_LIMIT.seconds:g}",
        "rate_limit_anonymous": f"{ANONYMOUS_LIMIT.requests}/{ANONYMOUS_LIMIT.seconds:g}",
    }
    with live_server(database, run_projections=False, issuer_on_loopback=True, **limits) as first:
        # The second process verifies the tokens the first one issues: same issuer.
        other = live_server(database, run_projections=False, public_url=first.base_url, **limits)
        with other as second:
            for server in (first, second):
                server.app.state.address_limits.pause = answer_at_once
            yield Pair(first, second)


def allowance(limit: RateLimit, seconds: float) -> int:
    """What a shared bucket may admit from full within ``seconds``: the limit, what refilled
    meanwhile, and one block per process drawn ahead."""
    refilled = math.ceil(seconds * limit.requests / limit.seconds)
    return limit.requests + refilled + PROCESSES * lease_block(limit)


def alternate(pair: Pair, count: int, path: str, headers: dict[str, str]) -> list[httpx.Response]:
    clients = [httpx.Client(base_url=s.base_url, timeout=30.0) for s in pair.both]
    try:
        return [clients[n % 2].get(path, headers=headers) for n in range(count)]
    finally:
        for client in clients:
            client.close()


def assert_refusal(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60


def test_one_client_is_limited_across_both_processes(pair: Pair) -> None:
    with httpx.Client(base_url=pair.first.base_url, timeout=30.0) as http:
        token = fetch_token(http, register_operator(pair.first.services))
    started = time.monotonic()
    # Twice the limit, half to each process: per-process buckets would admit every one.
    answers = alternate(pair, 2 * PRINCIPAL_LIMIT.requests, "/v1/tenants", bearer(token))
    elapsed = time.monotonic() - started
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) == {200, 429}, statuses
    admitted = statuses[200]
    assert admitted <= allowance(PRINCIPAL_LIMIT, elapsed), (admitted, elapsed)
    # Tokens another process drew and has not spent yet are all that may be missing.
    assert admitted >= PRINCIPAL_LIMIT.requests - PROCESSES * lease_block(PRINCIPAL_LIMIT)
    # Both processes refuse, each as the API always does.
    refused_by = {n % 2 for n, answer in enumerate(answers) if answer.status_code == 429}
    assert refused_by == {0, 1}
    for answer in answers:
        if answer.status_code == 429:
            assert_refusal(answer)


def test_an_address_is_limited_across_both_processes(pair: Pair) -> None:
    started = time.monotonic()
    answers = alternate(pair, 2 * ANONYMOUS_LIMIT.requests, "/.well-known/jwks.json", {})
    elapsed = time.monotonic() - started
    admitted = sum(answer.status_code == 200 for answer in answers)
    assert ANONYMOUS_LIMIT.requests <= admitted <= allowance(ANONYMOUS_LIMIT, elapsed)
    refused = [answer for answer in answers if answer.status_code != 200]
    assert refused
    for answer in refused:
        assert_refusal(answer)


def test_failed_authentications_count_across_both_processes(pair: Pair) -> None:
    # Another address than the previous test's: any 127.x.y.z is loopback.
    clients = [
        httpx.Client(
            base_url=s.base_url,
            transport=httpx.HTTPTransport(local_address="127.0.0.81"),
            timeout=30.0,
        )
        for s in pair.both
    ]
    try:
        started = time.monotonic()
        answers = [
            clients[n % 2].get("/v1/tenants", headers=bearer("not-a-token"))
            for n in range(2 * ANONYMOUS_LIMIT.requests)
        ]
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            client.close()
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) == {401, 429}, statuses
    assert ANONYMOUS_LIMIT.requests <= statuses[401] <= allowance(ANONYMOUS_LIMIT, elapsed)
    for answer in answers:
        if answer.status_code == 429:
            assert_refusal(answer)
