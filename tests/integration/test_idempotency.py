"""The idempotency store: claim, replay, refuse a different request, release on failure."""

from __future__ import annotations

import asyncio
import uuid

from psycopg_pool import AsyncConnectionPool

from training.infra.database import Database
from training.infra.idempotency import (
    Claimed,
    IdempotencyStore,
    InFlight,
    Mismatch,
    Replay,
    request_fingerprint,
)


async def scenario(database: Database) -> None:
    async with AsyncConnectionPool(database.app_url, min_size=1, max_size=2) as pool:
        store = IdempotencyStore(pool)
        tenant = uuid.uuid4()
        first = request_fingerprint("POST", "/v1/x", b"", b'{"a":1}')
        other = request_fingerprint("POST", "/v1/x", b"", b'{"a":2}')

        assert await store.claim(tenant, "client:a", "k1", first) == Claimed()
        assert await store.claim(tenant, "client:a", "k1", first) == InFlight()
        assert await store.claim(tenant, "client:a", "k1", other) == Mismatch()

        await store.complete(tenant, "client:a", "k1", 201, [("etag", '"1"')], b"{}")
        assert await store.claim(tenant, "client:a", "k1", first) == Replay(
            201, [("etag", '"1"')], b"{}"
        )

        # The same key of another principal is another key.
        assert await store.claim(uuid.uuid4(), "client:b", "k1", first) == Claimed()

        # A failed first attempt releases the key, so the client may retry.
        assert await store.claim(tenant, "client:a", "k2", first) == Claimed()
        await store.release(tenant, "client:a", "k2")
        assert await store.claim(tenant, "client:a", "k2", first) == Claimed()

        # The platform operator's keys live outside every tenant.
        assert await store.claim(None, "operator:op", "k1", first) == Claimed()


def test_claim_replay_mismatch_and_release(database: Database) -> None:
    asyncio.run(scenario(database))


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
