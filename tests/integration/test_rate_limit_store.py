"""The shared rate-limit buckets in PostgreSQL: the draw statement's arithmetic, rows named by
an HMAC only, the purge of idle rows, and a database that cannot be reached."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from structlog.testing import capture_logs

from tests.conftest import make_settings
from training.core.http.ratelimit import Grant, RateLimit, SharedBuckets
from training.core.rate_limit_store import SharedBucketStore, draw_pool
from training.infra.database import Database
from training.infra.secretbox import SecretBox

T = TypeVar("T")
SECRET = SecretBox.from_settings(make_settings()).derive("rate-limits")


def run(step: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(step())


@asynccontextmanager
async def store_on(
    database: Database, secret: bytes = SECRET, **options: Any
) -> AsyncIterator[SharedBucketStore]:
    store = SharedBucketStore(draw_pool(database.app_url), secret, **options)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def rows(database: Database) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "SELECT bucket, key, tokens, granted FROM training.rate_limit_buckets ORDER BY 1, 2"
        ).fetchall()


def clear(database: Database) -> None:
    with psycopg.connect(database.admin_url) as conn:
        conn.execute("DELETE FROM training.rate_limit_buckets")


def test_a_draw_takes_up_to_a_block_until_the_bucket_is_empty(database: Database) -> None:
    clear(database)
    limit = RateLimit(10, 60.0)

    async def scenario() -> list[Grant | None]:
        async with store_on(database) as store:
            return [await store.draw("principal", "client:a", limit, 4) for _ in range(4)]

    first, second, third, fourth = run(scenario)
    assert (first, second) == (Grant(4), Grant(4))
    assert third == Grant(2)  # what was left, less than a block
    assert fourth is not None
    assert fourth.tokens == 0
    # Nothing left: the next token is due in about 6 s (10 a minute), less what refilled.
    assert 5.0 < fourth.wait <= 6.0


def test_the_bucket_refills_by_the_databases_clock(database: Database) -> None:
    clear(database)
    limit = RateLimit(4, 2.0)  # a token every 500 ms

    async def scenario() -> tuple[list[Grant | None], float, float]:
        async with store_on(database) as store:
            started = time.monotonic()
            grants = [await store.draw("token", "203.0.113.9", limit, 4) for _ in range(2)]
            between = time.monotonic() - started
            await asyncio.sleep(0.6)
            grants.append(await store.draw("token", "203.0.113.9", limit, 4))
            return grants, between, time.monotonic() - started

    (first, emptied, refilled), between, total = run(scenario)
    assert first == Grant(4)
    assert emptied is not None
    assert refilled is not None
    # What refilled between the draws, and no more: whole tokens of 500 ms each.
    assert emptied.tokens <= math.floor(between / 0.5)
    if emptied.tokens == 0:
        assert 0 < emptied.wait <= 0.5
    assert 1 <= refilled.tokens <= min(4, math.ceil(total / 0.5)) - emptied.tokens


def test_rows_hold_an_hmac_of_the_caller_and_nothing_else(database: Database) -> None:
    clear(database)
    limit = RateLimit(100, 60.0)
    callers = [("anonymous", "198.51.100.23"), ("principal", "member:4b6f1d0e")]

    async def scenario() -> None:
        async with store_on(database) as store:
            for bucket, caller in callers:
                await store.draw(bucket, caller, limit, 6)
        async with store_on(database, secret=b"another service's key" * 2) as other:
            await other.draw("anonymous", "198.51.100.23", limit, 6)

    run(scenario)
    stored = rows(database)
    assert len(stored) == 3  # another secret names the same caller by another row
    for _, key, _, _ in stored:
        assert len(bytes(key)) == 32
    text = repr(stored)
    for _, caller in callers:
        assert caller not in text
        assert caller.encode() not in b"".join(bytes(row[1]) for row in stored)
    with psycopg.connect(database.admin_url) as conn:
        persistence = conn.execute(
            "SELECT relpersistence FROM pg_class WHERE oid = 'training.rate_limit_buckets'::regclass"
        ).fetchone()
    assert persistence == ("u",)  # unlogged: a crash refills the buckets


def test_two_processes_draw_from_one_row(database: Database) -> None:
    clear(database)
    limit = RateLimit(20, 60.0)

    async def scenario() -> int:
        async with store_on(database) as first, store_on(database) as second:
            many = [
                SharedBuckets("principal", limit, source, time.monotonic)
                for source in (first, second)
            ]
            answers = [await many[n % 2].take("client:a") for n in range(60)]
        return sum(wait == 0 for wait in answers)

    assert run(scenario) == limit.requests  # blocks of 1: exact


def test_rows_idle_for_their_window_are_purged(database: Database) -> None:
    clear(database)
    limit = RateLimit(5, 60.0)

    async def scenario() -> int:
        async with store_on(database) as store:
            for caller in ("a", "b", "c"):
                await store.draw("anonymous", caller, limit, 1)
            with psycopg.connect(database.admin_url) as conn:  # two of them idle for a window
                conn.execute(
                    "UPDATE training.rate_limit_buckets SET updated_at = now() - interval '61 s' "
                    "WHERE key IN (%s, %s)",
                    (store.row_key("anonymous", "a"), store.row_key("anonymous", "b")),
                )
            return await store.purge()

    assert run(scenario) == 2
    assert len(rows(database)) == 1


def test_an_unreachable_database_falls_back_to_the_process_and_is_logged_once(
    database: Database,
) -> None:
    now = [1000.0]
    limit = RateLimit(2, 60.0)

    async def scenario() -> list[float]:
        # A pool that was never opened: every draw fails at once, as a dead server's would.
        pool = AsyncConnectionPool(database.app_url, open=False)
        store = SharedBucketStore(pool, SECRET, clock=lambda: now[0], offline_pause=5.0)
        buckets = SharedBuckets("principal", limit, store, lambda: now[0])
        with capture_logs() as logs:
            answers = [await buckets.take("client:a") for _ in range(3)]
            assert store.failures == 1  # then draws pause: no connection attempt per request
            now[0] += 5.0
            answers.append(await buckets.take("client:b"))
            assert store.failures == 2
        warnings = [log for log in logs if log["event"] == "rate_limits.shared_unavailable"]
        assert len(warnings) == 1
        assert warnings[0]["error"]
        return answers

    answers = run(scenario)
    assert answers[:2] == [0.0, 0.0]
    assert answers[2] == pytest.approx(30.0)  # this process's own bucket refused it
    assert answers[3] == 0.0
