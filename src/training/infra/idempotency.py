"""Stored responses for ``Idempotency-Key`` retries.

The first request with a key claims it (a row with no response yet), runs, and stores its
response. A retry with the same key and the same request gets the stored response and runs
nothing; the same key with a different request is refused. A key whose first request is
still running answers 409, and a 5xx outcome releases the claim so the client may retry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

# Claims older than this whose request never finished (the process died) may be retaken.
STALE_CLAIM = "10 minutes"


def request_fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


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


ClaimResult = Claimed | Replay | Mismatch | InFlight


class IdempotencyStore:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def _scope(self, conn: AsyncConnection[Any], tenant_id: UUID | None) -> None:
        if tenant_id is None:
            await conn.execute("SELECT set_config('app.platform', 'on', true)")
        else:
            await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))

    async def claim(
        self, tenant_id: UUID | None, principal: str, key: str, fingerprint: str
    ) -> ClaimResult:
        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            await conn.execute(
                "DELETE FROM training.idempotency_keys WHERE principal = %s AND key = %s "
                f"AND status_code IS NULL AND created_at < now() - interval '{STALE_CLAIM}'",
                (principal, key),
            )
            cur = await conn.execute(
                "INSERT INTO training.idempotency_keys (tenant_id, principal, key, request_hash) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (principal, key) DO NOTHING RETURNING 1",
                (tenant_id, principal, key, fingerprint),
            )
            if await cur.fetchone():
                return Claimed()
            cur = await conn.execute(
                "SELECT request_hash, status_code, response_headers, response_body "
                "FROM training.idempotency_keys WHERE principal = %s AND key = %s",
                (principal, key),
            )
            row = await cur.fetchone()
        if row is None:  # claimed and released by another request in between
            return InFlight()
        stored_hash, status, headers, body = row
        if stored_hash != fingerprint:
            return Mismatch()
        if status is None:
            return InFlight()
        return Replay(int(status), [(str(k), str(v)) for k, v in headers], bytes(body))

    async def complete(
        self,
        tenant_id: UUID | None,
        principal: str,
        key: str,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            await conn.execute(
                "UPDATE training.idempotency_keys SET status_code = %s, response_headers = %s, "
                "response_body = %s WHERE principal = %s AND key = %s",
                (status, Jsonb([list(h) for h in headers]), body, principal, key),
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
        """Deletes the tenant's stored responses that contain any of ``needles`` (erasure)."""
        wanted = [n.encode() for n in needles if n]
        if not wanted:
            return 0
        async with self.pool.connection() as conn, conn.transaction():
            await self._scope(conn, tenant_id)
            cur = await conn.execute(
                "DELETE FROM training.idempotency_keys WHERE tenant_id = %s AND EXISTS ("
                "SELECT 1 FROM unnest(%s::bytea[]) AS needle "
                "WHERE position(needle IN response_body) > 0)",
                (tenant_id, wanted),
            )
            return cur.rowcount
