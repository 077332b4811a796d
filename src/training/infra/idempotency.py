"""Stored responses for ``Idempotency-Key`` retries.

The first request with a key claims it (a row with no response yet), runs, and stores its
response. A retry with the same key and the same request gets the stored response and runs
nothing; the same key with a different request is refused. A key whose first request is
still running answers 409, and a 5xx outcome releases the claim so the client may retry.

Records live for the replay window only (``TRAINING_IDEMPOTENCY_TTL``, 24 hours): an expired
record is never replayed, whether or not ``ExpiredRecordsPurge`` has deleted it yet. A stored
response can hold a secret (a new API client's secret, a calendar feed's URL), so its body is
sealed with the service's key (AES-GCM) and bound to its row: tenant, caller and key are the
associated data, so a body copied into another row does not open.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import structlog
from cryptography.exceptions import InvalidTag
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from training.infra.secretbox import SecretBox

log = structlog.get_logger(__name__)

DEFAULT_TTL = timedelta(hours=24)
# Claims older than this whose request never finished (the process died) may be retaken.
STALE_CLAIM = timedelta(minutes=10)
PURGE_INTERVAL_SECONDS = 600.0
PURGE_BATCH = 1000

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def request_fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def sealing_context(tenant_id: UUID | None, principal: str, key: str) -> bytes:
    """The associated data of a stored body: the row it belongs to."""
    tenant = str(tenant_id) if tenant_id is not None else "platform"
    return "\x00".join(("idempotency", tenant, principal, key)).encode()


@dataclass(frozen=True)
class Claimed:
    pass


@dataclass(frozen=True)
class Replay:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Mismatch:
    pass


@dataclass(frozen=True)
class InFlight:
    pass


@dataclass(frozen=True)
class Unreadable:
    """The stored response was sealed under another secret key (the key was changed)."""


ClaimResult = Claimed | Replay | Mismatch | InFlight | Unreadable


class IdempotencyStore:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        box: SecretBox,
        *,
        ttl: timedelta = DEFAULT_TTL,
        clock: Clock = _now,
    ) -> None:
        self.pool = pool
        self.box = box
        self.ttl = ttl
        self.clock = clock

    async def _scope(self, conn: AsyncConnection[Any], tenant_id: UUID | None) -> None:
        if tenant_id is None:
            await conn.execute("SELECT set_config('app.platform', 'on', true)")
        else:
            await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))

    async def claim(
        self, tenant_id: UUID | None, principal: str, key: str, fingerprint: str
    ) -> ClaimResult:
        now = self.clock()
        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            # An expired record is a new key, and so is a claim whose request died long ago.
            await conn.execute(
                "DELETE FROM training.idempotency_keys WHERE principal = %s AND key = %s "
                "AND (expires_at <= %s OR (status_code IS NULL AND created_at < %s))",
                (principal, key, now, now - STALE_CLAIM),
            )
            cur = await conn.execute(
                "INSERT INTO training.idempotency_keys (tenant_id, principal, key, request_hash, "
                "created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (principal, key) DO NOTHING RETURNING 1",
                (tenant_id, principal, key, fingerprint, now, now + self.ttl),
            )
            if await cur.fetchone():
                return Claimed()
            cur = await conn.execute(
                "SELECT request_hash, status_code, response_headers, response_body "
                "FROM training.idempotency_keys WHERE principal = %s AND key = %s "
                "AND expires_at > %s",
                (principal, key, now),
            )
            row = await cur.fetchone()
        if row is None:  # claimed and released by another request in between
            return InFlight()
        stored_hash, status, headers, sealed = row
        if stored_hash != fingerprint:
            return Mismatch()
        if status is None:
            return InFlight()
        try:
            body = self.box.open(bytes(sealed), context=sealing_context(tenant_id, principal, key))
        except InvalidTag:
            log.warning("idempotency.unreadable_record")
            return Unreadable()
        return Replay(int(status), [(str(k), str(v)) for k, v in headers], body)

    async def complete(
        self,
        tenant_id: UUID | None,
        principal: str,
        key: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        sealed = self.box.seal(body, context=sealing_context(tenant_id, principal, key))
        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            await conn.execute(
                "UPDATE training.idempotency_keys SET status_code = %s, response_headers = %s, "
                "response_body = %s WHERE principal = %s AND key = %s",
                (status, Jsonb([list(h) for h in headers]), sealed, principal, key),
            )

    async def release(self, tenant_id: UUID | None, principal: str, key: str) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            await conn.execute(
                "DELETE FROM training.idempotency_keys WHERE principal = %s AND key = %s "
                "AND status_code IS NULL",
                (principal, key),
            )

    async def forget_mentions(self, tenant_id: UUID, needles: list[str]) -> int:
        """Deletes the tenant's stored responses that contain any of ``needles`` (erasure).

        Bodies are sealed, so each of the tenant's stored responses (a day's worth at most)
        is opened and searched here; one that no longer opens is deleted as well, since
        nobody can tell what it mentions.
        """
        wanted = [n.encode() for n in needles if n]
        if not wanted:
            return 0
        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            cur = await conn.execute(
                "SELECT principal, key, response_body FROM training.idempotency_keys "
                "WHERE tenant_id = %s AND response_body IS NOT NULL FOR UPDATE",
                (tenant_id,),
            )
            doomed: list[tuple[str, str]] = []
            for principal, key, sealed in await cur.fetchall():
                context = sealing_context(tenant_id, str(principal), str(key))
                try:
                    body = self.box.open(bytes(sealed), context=context)
                except InvalidTag:
                    doomed.append((str(principal), str(key)))
                    continue
                if any(needle in body for needle in wanted):
                    doomed.append((str(principal), str(key)))
            if not doomed:
                return 0
            cur = await conn.execute(
                "DELETE FROM training.idempotency_keys WHERE tenant_id = %s AND (principal, key) "
                "IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                (tenant_id, [p for p, _ in doomed], [k for _, k in doomed]),
            )
            return cur.rowcount


class ExpiredRecordsPurge:
    """Deletes expired idempotency records of every tenant in the background.

    It connects as the worker role, whose policies show it expired records only (and none of
    their responses). Every process that runs it purges; concurrent purges are harmless.
    """

    def __init__(
        self,
        worker_conninfo: str,
        *,
        interval: float = PURGE_INTERVAL_SECONDS,
        batch: int = PURGE_BATCH,
    ) -> None:
        self.conninfo = worker_conninfo
        self.interval = interval
        self.batch = batch
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.purged = 0

    def purge(self) -> int:
        """Deletes every expired record, a batch per transaction; answers how many."""
        total = 0
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while True:
                cur = conn.execute(
                    "DELETE FROM training.idempotency_keys WHERE (principal, key) IN "
                    "(SELECT principal, key FROM training.idempotency_keys "
                    "WHERE expires_at < now() LIMIT %s)",
                    (self.batch,),
                )
                total += cur.rowcount
                if cur.rowcount < self.batch:
                    break
        self.purged += total
        return total

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="idempotency-purge", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                purged = self.purge()
                if purged:
                    log.info("idempotency.purged", records=purged)
            except Exception:  # the next round tries again; the table only grows meanwhile
                log.exception("idempotency.purge_failed")
            self._stopping.wait(self.interval)
