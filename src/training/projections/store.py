"""The query side's connection pool, tenant-scoped transactions and read-your-writes waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

APPLICATION_NAME = "training"


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

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=10.0)

    async def close(self) -> None:
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
