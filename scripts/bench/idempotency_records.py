"""Idempotency records: what sealing the stored responses costs, what an erasure search over
sealed responses costs, and how fast the purge deletes expired records.

On a throw-away embedded PostgreSQL it measures, in one process a moment apart:

* a claim and a completion of a 600-byte response through ``IdempotencyStore`` (two
  transactions, what every POST with an ``Idempotency-Key`` adds), against sealing and
  opening the same body alone (AES-256-GCM): the share of the record's cost that sealing is;
* ``forget_mentions`` over a tenant's stored responses (each one opened and searched);
* ``ExpiredRecordsPurge.purge`` of expired records, as the worker role, 1,000 per statement;
* a command through the command bus (registering an API client, one event), plain and with
  its outcome recorded in its transaction (what a command of a request with an
  ``Idempotency-Key`` adds: pickling and sealing the result, one more insert), interleaved.

It prints a Markdown table. Usage::

    .venv/bin/python scripts/bench/idempotency_records.py [--records 500] [--erasure 10000]
        [--commands 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import tempfile
import time
import timeit
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from training.bootstrap import command_bus, training_application
from training.core.command_outcomes import IdempotentRequest, sealing_context
from training.core.context import CommandContext
from training.core.idempotency import commands_of_request
from training.core.idempotency_store import (
    ExpiredRecordsPurge,
    IdempotencyStore,
    request_fingerprint,
)
from training.core.read_store import ProcessLiveness
from training.infra.database import Database, database_for
from training.infra.migrations import migrate
from training.infra.secretbox import SecretBox
from training.infra.settings import Settings
from training.tenancy.handlers import RegisterApiClient, RegisterTenant

BODY = (
    b'{"client_id":"tc_0123456789abcdef","client_secret":"'
    + b"s" * 43
    + b'","tenant_id":"6f1c2a9e-0c4b-4bd4-9d0e-1d2f3a4b5c6d","scopes":["tenant:read",'
    + b'"members:read","members:write"],"token_endpoint":"https://training.example/oauth2/token"'
    + b',"name":"'
    + b"x" * 330
    + b'"}'
)


@contextmanager
def fresh_database() -> Iterator[Database]:
    data_dir = Path(tempfile.mkdtemp(prefix="training-bench-idempotency-"))
    try:
        settings = Settings(data_dir=data_dir, secret_key=None, environment="test")
        with database_for(settings) as database:
            migrate(database.admin_url)
            yield database
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def stored(
    database: Database, box: SecretBox, tenant: uuid.UUID, count: int, *, age: timedelta
) -> float:
    """Claims and completes ``count`` records; answers the mean milliseconds per record."""
    fingerprint = request_fingerprint("POST", "/v1/x", b"", BODY)
    clock_now = datetime.now(UTC) - age
    liveness = ProcessLiveness(database.app_url)
    async with AsyncConnectionPool(database.app_url, min_size=1, max_size=1) as pool:
        store = IdempotencyStore(pool, box, liveness, clock=lambda: clock_now)
        started = time.perf_counter()
        for n in range(count):
            key = f"k-{uuid.uuid4().hex}-{n}"
            await store.claim(tenant, "client:bench", key, fingerprint)
            await store.complete(tenant, "client:bench", key, 201, [], BODY)
        elapsed = time.perf_counter() - started
    await liveness.close()
    return elapsed / count * 1000


async def erase(database: Database, box: SecretBox, tenant: uuid.UUID) -> tuple[int, float]:
    liveness = ProcessLiveness(database.app_url)
    async with AsyncConnectionPool(database.app_url, min_size=1, max_size=1) as pool:
        store = IdempotencyStore(pool, box, liveness)
        started = time.perf_counter()
        deleted = await store.forget_mentions(tenant, ["nobody@example.com", "Nobody Named"])
        elapsed = time.perf_counter() - started
    await liveness.close()
    return deleted, elapsed


def commands(database: Database, box: SecretBox, count: int) -> tuple[float, float]:
    """Median milliseconds of a command through the bus: plain, and with its outcome recorded."""
    app = training_application(database)
    bus = command_bus(app)
    operator = CommandContext.system("bench", request_id="bench")
    try:
        tenant = bus.execute(operator, RegisterTenant("bench", "Bench", 5)).result
        command = RegisterApiClient(tenant.tenant_id, "HRIS", ("tenant:read",))
        expires = datetime.now(UTC) + timedelta(days=1)
        plain, recorded = [], []
        for n in range(count):
            started = time.perf_counter()
            bus.execute(operator, command)
            plain.append(time.perf_counter() - started)
            request = IdempotentRequest(
                box, database.app_url, None, "operator:bench", f"k-{n}", expires
            )
            with commands_of_request(request):
                started = time.perf_counter()
                bus.execute(operator, command)
                recorded.append(time.perf_counter() - started)
    finally:
        app.close()
    return statistics.median(plain) * 1000, statistics.median(recorded) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=500, help="records timed one by one")
    parser.add_argument("--erasure", type=int, default=10_000, help="a tenant's stored records")
    parser.add_argument("--commands", type=int, default=300, help="commands of each kind")
    args = parser.parse_args()
    box = SecretBox(os.urandom(32))
    context = sealing_context(uuid.uuid4(), "client:bench", "key")
    rounds = 20_000
    seal_open_us = (
        timeit.timeit(
            lambda: box.open(box.seal(BODY, context=context), context=context), number=rounds
        )
        / rounds
        * 1e6
    )
    with fresh_database() as database:
        record_ms = asyncio.run(stored(database, box, uuid.uuid4(), args.records, age=timedelta()))
        tenant = uuid.uuid4()
        asyncio.run(stored(database, box, tenant, args.erasure, age=timedelta(days=2)))
        deleted, erasure_s = asyncio.run(erase(database, box, tenant))
        assert deleted == 0
        purge = ExpiredRecordsPurge(database.worker_url)
        started = time.perf_counter()
        purged = purge.purge()
        purge_s = time.perf_counter() - started
        plain_ms, recorded_ms = commands(database, box, args.commands)
    print(
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| seal + open a {len(BODY)}-byte body (AES-256-GCM) | {seal_open_us:.1f} µs |")
    record = f"claim + complete one record (2 transactions), mean of {args.records}"
    print(f"| {record} | {record_ms:.2f} ms |")
    print(f"| sealing's share of a record | {seal_open_us / 1000 / record_ms:.2%} |")
    print(f"| forget_mentions over {args.erasure} stored responses | {erasure_s * 1000:.0f} ms |")
    print(f"| purge of {purged} expired records (worker role) | {purge_s * 1000:.0f} ms |")
    print(f"| a command through the bus, median of {args.commands} | {plain_ms:.2f} ms |")
    print(f"| the same, its outcome recorded with its events | {recorded_ms:.2f} ms |")
    print(f"| recording's cost on a command | {recorded_ms / plain_ms - 1:+.1%} |")


if __name__ == "__main__":
    main()
