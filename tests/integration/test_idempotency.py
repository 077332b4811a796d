"""The idempotency store: claim, replay, refuse a different request, release on failure;
responses sealed and bound to their row; records expire and are purged; a claim whose process
is gone is taken over at once, and a command an earlier attempt stored is answered, not run
again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg
from psycopg_pool import AsyncConnectionPool

from tests import waiting
from tests.helpers import system_context
from training.bootstrap import command_bus, training_application
from training.core.command_outcomes import IdempotentRequest, record_command_outcome
from training.core.idempotency import commands_of_request
from training.core.idempotency_store import (
    Claimed,
    ExpiredRecordsPurge,
    IdempotencyStore,
    InFlight,
    Mismatch,
    Replay,
    Unreadable,
    request_fingerprint,
)
from training.core.read_store import LIVENESS_LOCK_SPACE, ProcessLiveness
from training.infra.database import Database
from training.infra.secretbox import SecretBox
from training.tenancy.handlers import RegisterApiClient, RegisterTenant

BOX = SecretBox(b"k" * 32)
FIRST = request_fingerprint("POST", "/v1/x", b"", b'{"a":1}')
OTHER = request_fingerprint("POST", "/v1/x", b"", b'{"a":2}')
SECRET_BODY = b'{"client_id":"tc_1","client_secret":"very-secret-value-123"}'


@asynccontextmanager
async def app_pool(database: Database) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(database.app_url, min_size=1, max_size=2) as pool:
        yield pool


@asynccontextmanager
async def process(database: Database) -> AsyncIterator[ProcessLiveness]:
    """The liveness session of one process of the service."""
    liveness = ProcessLiveness(database.app_url)
    try:
        yield liveness
    finally:
        await liveness.close()


async def dies(liveness: ProcessLiveness, database: Database) -> None:
    """The process dies: its session closes, and PostgreSQL ends it, releasing its lock. The
    server ends a closed session a moment after the client has gone, not at once."""
    key = await liveness.key()
    await liveness.close()

    def released() -> bool:
        with psycopg.connect(database.admin_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = %s AND objid = %s",
                (LIVENESS_LOCK_SPACE, key),
            ).fetchone()
        return row == (0,)

    await asyncio.to_thread(waiting.wait_until, released, 10, "the closed session's lock to go")


def claimed(result: object) -> IdempotentRequest:
    assert isinstance(result, Claimed), result
    return result.request


def stored_rows(database: Database, principal: str) -> list[tuple[str, bytes | None]]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT key, response_body FROM training.idempotency_keys WHERE principal = %s "
            "ORDER BY key",
            (principal,),
        ).fetchall()
    return [(str(key), bytes(body) if body is not None else None) for key, body in rows]


async def scenario(database: Database) -> None:
    async with app_pool(database) as pool, process(database) as liveness:
        store = IdempotencyStore(pool, BOX, liveness)
        tenant = uuid.uuid4()

        claimed(await store.claim(tenant, "client:a", "k1", FIRST))
        assert await store.claim(tenant, "client:a", "k1", FIRST) == InFlight()
        assert await store.claim(tenant, "client:a", "k1", OTHER) == Mismatch()

        await store.complete(tenant, "client:a", "k1", 201, [("etag", '"1"')], b"{}")
        assert await store.claim(tenant, "client:a", "k1", FIRST) == Replay(
            201, [("etag", '"1"')], b"{}"
        )

        # The same key of another principal is another key.
        claimed(await store.claim(uuid.uuid4(), "client:b", "k1", FIRST))

        # A failed first attempt releases the key, so the client may retry.
        claimed(await store.claim(tenant, "client:a", "k2", FIRST))
        await store.release(tenant, "client:a", "k2")
        claimed(await store.claim(tenant, "client:a", "k2", FIRST))

        # The platform operator's keys live outside every tenant.
        claimed(await store.claim(None, "operator:op", "k1", FIRST))


def test_claim_replay_mismatch_and_release(database: Database) -> None:
    asyncio.run(scenario(database))


async def sealed_scenario(database: Database) -> None:
    async with app_pool(database) as pool, process(database) as liveness:
        store = IdempotencyStore(pool, BOX, liveness)
        tenant = uuid.uuid4()
        for key in ("s1", "s2"):
            claimed(await store.claim(tenant, "client:sealed", key, FIRST))
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
        other = IdempotencyStore(pool, SecretBox(b"o" * 32), liveness)
        assert await other.claim(tenant, "client:sealed", "s1", FIRST) == Unreadable()


def test_stored_responses_are_sealed_and_bound_to_their_row(database: Database) -> None:
    asyncio.run(sealed_scenario(database))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def expiry_scenario(database: Database) -> None:
    async with app_pool(database) as pool, process(database) as liveness:
        clock = Clock(datetime.now(UTC))
        store = IdempotencyStore(pool, BOX, liveness, ttl=timedelta(hours=24), clock=clock)
        tenant = uuid.uuid4()
        claimed(await store.claim(tenant, "client:ttl", "k", FIRST))
        await store.complete(tenant, "client:ttl", "k", 201, [], b'{"n":1}')
        clock.now += timedelta(hours=23, minutes=59)
        assert await store.claim(tenant, "client:ttl", "k", FIRST) == Replay(201, [], b'{"n":1}')
        # A day later the record is expired: never replayed, even though nothing purged it.
        clock.now += timedelta(minutes=2)
        assert len(stored_rows(database, "client:ttl")) == 1
        claimed(await store.claim(tenant, "client:ttl", "k", FIRST))
        # Another request may now use the key (the expired record does not refuse it).
        clock.now += timedelta(days=2)
        claimed(await store.claim(tenant, "client:ttl", "k", OTHER))

        # The window is configurable.
        short = IdempotencyStore(pool, BOX, liveness, ttl=timedelta(seconds=30), clock=clock)
        claimed(await short.claim(tenant, "client:ttl", "short", FIRST))
        await short.complete(tenant, "client:ttl", "short", 200, [], b"{}")
        clock.now += timedelta(seconds=31)
        claimed(await short.claim(tenant, "client:ttl", "short", FIRST))


def test_an_expired_record_is_never_replayed(database: Database) -> None:
    asyncio.run(expiry_scenario(database))


class LastEvent:
    originator_id = uuid.uuid4()
    originator_version = 1


async def write_records(database: Database, ages: dict[str, timedelta]) -> None:
    async with app_pool(database) as pool, process(database) as liveness:
        for key, age in ages.items():
            clock = Clock(datetime.now(UTC) - age)
            store = IdempotencyStore(pool, BOX, liveness, clock=clock)
            tenant = uuid.uuid4()
            request = claimed(await store.claim(tenant, "client:purge", key, FIRST))
            with psycopg.connect(database.app_url) as conn, conn.cursor() as cur:
                record_command_outcome(cur, request.marker(1, None, LastEvent()))
            await store.complete(tenant, "client:purge", key, 201, [], b"{}")
        operator = IdempotencyStore(
            pool, BOX, liveness, clock=Clock(datetime.now(UTC) - timedelta(days=3))
        )
        claimed(await operator.claim(None, "operator:purge", "old", FIRST))


wait_until = partial(waiting.wait_until, timeout=10.0)


def test_expired_records_are_purged_in_the_background(database: Database) -> None:
    day = timedelta(days=1)
    ages = {"fresh": timedelta(0), "old-1": 2 * day, "old-2": 3 * day, "old-3": 25 * day / 24}
    asyncio.run(write_records(database, ages))
    purge = ExpiredRecordsPurge(database.worker_url, batch=2)  # several batches
    assert purge.purge() == 4  # three of tenants, one of the operator
    assert [key for key, _ in stored_rows(database, "client:purge")] == ["fresh"]
    assert stored_rows(database, "operator:purge") == []
    with psycopg.connect(database.admin_url) as conn:
        outcomes = conn.execute(
            "SELECT key FROM training.command_outcomes WHERE principal = 'client:purge'"
        ).fetchall()
    assert outcomes == [("fresh",)]  # the outcomes expire with their record

    asyncio.run(write_records(database, {"old-4": 2 * day}))
    background = ExpiredRecordsPurge(database.worker_url, interval=0.05)
    background.start()
    try:
        wait_until(lambda: [k for k, _ in stored_rows(database, "client:purge")] == ["fresh"])
    finally:
        background.stop()
    assert background.purged == 2


async def erasure_scenario(database: Database) -> int:
    async with app_pool(database) as pool, process(database) as liveness:
        store = IdempotencyStore(pool, BOX, liveness)
        tenant, other_tenant = uuid.uuid4(), uuid.uuid4()
        bodies = {
            (tenant, "names-her"): b'{"display_name":"Erin Erased"}',
            (tenant, "names-nobody"): b'{"display_name":"Kim Kept"}',
            (other_tenant, "names-her-elsewhere"): b'{"display_name":"Erin Erased"}',
        }
        for (tenant_id, key), body in bodies.items():
            request = claimed(await store.claim(tenant_id, "client:erase", key, FIRST))
            await store.complete(tenant_id, "client:erase", key, 201, [], body)
            # The outcome of the request's command, as the recorder writes it.
            marker = request.marker(1, {"display_name": body[17:-2].decode()}, LastEvent())
            with psycopg.connect(database.app_url) as conn, conn.cursor() as cur:
                record_command_outcome(cur, marker)
        # A claim still running has no body yet: nothing to search.
        claimed(await store.claim(tenant, "client:erase", "running", FIRST))
        assert await store.forget_mentions(tenant, []) == 0
        return await store.forget_mentions(tenant, ["Erin Erased", ""])


def test_forget_mentions_searches_the_sealed_responses(database: Database) -> None:
    assert asyncio.run(erasure_scenario(database)) == 1
    with psycopg.connect(database.admin_url) as conn:
        outcomes = conn.execute(
            "SELECT key FROM training.command_outcomes WHERE principal = 'client:erase' "
            "ORDER BY key"
        ).fetchall()
    assert outcomes == [("names-her-elsewhere",), ("names-nobody",)]
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


async def takeover_scenario(database: Database) -> None:
    async with app_pool(database) as pool, process(database) as survivor:
        gone = ProcessLiveness(database.app_url)
        first = IdempotencyStore(pool, BOX, gone)
        second = IdempotencyStore(pool, BOX, survivor)
        tenant = uuid.uuid4()
        claimed(await first.claim(tenant, "client:crash", "k", FIRST))
        # While the first process lives, its claim is in flight, for any other process.
        assert await second.claim(tenant, "client:crash", "k", FIRST) == InFlight()
        assert await first.claim(tenant, "client:crash", "k", FIRST) == InFlight()
        await dies(gone, database)
        request = claimed(await second.claim(tenant, "client:crash", "k", FIRST))
        assert request.recorded_outcomes == {}
        with psycopg.connect(database.admin_url) as conn:
            owner = conn.execute(
                "SELECT owner FROM training.idempotency_keys WHERE principal = 'client:crash'"
            ).fetchone()
        assert owner == (await survivor.key(),)
        # The new owner's claim is in flight again for everyone else.
        assert await second.claim(tenant, "client:crash", "k", FIRST) == InFlight()


def test_a_claim_whose_process_is_gone_is_taken_over_at_once(database: Database) -> None:
    asyncio.run(takeover_scenario(database))


def registrations(database: Database) -> int:
    """API clients registered so far (events)."""
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM training.training_events WHERE topic LIKE %s",
            ("%ApiClient.Registered",),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def recorded_scenario(database: Database) -> None:
    app = training_application(database)
    bus = command_bus(app)
    try:
        tenant = bus.execute(system_context(), RegisterTenant("idem-crash", "Crash", 5)).result
        command = RegisterApiClient(tenant.tenant_id, "HRIS", ("tenant:read",))
        async with app_pool(database) as pool, process(database) as survivor:
            gone = ProcessLiveness(database.app_url)
            first = claimed(
                await IdempotencyStore(pool, BOX, gone).claim(None, "operator:o", "c", FIRST)
            )
            with commands_of_request(first):
                original = bus.execute(system_context(), command)
            assert first.committed == 1
            await dies(gone, database)  # after the commit, before storing the response
            before = registrations(database)

            retry = claimed(
                await IdempotencyStore(pool, BOX, survivor).claim(None, "operator:o", "c", FIRST)
            )
            assert retry.recorded_outcomes == {1: original}
            with commands_of_request(retry):
                answered = bus.execute(system_context(), command)
            assert answered == original  # the same client, secret included, and position
            assert retry.replayed == 1
            assert registrations(database) == before

            # Two attempts at once (a liveness session lost while its request still ran):
            # the second recording breaks the outcome's key, and the command answers the
            # outcome recorded first; its events are not stored.
            racing = IdempotentRequest(
                BOX, database.app_url, None, "operator:o", "c", FIRST, retry.expires_at
            )
            with commands_of_request(racing):
                raced = bus.execute(system_context(), command)
            assert raced == original
            assert registrations(database) == before
    finally:
        app.close()
    with psycopg.connect(database.admin_url) as conn:
        stored = conn.execute(
            "SELECT seq, outcome FROM training.command_outcomes WHERE principal = 'operator:o'"
        ).fetchall()
    assert [seq for seq, _ in stored] == [1]
    assert original.result.client_secret.encode() not in bytes(stored[0][1])


def test_a_command_an_earlier_attempt_stored_is_answered_not_run_again(
    database: Database,
) -> None:
    asyncio.run(recorded_scenario(database))


async def released_scenario(database: Database) -> None:
    app = training_application(database)
    bus = command_bus(app)
    try:
        tenant = bus.execute(system_context(), RegisterTenant("idem-reuse", "Reuse", 5)).result
        command = RegisterApiClient(tenant.tenant_id, "HRIS", ("tenant:read",))
        async with app_pool(database) as pool, process(database) as liveness:
            store = IdempotencyStore(pool, BOX, liveness)
            first = claimed(await store.claim(None, "operator:r", "k", FIRST))
            with commands_of_request(first):
                original = bus.execute(system_context(), command)
            # The request failed after its command committed (a 5xx): its claim is freed and
            # what the command did stays recorded for a retry.
            await store.release(None, "operator:r", "k")

            # The same key with another request is a new request: nothing is replayed to it.
            other = claimed(await store.claim(None, "operator:r", "k", OTHER))
            assert other.recorded_outcomes == {}
            with commands_of_request(other):
                answered = bus.execute(system_context(), command)
            assert answered.result.client_id != original.result.client_id
            await store.release(None, "operator:r", "k")

            # A retry of the first request is still answered with its own outcome, never
            # with the other request's.
            retry = claimed(await store.claim(None, "operator:r", "k", FIRST))
            assert retry.recorded_outcomes == {1: original}
    finally:
        app.close()


def test_a_key_reused_for_another_request_is_not_answered_with_the_first_ones_outcome(
    database: Database,
) -> None:
    asyncio.run(released_scenario(database))
