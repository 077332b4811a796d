"""Stored responses for ``Idempotency-Key`` retries, and the commands' outcomes behind them.

The first request with a key claims it (a row with no response yet, naming the claiming
process), runs, and stores its response. A retry with the same key and the same request gets
the stored response and runs nothing; the same key with a different request is refused. A
key whose first request is still running answers 409, and a 5xx outcome releases the claim
so the client may retry.

A crash between a command's commit and the stored response must neither act twice nor keep
the key busy:

* **The claim names its process** (``ProcessLiveness``: an advisory lock the process holds
  on a session of its own for its whole life). A retry that finds a claim without a response
  tries that lock; if it gets it, the process is gone, and the retry takes the claim over at
  once.
* **Each command records its outcome in its events' transaction** (``CommandMarker``,
  written by the event store's recorder with ``record_command_outcome``): the command's
  result, sealed, and its last event. The request that takes a claim over runs again with the
  outcomes already recorded (``IdempotentRequest``): the command bus answers those instead of
  running the commands, and the controller shapes the response the first attempt would have
  sent. The outcomes' primary key refuses a second recording, should two attempts ever run
  at once.

Records live for the replay window only (``TRAINING_IDEMPOTENCY_TTL``, 24 hours): an expired
record is never replayed, whether or not ``ExpiredRecordsPurge`` has deleted it yet. A stored
response or outcome can hold a secret (a new API client's secret, a calendar feed's URL), so
it is sealed with the service's key (AES-GCM) and bound to its row: tenant, caller, key (and
the command's number) are the associated data, so a value copied into another row does not
open.
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
from psycopg import AsyncConnection, Connection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from training.core.command_outcomes import (
    RECORDED,
    IdempotentRequest,
    Sealer,
    UnreadableOutcome,
    open_outcomes,
    outcome_context,
    sealing_context,
)
from training.core.read_store import LIVENESS_LOCK_SPACE, ProcessLiveness
from training.core.tenant_scope import scope_to_async

log = structlog.get_logger(__name__)

DEFAULT_TTL = timedelta(hours=24)
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


@dataclass(frozen=True)
class Claimed:
    """The key is this attempt's: run the request with ``request``'s commands."""

    request: IdempotentRequest


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
    """What is stored was sealed under another secret key (the key was changed)."""


ClaimResult = Claimed | Replay | Mismatch | InFlight | Unreadable


class IdempotencyStore:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        box: Sealer,
        liveness: ProcessLiveness,
        *,
        ttl: timedelta = DEFAULT_TTL,
        clock: Clock = _now,
    ) -> None:
        self.pool = pool
        self.box = box
        self.liveness = liveness
        self.ttl = ttl
        self.clock = clock

    async def _scope(self, conn: AsyncConnection[Any], tenant_id: UUID | None) -> None:
        await scope_to_async(conn, tenant_id)

    async def claim(
        self, tenant_id: UUID | None, principal: str, key: str, fingerprint: str
    ) -> ClaimResult:
        now = self.clock()
        me = await self.liveness.key()
        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            # An expired record is a new key: the outcomes of its commands go with it.
            cur = await conn.execute(
                "DELETE FROM training.idempotency_keys WHERE principal = %s AND key = %s "
                "AND expires_at <= %s RETURNING 1",
                (principal, key, now),
            )
            expired = await cur.fetchone() is not None
            await conn.execute(
                "DELETE FROM training.command_outcomes WHERE principal = %s AND key = %s "
                "AND (%s OR expires_at <= %s)",
                (principal, key, expired, now),
            )
            cur = await conn.execute(
                "INSERT INTO training.idempotency_keys (tenant_id, principal, key, request_hash, "
                "created_at, expires_at, owner) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (principal, key) DO NOTHING RETURNING expires_at",
                (tenant_id, principal, key, fingerprint, now, now + self.ttl, me),
            )
            inserted = await cur.fetchone()
            if inserted is not None:
                expires_at = inserted[0]
            else:
                found = await self._existing(conn, tenant_id, principal, key, fingerprint, me)
                if not isinstance(found, datetime):
                    return found
                expires_at = found
            cur = await conn.execute(RECORDED, (principal, key, fingerprint))
            rows = await cur.fetchall()
        try:
            recorded = open_outcomes(self.box, tenant_id, principal, key, rows)
        except UnreadableOutcome:
            log.warning("idempotency.unreadable_outcome")
            return Unreadable()
        request = IdempotentRequest(
            self.box,
            self.liveness.conninfo,
            tenant_id,
            principal,
            key,
            fingerprint,
            expires_at,
            recorded,
        )
        return Claimed(request)

    async def _existing(
        self,
        conn: AsyncConnection[Any],
        tenant_id: UUID | None,
        principal: str,
        key: str,
        fingerprint: str,
        me: int,
    ) -> ClaimResult | datetime:
        """What a claim that found the key taken answers; the record's expiry when this
        attempt takes over the claim of a process that is gone."""
        cur = await conn.execute(
            "SELECT request_hash, status_code, response_headers, response_body, owner, "
            "expires_at FROM training.idempotency_keys WHERE principal = %s AND key = %s "
            "FOR UPDATE",
            (principal, key),
        )
        row = await cur.fetchone()
        if row is None:  # claimed and released by another request in between
            return InFlight()
        stored_hash, status, headers, sealed, owner, expires_at = row
        if stored_hash != fingerprint:
            return Mismatch()
        if status is not None:
            try:
                body = self.box.open(
                    bytes(sealed), context=sealing_context(tenant_id, principal, key)
                )
            except InvalidTag:
                log.warning("idempotency.unreadable_record")
                return Unreadable()
            return Replay(int(status), [(str(k), str(v)) for k, v in headers], body)
        if owner is not None:
            # The owner's lock is free only when its process (its session) is gone.
            cur = await conn.execute(
                "SELECT pg_try_advisory_xact_lock(%s, %s)", (LIVENESS_LOCK_SPACE, owner)
            )
            free = await cur.fetchone()
            if not (free and free[0]):
                return InFlight()
        await conn.execute(
            "UPDATE training.idempotency_keys SET owner = %s WHERE principal = %s AND key = %s",
            (me, principal, key),
        )
        log.info("idempotency.claim_taken_over")
        assert isinstance(expires_at, datetime)
        return expires_at

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
        me = await self.liveness.key()
        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            await conn.execute(
                "UPDATE training.idempotency_keys SET status_code = %s, response_headers = %s, "
                "response_body = %s WHERE principal = %s AND key = %s AND owner = %s",
                (status, Jsonb([list(h) for h in headers]), sealed, principal, key, me),
            )

    async def release(self, tenant_id: UUID | None, principal: str, key: str) -> None:
        """Frees a claim whose request failed (5xx). What its commands committed stays
        recorded, so a retry answers it rather than acting again."""
        me = await self.liveness.key()
        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            await conn.execute(
                "DELETE FROM training.idempotency_keys WHERE principal = %s AND key = %s "
                "AND status_code IS NULL AND owner = %s",
                (principal, key, me),
            )

    async def forget_mentions(self, tenant_id: UUID, needles: list[str]) -> int:
        """Deletes the tenant's stored responses that contain any of ``needles`` (erasure),
        and the recorded command outcomes that do.

        Both are sealed, so each of the tenant's (a day's worth at most) is opened and
        searched here; one that no longer opens is deleted as well, since nobody can tell
        what it mentions. Answers how many stored responses went.
        """
        wanted = [n.encode() for n in needles if n]
        if not wanted:
            return 0

        def mentions(sealed: Any, context: bytes) -> bool:
            try:
                opened = self.box.open(bytes(sealed), context=context)
            except InvalidTag:
                return True
            return any(needle in opened for needle in wanted)

        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            cur = await conn.execute(
                "SELECT principal, key, request_hash, seq, outcome FROM training.command_outcomes "
                "WHERE tenant_id = %s",
                (tenant_id,),
            )
            outcomes = [
                (str(p), str(k), str(h), int(seq))
                for p, k, h, seq, sealed in await cur.fetchall()
                if mentions(sealed, outcome_context(tenant_id, str(p), str(k), int(seq)))
            ]
            if outcomes:
                await conn.execute(
                    "DELETE FROM training.command_outcomes WHERE tenant_id = %s AND "
                    "(principal, key, request_hash, seq) IN (SELECT * FROM unnest(%s::text[], "
                    "%s::text[], %s::text[], %s::int[]))",
                    (tenant_id, *(list(column) for column in zip(*outcomes, strict=True))),
                )
            cur = await conn.execute(
                "SELECT principal, key, response_body FROM training.idempotency_keys "
                "WHERE tenant_id = %s AND response_body IS NOT NULL FOR UPDATE",
                (tenant_id,),
            )
            doomed = [
                (str(p), str(k))
                for p, k, sealed in await cur.fetchall()
                if mentions(sealed, sealing_context(tenant_id, str(p), str(k)))
            ]
            if not doomed:
                return 0
            cur = await conn.execute(
                "DELETE FROM training.idempotency_keys WHERE tenant_id = %s AND (principal, key) "
                "IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                (tenant_id, [p for p, _ in doomed], [k for _, k in doomed]),
            )
            return cur.rowcount


class ExpiredRecordsPurge:
    """Deletes expired idempotency records and command outcomes of every tenant in the
    background.

    It connects as the worker role, whose policies show it expired rows only (and none of
    their responses or outcomes). Every process that runs it purges; concurrent purges are
    harmless.
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
        """Deletes every expired record and outcome, a batch per statement; answers how
        many records went."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            self._purge(conn, "command_outcomes", "principal, key, request_hash, seq")
            total = self._purge(conn, "idempotency_keys", "principal, key")
        self.purged += total
        return total

    def _purge(self, conn: Connection[Any], table: str, key: str) -> int:
        total = 0
        while True:
            cur = conn.execute(
                f"DELETE FROM training.{table} WHERE ({key}) IN (SELECT {key} "
                f"FROM training.{table} WHERE expires_at < now() LIMIT %s)",
                (self.batch,),
            )
            total += cur.rowcount
            if cur.rowcount < self.batch:
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
