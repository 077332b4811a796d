"""The idempotency store: claim, replay, refuse a different request, release on failure;
responses sealed and bound to their row; records expire and are purged."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg_pool import AsyncConnectionPool

from training.infra.database import Database
from training.infra.idempotency import (
    Claimed,
    ExpiredRecordsPurge,
    IdempotencyStore,
    InFlight,
    Mismatch,
    Replay,
    Unreadable,
    request_fingerprint,
)
from training.infra.secretbox import SecretBox

BOX = SecretBox(b"k" * 32)
FIRST = request_fingerprint("POST", "/v1/x", b"", b'{"a":1}')
OTHER = request_fingerprint("POST", "/v1/x", b"", b'{"a":2}')
SECRET_BODY = b'{"client_id":"tc_1","client_secret":"very-secret-value-123"}'


@asynccontextmanager
async def app_pool(database: Database) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(database.app_url, min_size=1, max_size=2) as pool:
        yield pool


def stored_rows(database: Database, principal: str) -> list[tuple[str, bytes | None]]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT key, response_body FROM training.idempotency_keys WHERE principal = %s "
            "ORDER BY key",
            (principal,),
        ).fetchall()
    return [(str(key), bytes(body) if body is not None else None) for key, body in rows]


async def scenario(database: Database) -> None:
    async with app_pool(database) as pool:
        store = IdempotencyStore(pool, BOX)
        tenant = uuid.uuid4()

        assert await store.claim(tenant, "client:a", "k1", FIRST) == Claimed()
        assert await store.claim(tenant, "client:a", "k1", FIRST) == InFlight()
        assert await store.claim(tenant, "client:a", "k1", OTHER) == Mismatch()

        await store.complete(tenant, "client:a", "k1", 201, [("etag", '"1"')], b"{}")
        assert await store.claim(tenant, "client:a", "k1", FIRST) == Replay(
            201, [("etag", '"1"')], b"{}"
        )

        # The same key of another principal is another key.
        assert await store.claim(uuid.uuid4(), "client:b", "k1", FIRST) == Claimed()

        # A failed first attempt releases the key, so the client may retry.
        assert await store.claim(tenant, "client:a", "k2", FIRST) == Claimed()
        await store.release(tenant, "client:a", "k2")
        assert await store.claim(tenant, "client:a", "k2", FIRST) == Claimed()

        # The platform operator's keys live outside every tenant.
        assert await store.claim(None, "operator:op", "k1", FIRST) == Claimed()


def test_claim_replay_mismatch_and_release(database: Database) -> None:
    asyncio.run(scenario(database))


async def sealed_scenario(database: Database) -> None:
    async with app_pool(database) as pool:
        store = IdempotencyStore(pool, BOX)
        tenant = uuid.uuid4()
        for key in ("s1", "s2"):
            assert await store.claim(tenant, "client:sealed", key, FIRST) == Claimed()
            await store.complete(tenant, "client:sealed", key, 201, [], SECRET_BODY)
        rows = stored_rows(database, "client:sealed")
        assert [key for key, _ in rows] == ["s1", "s2"]
        for _, body in rows:
            assert body is not None
            assert b"very-secret-value-123" not in body
            assert b"client_secret" not in body
        # The replay opens it again.
        assert await store.claim(tenant, "client:sealed", "s1", FIRST) == Replay(
            201, [], SECRET_BODY
        )
        # A body copied into another row does not open there: the row is its associated data.
        with psycopg.connect(database.admin_url) as conn:
            conn.execute(
                "UPDATE training.idempotency_keys SET response_body = %s "
                "WHERE principal = 'client:sealed' AND key = 's2'",
                (rows[0][1],),
            )
        assert await store.claim(tenant, "client:sealed", "s2", FIRST) == Unreadable()
        # Under another secret key nothing opens either.
        other = IdempotencyStore(pool, SecretBox(b"o" * 32))
        assert await other.claim(tenant, "client:sealed", "s1", FIRST) == Unreadable()


def test_stored_responses_are_sealed_and_bound_to_their_row(database: Database) -> None:
    asyncio.run(sealed_scenario(database))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def expiry_scenario(database: Database) -> None:
    async with app_pool(database) as pool:
        clock = Clock(datetime.now(UTC))
        store = IdempotencyStore(pool, BOX, ttl=timedelta(hours=24), clock=clock)
        tenant = uuid.uuid4()
        assert await store.claim(tenant, "client:ttl", "k", FIRST) == Claimed()
        await store.complete(tenant, "client:ttl", "k", 201, [], b'{"n":1}')
        clock.now += timedelta(hours=23, minutes=59)
        assert await store.claim(tenant, "client:ttl", "k", FIRST) == Replay(201, [], b'{"n":1}')
        # A day later the record is expired: never replayed, even though nothing purged it.
        clock.now += timedelta(minutes=2)
        assert len(stored_rows(database, "client:ttl")) == 1
        assert await store.claim(tenant, "client:ttl", "k", FIRST) == Claimed()
        # Another request may now use the key (the expired record does not refuse it).
        clock.now += timedelta(days=2)
        assert await store.claim(tenant, "client:ttl", "k", OTHER) == Claimed()

        # The window is configurable.
        short = IdempotencyStore(pool, BOX, ttl=timedelta(seconds=30), clock=clock)
        assert await short.claim(tenant, "client:ttl", "short", FIRST) == Claimed()
        await short.complete(tenant, "client:ttl", "short", 200, [], b"{}")
        clock.now += timedelta(seconds=31)
        assert await short.claim(tenant, "client:ttl", "short", FIRST) == Claimed()


def test_an_expired_record_is_never_replayed(database: Database) -> None:
    asyncio.run(expiry_scenario(database))


async def write_records(database: Database, ages: dict[str, timedelta]) -> None:
    async with app_pool(database) as pool:
        for key, age in ages.items():
            clock = Clock(datetime.now(UTC) - age)
            store = IdempotencyStore(pool, BOX, clock=clock)
            tenant = uuid.uuid4()
            assert await store.claim(tenant, "client:purge", key, FIRST) == Claimed()
            await store.complete(tenant, "client:purge", key, 201, [], b"{}")
        operator = IdempotencyStore(pool, BOX, clock=Clock(datetime.now(UTC) - timedelta(days=3)))
        assert await operator.claim(None, "operator:purge", "old", FIRST) == Claimed()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_expired_records_are_purged_in_the_background(database: Database) -> None:
    day = timedelta(days=1)
    ages = {"fresh": timedelta(0), "old-1": 2 * day, "old-2": 3 * day, "old-3": 25 * day / 24}
    asyncio.run(write_records(database, ages))
    purge = ExpiredRecordsPurge(database.worker_url, batch=2)  # several batches
    assert purge.purge() == 4  # three of tenants, one of the operator
    assert [key for key, _ in stored_rows(database, "client:purge")] == ["fresh"]
    assert stored_rows(database, "operator:purge") == []

    asyncio.run(write_records(database, {"old-4": 2 * day}))
    background = ExpiredRecordsPurge(database.worker_url, interval=0.05)
    background.start()
    try:
        wait_until(lambda: [k for k, _ in stored_rows(database, "client:purge")] == ["fresh"])
    finally:
        background.stop()
    assert background.purged == 2


async def erasure_scenario(database: Database) -> int:
    async with app_pool(database) as pool:
        store = IdempotencyStore(pool, BOX)
        tenant, other_tenant = uuid.uuid4(), uuid.uuid4()
        bodies = {
            (tenant, "names-her"): b'{"display_name":"Erin Erased"}',
            (tenant, "names-nobody"): b'{"display_name":"Kim Kept"}',
            (other_tenant, "names-her-elsewhere"): b'{"display_name":"Erin Erased"}',
        }
        for (tenant_id, key), body in bodies.items():
            assert await store.claim(tenant_id, "client:erase", key, FIRST) == Claimed()
            await store.complete(tenant_id, "client:erase", key, 201, [], body)
        # A claim still running has no body yet: nothing to search.
        assert await store.claim(tenant, "client:erase", "running", FIRST) == Claimed()
        assert await store.forget_mentions(tenant, []) == 0
        return await store.forget_mentions(tenant, ["Erin Erased", ""])


def test_forget_mentions_searches_the_sealed_responses(database: Database) -> None:
    assert asyncio.run(erasure_scenario(database)) == 1
    assert [key for key, _ in stored_rows(database, "client:erase")] == [
        "names-her-elsewhere",
        "names-nobody",
        "running",
    ]


def test_the_fingerprint_covers_method_path_query_and_body() -> None:
    base = request_fingerprint("POST", "/a", b"q=1", b"{}")
    assert base != request_fingerprint("PUT", "/a", b"q=1", b"{}")
    assert base != request_fingerprint("POST", "/b", b"q=1", b"{}")
    assert base != request_fingerprint("POST", "/a", b"q=2", b"{}")
    assert base != request_fingerprint("POST", "/a", b"q=1", b"[]")
    # Length-prefixed parts: moving bytes between parts changes the fingerprint.
    assert request_fingerprint("POST", "/ab", b"", b"") != request_fingerprint(
        "POST", "/a", b"b", b""
    )
