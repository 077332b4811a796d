"""The query side's connection pools, tenant-scoped transactions and read-your-writes waits,
and the session that says this process is alive.

Queries may read from a streaming replica (``TRAINING_READ_DATABASE_URL``): then the views,
their tracking rows and the event log they are checked against are the replica's own, and a
read-your-writes wait first waits for the replica to have replayed the write (ADR 0037).
Everything that writes, or must see the primary as it is now (idempotency claims, the report
queue, the liveness session, /readyz's checks of the primary), uses ``pool``, the primary's.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import structlog
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from training.core.tenant_scope import tenant_transaction_async

log = structlog.get_logger(__name__)

APPLICATION_NAME = "training"
# The advisory lock space of the processes' liveness keys ("live").
LIVENESS_LOCK_SPACE = 0x6C697665

# Whose event a stored event is, told from its state without decoding it: every event of the
# service stores its tenant as ``"tenant_id":"<uuid>"`` (msgspec's compact JSON, the canonical
# UUID text; ``null`` for the platform's own). An event of the tenant, or of no tenant, or one
# whose state is not plain JSON (were a cipher or a compressor configured), counts as the
# tenant's: a tenant may wait for too much, never for too little. ``%(tenant)s`` is the
# tenant's marker (``tenant_marker``), or NULL for every tenant's events.
OF_TENANT_OR_PLATFORM = (
    "%(tenant)s::bytea IS NULL OR position(%(tenant)s::bytea IN state) > 0 "
    'OR position(\'"tenant_id":"\'::bytea IN state) = 0 '
    "OR substring(state FROM 1 FOR 1) <> '\\x7b'::bytea"  # not "{": not plain JSON
)


def tenant_marker(tenant_id: UUID) -> bytes:
    """What the stored state of each of ``tenant_id``'s events contains."""
    return f'"tenant_id":"{tenant_id}"'.encode()


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


def _pool(conninfo: str, min_size: int, max_size: int) -> AsyncConnectionPool[Any]:
    return AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=5.0,
        check=AsyncConnectionPool.check_connection,
    )


class ReadStore:
    """``pool`` is the primary's; ``read_pool`` serves the queries, from the replica at
    ``read_conninfo`` when there is one (otherwise it is ``pool``)."""

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        read_conninfo: str | None = None,
    ) -> None:
        self.pool = _pool(conninfo, min_size, max_size)
        self.on_replica = bool(read_conninfo) and read_conninfo != conninfo
        self.read_pool = (
            _pool(str(read_conninfo), min_size, max_size) if self.on_replica else self.pool
        )
        self.liveness = ProcessLiveness(conninfo)

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=10.0)
        if self.on_replica:
            await self.read_pool.open(wait=True, timeout=10.0)
        await self.liveness.key()

    async def close(self) -> None:
        await self.liveness.close()
        if self.on_replica:
            await self.read_pool.close()
        await self.pool.close()

    @asynccontextmanager
    async def session(
        self, tenant_id: UUID | None, *, primary: bool = False
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """A read-only transaction scoped to ``tenant_id``, or to the platform when None; on
        the primary when a write is decided on what it reads (``primary``): a replica may not
        have replayed what a command wrote a moment ago beside its events (personal data).

        The setting is transaction-local (``set_config(..., true)``), so it can never leak to
        the next borrower of the pooled connection.
        """
        pool = self.pool if primary else self.read_pool
        async with tenant_transaction_async(pool, tenant_id, read_only=True) as conn:
            yield conn

    async def tracked_position(self, view: ViewInfo) -> int:
        async with self.read_pool.connection() as conn:
            cur = await conn.execute(*_tracked_position_query(view))
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    async def pending_events(self, view: ViewInfo, after: int, upto: int | None = None) -> int:
        """How many events the view follows lie in (after, upto]; counts at most 100,000."""
        async with self.read_pool.connection() as conn:
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

    async def wait_for(
        self,
        views: Sequence[ViewInfo],
        position: int,
        timeout: float,
        *,
        tenant_id: UUID | None = None,
        producers: Mapping[str, ViewInfo] | None = None,
    ) -> dict[str, int]:
        """Returns once every view holds each event of ``tenant_id`` (and of the platform) it
        follows up to ``position``, a position in the training application's log; with no
        tenant (the platform's own reads), every tenant's events. Raises ``ViewBehind`` when
        ``timeout`` seconds are not enough.

        A view only tracks the events it follows, and one tenant's reads only need that
        tenant's rows, so "caught up" means: the view's tracked position is at or past the
        position, or none of the events it follows between the two belong to the tenant. So
        another tenant's backlog (a bulk import) never holds a tenant's reads.

        A view built from another process's events (the tracks, from the planning process)
        is caught up in two steps: first the process (``producers`` maps its application name
        to it) holds the tenant's events up to ``position``; then everything it wrote by then
        (its own log up to its newest event) is what the view must hold.

        On a replica, the replica first replays the log up to ``position``: until it has,
        its views' positions say nothing about the write.

        Answers, per view, the position in its upstream's log it was waited for.
        """
        deadline = time.monotonic() + timeout
        if self.on_replica:
            await self._replayed(position, deadline)
        reached: dict[str, int] = {}
        heads: dict[str, int] = {APPLICATION_NAME: position}
        for view in views:
            if view.upstream not in heads:
                producer = (producers or {}).get(view.upstream)
                if producer is None or producer.upstream != APPLICATION_NAME:
                    msg = f"the {view.name} view follows {view.upstream}: name its producer"
                    raise ValueError(msg)
                await self._catch_up(producer, position, position, tenant_id, deadline)
                reached[producer.name] = position
                # Read after the producer was seen caught up: what it wrote for the events up
                # to ``position`` committed with its tracked position, so it is all below.
                heads[view.upstream] = await self.newest_event(view.upstream)
            upto = heads[view.upstream]
            await self._catch_up(view, upto, position, tenant_id, deadline)
            reached[view.name] = upto
        return reached

    async def _replayed(self, position: int, deadline: float) -> None:
        """Waits until the replica holds the training log up to ``position``. The primary
        commits the log in id order (its recorder locks the table for each insert) and a
        replica replays commits in order, so holding ``position`` means holding all before."""
        delay = 0.005
        while (newest := await self.newest_event(APPLICATION_NAME)) < position:
            if time.monotonic() + delay > deadline:
                raise ViewBehind("replica", position, position - newest)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def replay_delay(self) -> float | None:
        """Seconds since the replica replayed the last transaction it received (0 on the
        primary, or when it has replayed everything); None when ``read_pool`` is not one."""
        if not self.on_replica:
            return None
        async with self.read_pool.connection() as conn:
            cur = await conn.execute(
                "SELECT pg_is_in_recovery(), CASE WHEN pg_last_wal_receive_lsn() = "
                "pg_last_wal_replay_lsn() THEN 0 ELSE extract(epoch FROM "
                "now() - pg_last_xact_replay_timestamp()) END"
            )
            row = await cur.fetchone()
        if row is None or not row[0]:
            return 0.0
        return float(row[1] or 0.0)

    async def _catch_up(
        self,
        view: ViewInfo,
        upto: int,
        asked: int,
        tenant_id: UUID | None,
        deadline: float,
    ) -> None:
        """Waits until ``view`` holds the tenant's events up to ``upto`` of its upstream's log.

        The events up to ``upto`` are all committed (the event store commits in id order), so
        the last of the tenant's that the view still has to process is found once; after that
        each poll reads only the tracked position.
        """
        tracked = await self.tracked_position(view)
        if tracked >= upto:
            return
        target = await self.last_pending_event(view, tracked, upto, tenant_id)
        delay = 0.01
        while target is not None and tracked < target:
            if time.monotonic() + delay > deadline:
                lag = await self.pending_events(view, tracked, target)
                raise ViewBehind(view.name, asked, lag)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)
            tracked = await self.tracked_position(view)

    async def last_pending_event(
        self, view: ViewInfo, after: int, upto: int, tenant_id: UUID | None
    ) -> int | None:
        """The last event in (after, upto] that ``view`` follows and that belongs to
        ``tenant_id`` or to the platform (any tenant's when ``tenant_id`` is None)."""
        async with self.read_pool.connection() as conn:
            cur = await conn.execute(*_last_pending_query(view, after, upto, tenant_id))
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else None

    async def newest_event(self, application: str) -> int:
        """The newest notification id in ``application``'s log (0 when it is empty)."""
        table = sql.SQL("training.{}").format(sql.Identifier(f"{application}_events"))
        async with self.read_pool.connection() as conn:
            cur = await conn.execute(sql.SQL("SELECT max(notification_id) FROM {}").format(table))
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def _tracked_position_query(view: ViewInfo) -> tuple[sql.Composed, tuple[str]]:
    return (
        sql.SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(
            view.tracking_table
        ),
        (view.upstream,),
    )


def _last_pending_query(
    view: ViewInfo, after: int, upto: int, tenant_id: UUID | None
) -> tuple[sql.Composed, dict[str, Any]]:
    """The last event in (after, upto] that ``view`` follows and that belongs to the tenant
    (or to the platform): one row, NULL when there is none (ADR 0040).

    A view that follows none of an import's topics keeps the position of its last event, so
    its window is most of the log. Asked as ``topic = ANY(...) ORDER BY notification_id DESC
    LIMIT 1``, the planner often walked the log backwards by its id, testing each event's
    topic, to the window's start: a cost as long as the log, for every batch and every wait.

    So each followed topic is asked on its own, newest first, in the (topic, notification_id)
    index: one descent per topic, then only that topic's events of other tenants in the
    window. The topic is named as ``ANY(ARRAY[...])``, not ``=``: an equality to the outer
    row's topic would let the planner take the order by id alone, and with it the walk by
    id; ``topic DESC`` in the order is one that only the (topic, notification_id) index
    gives, and the window's bounds still end its scan.
    """
    return (
        sql.SQL(
            "SELECT max(last.notification_id) FROM unnest(%(topics)s::text[]) AS followed(topic) "
            "CROSS JOIN LATERAL (SELECT notification_id FROM {} "
            "WHERE topic = ANY(ARRAY[followed.topic]) "
            "AND notification_id > %(after)s AND notification_id <= %(upto)s "
            f"AND ({OF_TENANT_OR_PLATFORM}) "
            "ORDER BY topic DESC, notification_id DESC LIMIT 1) AS last"
        ).format(view.events_table),
        {
            "after": after,
            "upto": upto,
            "topics": list(view.topics),
            "tenant": None if tenant_id is None else tenant_marker(tenant_id),
        },
    )


class ImportPace:
    """Holds a bulk writer (a member import, between its batches) until the views hold what
    it wrote, and sizes its next batch so that the views apply it in about ``lag`` seconds:
    another tenant's write then never queues behind more than that (ADR 0028).

    An import writes 500 members per transaction; a view applies them one transaction each,
    several times slower. Unpaced, a 5,000-member import put 20 seconds of one tenant's events
    (on a loaded machine) in front of every other tenant's next write in the members and
    audit views, whose reads of that write then answered 503. Paced, the import takes as long
    as the views take to show it, which it did before for anyone looking at the members.

    The first batch is small (``first_batch``): how fast the views are is not known yet.
    A view that does not move for ``stall`` seconds (stopped, or restarting after an error)
    is not waited for any longer: it must not stop the import.
    """

    def __init__(
        self,
        conninfo: str,
        views: Sequence[ViewInfo],
        *,
        lag: float = 0.5,
        fewest: int = 50,
        stall: float = 5.0,
    ) -> None:
        self.conninfo = conninfo
        self.views = tuple(views)
        self.lag = lag
        self.fewest = fewest
        self.first_batch = fewest
        self.stall = stall
        # One session for every wait (imports run one at a time): a session opened per batch
        # cost a server process's start, and its time counted as the views'.
        self._conn: psycopg.Connection[Any] | None = None

    def __call__(self, tenant_id: UUID, position: int | None, rows: int) -> int:
        """Waits until the views hold ``tenant_id``'s events up to ``position`` (a batch of
        ``rows``); answers how many rows the next batch should hold."""
        if position is None:
            return 2 * rows
        started = time.monotonic()
        try:
            kept_up = self._wait(tenant_id, position)
        except psycopg.OperationalError:  # a session lost since the last batch: once more
            self.close()
            kept_up = self._wait(tenant_id, position)
        took = time.monotonic() - started
        if not all(kept_up) or took < 0.001:
            return 2 * rows
        return max(self.fewest, round(rows * self.lag / took))

    def _catch_up(
        self, conn: psycopg.Connection[Any], view: ViewInfo, tenant_id: UUID, position: int
    ) -> bool:
        """False when the view stalled before holding the tenant's events up to ``position``."""
        tracked = self._tracked(conn, view)
        if tracked >= position:
            return True
        # Planned for its window each time, never as a generic prepared statement.
        query, params = _last_pending_query(view, tracked, position, tenant_id)
        row = conn.execute(query, params, prepare=False).fetchone()
        target = int(row[0]) if row and row[0] is not None else tracked
        moved_at, delay = time.monotonic(), 0.01
        while tracked < target:
            if time.monotonic() - moved_at > self.stall:
                log.warning("import.pace_abandoned", projection=view.name, behind=target - tracked)
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)  # a poll is one small query; idling costs the import
            now = self._tracked(conn, view)
            if now > tracked:
                tracked, moved_at = now, time.monotonic()
        return True

    def _wait(self, tenant_id: UUID, position: int) -> list[bool]:
        conn = self._session()
        try:
            return [self._catch_up(conn, view, tenant_id, position) for view in self.views]
        except psycopg.Error:
            self.close()  # the next wait opens another session
            raise

    def _session(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.conninfo, autocommit=True)
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @staticmethod
    def _tracked(conn: psycopg.Connection[Any], view: ViewInfo) -> int:
        row = conn.execute(*_tracked_position_query(view)).fetchone()
        return int(row[0]) if row and row[0] is not None else 0
