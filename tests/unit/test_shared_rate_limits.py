"""Shared buckets drawn in blocks, on an injected clock: how much several processes admit in
all, what is decided from memory, and what happens while the database cannot be reached.

``SharedRow`` keeps the shared buckets the way the database's draw statement does
(``core.rate_limit_store.DRAW``: refill by the time elapsed, cap at the limit, take up to a
block of whole tokens); ``tests/integration/test_rate_limit_store.py`` runs the statement.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from training.core.http.ratelimit import Grant, RateLimit, SharedBuckets, lease_block
from training.core.rate_limit_store import grant_of

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SharedRow:
    """The table, in memory: one bucket per (kind, caller), refilled on the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.rows: dict[tuple[str, str], tuple[float, float]] = {}
        self.draws = 0
        self.up = True

    def online(self) -> bool:
        return self.up

    async def draw(self, bucket: str, key: str, limit: RateLimit, block: int) -> Grant | None:
        if not self.up:
            return None
        self.draws += 1
        now = self.clock()
        capacity, rate = float(limit.requests), limit.requests / limit.seconds
        tokens, updated = self.rows.get((bucket, key), (capacity, now))
        refilled = min(capacity, tokens + rate * max(0.0, now - updated))
        taken = min(block, math.floor(refilled))
        self.rows[bucket, key] = (refilled - taken, now)
        return grant_of(taken, refilled - taken, limit)


def run(step: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(step())


def processes(count: int, limit: RateLimit, row: SharedRow, clock: Clock) -> list[SharedBuckets]:
    return [SharedBuckets("principal", limit, row, clock) for _ in range(count)]


def test_a_block_is_a_sixteenth_of_the_limit_and_at_least_a_token() -> None:
    assert lease_block(RateLimit(1200, 60)) == 75
    assert lease_block(RateLimit(64, 60)) == 4
    assert lease_block(RateLimit(60, 60)) == 3
    assert lease_block(RateLimit(15, 60)) == 1
    assert lease_block(RateLimit(1, 60)) == 1


def test_a_draw_that_takes_nothing_says_when_there_is_a_token_again() -> None:
    limit = RateLimit(60, 60.0)  # one token a second
    assert grant_of(3, 0.4, limit) == Grant(3)
    assert grant_of(0, 0.25, limit) == Grant(0, pytest.approx(0.75))
    assert grant_of(0, 0.0, limit) == Grant(0, pytest.approx(1.0))


def test_a_process_draws_a_block_and_spends_it_from_memory() -> None:
    clock, limit = Clock(), RateLimit(64, 60.0)
    row = SharedRow(clock)
    (buckets,) = processes(1, limit, row, clock)

    async def scenario() -> list[float]:
        return [await buckets.take("client:a") for _ in range(8)]

    assert run(scenario) == [0.0] * 8
    assert row.draws == 2  # 8 requests, blocks of 4
    assert buckets.held("client:a") == 0


def test_processes_together_admit_the_limit_not_the_limit_each() -> None:
    clock, limit = Clock(), RateLimit(64, 60.0)
    row = SharedRow(clock)
    many = processes(3, limit, row, clock)

    async def scenario() -> int:
        answers = [await many[n % 3].take("client:a") for n in range(3 * limit.requests)]
        return sum(wait == 0 for wait in answers)

    admitted = run(scenario)
    # Exact here (a full bucket, no time passing): the shared bucket granted every token.
    assert admitted == limit.requests
    assert sum(b.held("client:a") for b in many) == 0


def test_a_burst_exceeds_the_limit_by_at_most_a_block_per_process() -> None:
    """The one overshoot: tokens a process drew before a pause are still spent after it,
    when the shared bucket has refilled."""
    clock, limit = Clock(), RateLimit(64, 60.0)
    block = lease_block(limit)
    row = SharedRow(clock)
    many = processes(3, limit, row, clock)

    async def scenario() -> int:
        for buckets in many:  # each process draws a block and spends one token of it
            assert await buckets.take("client:a") == 0
        clock.now += limit.seconds - 1  # a pause: the shared bucket is full again
        answers = [await many[n % 3].take("client:a") for n in range(3 * limit.requests)]
        return sum(wait == 0 for wait in answers)

    admitted = run(scenario)
    assert admitted == limit.requests + 3 * (block - 1)
    assert admitted <= limit.requests + 3 * block


def test_over_time_several_processes_admit_the_limits_rate() -> None:
    clock, limit = Clock(), RateLimit(160, 60.0)
    row = SharedRow(clock)
    many = processes(3, limit, row, clock)
    rate = limit.requests / limit.seconds
    step, steps = 0.05, 2400  # 20 requests a second for two minutes, round robin
    started = clock.now

    async def scenario() -> int:
        admitted = 0
        for n in range(steps):
            clock.now = started + n * step
            if await many[n % 3].take("client:a") == 0:
                admitted += 1
            # Never more than one bucket would have granted since the start.
            assert admitted <= limit.requests + rate * (clock.now - started) + 1e-9
        return admitted

    admitted = run(scenario)
    exact = limit.requests + rate * (clock.now - started)
    assert exact - 3 * lease_block(limit) <= admitted <= exact


def test_an_empty_shared_bucket_refuses_from_memory_until_a_token_is_due() -> None:
    clock, limit = Clock(), RateLimit(2, 60.0)  # a token every 30 s, blocks of 1
    row = SharedRow(clock)
    (buckets,) = processes(1, limit, row, clock)

    async def scenario() -> None:
        assert await buckets.take("a") == 0
        assert await buckets.take("a") == 0
        assert await buckets.take("a") == pytest.approx(30.0)
        draws = row.draws
        clock.now += 10
        assert await buckets.take("a") == pytest.approx(20.0)  # no draw: a dictionary lookup
        assert await buckets.wait("a") == pytest.approx(20.0)
        await buckets.charge("a")  # an empty bucket stays empty, not in debt
        assert row.draws == draws
        clock.now += 20.5
        assert await buckets.take("a") == 0  # due: drawn again
        assert row.draws == draws + 1

    run(scenario)


def test_waiting_asks_no_one_for_an_unknown_caller_and_draws_ahead_for_a_charged_one() -> None:
    clock, limit = Clock(), RateLimit(3, 60.0)
    row = SharedRow(clock)
    (buckets,) = processes(1, limit, row, clock)

    async def scenario() -> None:
        assert await buckets.wait("203.0.113.9") == 0.0
        assert row.draws == 0  # a caller with no failures costs a lookup, nothing more
        for _ in range(3):
            assert await buckets.wait("203.0.113.9") == 0.0
            await buckets.charge("203.0.113.9")
        # The fourth attempt learns that the address has used its share, before it is read.
        assert await buckets.wait("203.0.113.9") == pytest.approx(20.0)

    run(scenario)


def test_concurrent_requests_of_one_caller_wait_for_one_draw() -> None:
    clock, limit = Clock(), RateLimit(160, 60.0)
    row = SharedRow(clock)
    release = asyncio.Event()
    calls = 0

    class SlowRow:
        def online(self) -> bool:
            return True

        async def draw(self, bucket: str, key: str, limit: RateLimit, block: int) -> Grant | None:
            nonlocal calls
            calls += 1
            await release.wait()
            return await row.draw(bucket, key, limit, block)

    buckets = SharedBuckets("principal", limit, SlowRow(), clock)

    async def scenario() -> list[float]:
        waiting = [asyncio.ensure_future(buckets.take("client:a")) for _ in range(10)]
        await asyncio.sleep(0)
        release.set()
        return list(await asyncio.gather(*waiting))

    assert run(scenario) == [0.0] * 10
    assert calls == 1  # one block of 10 served them all


def test_without_the_database_each_process_limits_on_its_own() -> None:
    clock, limit = Clock(), RateLimit(3, 60.0)
    row = SharedRow(clock)
    row.up = False
    (buckets,) = processes(1, limit, row, clock)

    async def scenario() -> None:
        assert [await buckets.take("a") for _ in range(3)] == [0.0] * 3
        assert await buckets.take("a") == pytest.approx(20.0)  # this process's own bucket
        assert await buckets.wait("a") == pytest.approx(20.0)
        assert row.draws == 0
        row.up = True
        assert await buckets.take("b") == 0.0
        assert row.draws == 1  # back to the shared bucket

    run(scenario)


def test_without_a_source_the_buckets_are_this_processes() -> None:
    clock, limit = Clock(), RateLimit(2, 60.0)
    buckets = SharedBuckets("principal", limit, None, clock)

    async def scenario() -> list[float]:
        return [await buckets.take("a") for _ in range(3)]

    answers = run(scenario)
    assert answers[:2] == [0.0, 0.0]
    assert answers[2] == pytest.approx(30.0)


def test_leases_idle_for_a_window_are_forgotten() -> None:
    clock, limit = Clock(), RateLimit(160, 60.0)
    row = SharedRow(clock)
    (buckets,) = processes(1, limit, row, clock)

    async def scenario() -> None:
        for caller in range(1000):
            await buckets.take(f"client:{caller}")
        assert len(buckets) == 1000
        clock.now += 30
        await buckets.take("late")
        assert len(buckets) == 1001
        clock.now += 30
        await buckets.take("late")
        assert len(buckets) == 1

    run(scenario)
