"""The query side's connection pool, tenant-scoped transactions and read-your-writes waits,
and the session that says this process is alive."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

APPLICATION_NAME = "training"
# The advisory lock space of the processes' liveness keys ("live").
LIVENESS_LOCK_SPACE = 0x6C697665


@dataclass(frozen=True)
class ViewInfo:
    """Which tracking table a view keeps, which application's events it follows, and which
    of their topics."""

    name: str
    topics: tuple[str, ...]
    upstream: str = APPLICATION_NAME

    @property
    def tracking_table(self) -> sql.Composed:
        return sql.SQL("training.{}").format(sql.Identifier(f"{self.name}_tracking"))

    @property
    def events_table(self) -> sql.Composed:
        return sql.SQL("training.{}").format(sql.Identifier(f"{self.upstream}_events"))


class ViewBehind(Exception):
    """The view did not reach the requested position in time."""

    def __init__(self, view: str, position: int, lag: int) -> None:
        super().__init__(f"the {view} view has not caught up with position {position} yet")
        self.view = view
        self.position = position
        self.lag = lag


class ProcessLiveness:
    """A session this process holds for its whole life, with an advisory lock on a key of its
    own (in ``LIVENESS_LOCK_SPACE``). Another process learns at once whether this one is
    alive by trying the lock: PostgreSQL ends the session, and so releases the lock, as soon
    as the process is gone, killed or not. A claim of an ``Idempotency-Key`` names the key.
    """

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._conn: AsyncConnection[Any] | None = None
        self._key: int | None = None
        self._lock = asyncio.Lock()

    async def key(self) -> int:
        """This process's key; a lost session is opened again under a new key (the claims of
        the old one look abandoned, and what they committed is replayed, not repeated)."""
        async with self._lock:
            conn = self._conn
            if conn is None or conn.closed or conn.broken or self._key is None:
                await self._close()
                self._conn, self._key = await self._hold_a_key()
            return self._key

    async def _hold_a_key(self) -> tuple[AsyncConnection[Any], int]:
        conn = await AsyncConnection.connect(self.conninfo, autocommit=True)
        while True:  # a key another process holds is drawn again
            key = secrets.randbelow(2**31 - 2) + 1
            cur = await conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (LIVENESS_LOCK_SPACE, key)
            )
            row = await cur.fetchone()
            if row and row[0]:
                return conn, key

    async def close(self) -> None:
        async with self._lock:
            await self._close()

    async def _close(self) -> None:
        conn, self._conn, self._key = self._conn, None, None
        if conn is not None and not conn.closed:
            await conn.close()


class ReadStore:
    def __init__(self, conninfo: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.pool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=5.0,
            check=AsyncConnectionPool.check_connection,
        )
        self.liveness = ProcessLiveness(conninfo)

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=10.0)
        await self.liveness.key()

    async def close(self) -> None:
        await self.liveness.close()
        await self.pool.close()

    @asynccontextmanager
    async def session(self, tenant_id: UUID | None) -> AsyncIterator[AsyncConnection[Any]]:
        """A read-only transaction scoped to ``tenant_id``, or to the platform when None.

        The setting is transaction-local (``set_config(..., true)``), so it can never leak to
        the next borrower of the pooled connection.
        """
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION READ ONLY")
            if tenant_id is None:
                await conn.execute("SELECT set_config('app.platform', 'on', true)")
            else:
                await conn.execute(
                    "SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),)
                )
            yield conn

    async def tracked_position(self, view: ViewInfo) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                sql.SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(
                    view.tracking_table
                ),
                (view.upstream,),
            )
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    async def pending_events(self, view: ViewInfo, after: int, upto: int | None = None) -> int:
        """How many events the view follows lie in (after, upto]; counts at most 100,000."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM (SELECT 1 FROM {} WHERE notification_id > %s "
                    "AND (%s::bigint IS NULL OR notification_id <= %s) AND topic = ANY(%s) "
                    "LIMIT 100000) AS pending"
                ).format(view.events_table),
                (after, upto, upto, list(view.topics)),
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def wait_for(self, views: Sequence[ViewInfo], position: int, timeout: float) -> None:
        """Returns once every view has processed each of its events up to ``position``.

        A view only tracks the events it follows, so "caught up" means: its tracked position
        is at or past ``position``, or none of its events lie between the two.
        """
        deadline = time.monotonic() + timeout
        delay = 0.01
        for view in views:
            while True:
                tracked = await self.tracked_position(view)
                if tracked >= position:
                    break
                lag = await self.pending_events(view, tracked, position)
                if lag == 0:
                    break
                if time.monotonic() + delay > deadline:
                    raise ViewBehind(view.name, position, lag)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.2)
