"""The shared rate-limit buckets, one row each in ``training.rate_limit_buckets`` (ADR 0035).

A draw is one statement: it creates the caller's bucket full, or refills it by the time
elapsed since its last draw (the database's clock, so processes' clocks never disagree), and
takes up to a block of whole tokens, answering what it took and what is left. Two processes
drawing for one caller at once are serialised by the row.

The row is named by an HMAC of the kind of limit and the caller under a key derived from the
service's secret key, never by the caller itself: the table holds no client address and no
principal id. After the secret key changes, every bucket starts full (new names).

Draws have connections of their own (``draw_pool``: one, two at most, in autocommit): a draw
is then one round trip, where a transaction on a pooled connection of the read store took
four (the pool's check, BEGIN, the statement, COMMIT) and three to four times the time and
CPU; and reads that keep the read pool busy do not hold draws up.

When a draw fails (the server is down, no connection is free within half a second, the table
is missing), the caller's request is decided by this process's own buckets, and so
is every request for the next few seconds before a draw is tried again: a limit never turns
into a 500, and an outage does not make each request wait for a connection. The first failure
of an outage is logged, and so is the first draw that works again.

Rows of buckets idle for a whole window are full, exactly like missing ones: at most once a
minute, after a draw, a background task deletes them, a batch per statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable

import structlog
from psycopg_pool import AsyncConnectionPool

from training.core.http.ratelimit import Grant, RateLimit

log = structlog.get_logger(__name__)

ACQUIRE_TIMEOUT = 0.5  # seconds a draw waits for a connection
DRAW_CONNECTIONS = 2
OPEN_TIMEOUT = 10.0
OFFLINE_PAUSE = 5.0  # seconds of this process's own buckets after a failed draw
PURGE_INTERVAL = 60.0
PURGE_BATCH = 1000

# The caller's bucket refilled by the time since its last draw, capped at the limit.
_REFILLED = (
    "least(%(capacity)s::float8, b.tokens + %(rate)s::float8 * "
    "greatest(0, extract(epoch FROM statement_timestamp() - b.updated_at))::float8)"
)
_TAKEN = f"least(%(block)s::int, floor({_REFILLED}))"
DRAW = f"""
INSERT INTO training.rate_limit_buckets AS b (bucket, key, tokens, granted, updated_at)
VALUES (%(bucket)s, %(key)s, %(capacity)s::float8 - %(block)s::int, %(block)s::int,
        statement_timestamp())
ON CONFLICT (bucket, key) DO UPDATE SET
    granted = {_TAKEN}::int,
    tokens = {_REFILLED} - {_TAKEN},
    updated_at = statement_timestamp()
RETURNING granted, tokens
"""
# The outer condition is checked again on a row a draw updated meanwhile, which then stays.
_IDLE = "updated_at < statement_timestamp() - make_interval(secs => %(window)s)"
PURGE = f"""
DELETE FROM training.rate_limit_buckets
WHERE (bucket, key) IN (
    SELECT bucket, key FROM training.rate_limit_buckets
    WHERE bucket = %(bucket)s AND {_IDLE} LIMIT %(batch)s)
AND {_IDLE}
"""


def draw_pool(conninfo: str) -> AsyncConnectionPool:
    """The draws' connections, as the service's role: autocommit, one statement each. No
    check on lending: a broken connection fails its draw (this process then limits on its
    own for a few seconds) and the pool replaces it."""
    return AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=DRAW_CONNECTIONS,
        open=False,
        timeout=ACQUIRE_TIMEOUT,
        kwargs={"autocommit": True},
    )


def grant_of(granted: int, tokens: float, limit: RateLimit) -> Grant:
    """A draw's answer: the tokens taken, or, when none were, how long until there is one."""
    if granted > 0:
        return Grant(granted)
    return Grant(0, max(0.0, 1.0 - tokens) * limit.seconds / limit.requests)


class SharedBucketStore:
    """Draws for ``SharedBuckets`` through ``pool`` (``draw_pool``), which it opens and
    closes."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        secret: bytes,
        *,
        clock: Callable[[], float] = time.monotonic,
        acquire_timeout: float = ACQUIRE_TIMEOUT,
        offline_pause: float = OFFLINE_PAUSE,
        purge_interval: float = PURGE_INTERVAL,
    ) -> None:
        self.pool = pool
        self._secret = secret
        self._clock = clock
        self.acquire_timeout = acquire_timeout
        self.offline_pause = offline_pause
        self.purge_interval = purge_interval
        self._offline_until = 0.0
        self._outage = False  # a failure was logged and no draw has worked since
        self._windows: dict[str, float] = {}  # bucket kind -> its window, for the purge
        self._next_purge = 0.0
        self._purging: asyncio.Task[int] | None = None
        self.draws = 0
        self.failures = 0

    def row_key(self, bucket: str, key: str) -> bytes:
        """What names ``key``'s bucket of kind ``bucket`` in the table."""
        return hmac.digest(self._secret, f"{bucket}\0{key}".encode(), hashlib.sha256)

    def online(self) -> bool:
        return self._clock() >= self._offline_until

    async def draw(self, bucket: str, key: str, limit: RateLimit, block: int) -> Grant | None:
        if not self.online():
            return None
        params = {
            "bucket": bucket,
            "key": self.row_key(bucket, key),
            "capacity": float(limit.requests),
            "rate": limit.requests / limit.seconds,
            "block": block,
        }
        try:
            async with self.pool.connection(timeout=self.acquire_timeout) as conn:
                cur = await conn.execute(DRAW, params)
                row = await cur.fetchone()
        except Exception as error:  # whatever it is, the limit must not become a 500
            self._went_offline(error)
            return None
        assert row is not None
        self.draws += 1
        if self._outage:
            self._outage = False
            log.info("rate_limits.shared_again")
        self._windows[bucket] = max(self._windows.get(bucket, 0.0), limit.seconds)
        self._maybe_purge()
        return grant_of(int(row[0]), float(row[1]), limit)

    def _went_offline(self, error: Exception) -> None:
        self.failures += 1
        self._offline_until = self._clock() + self.offline_pause
        if not self._outage:
            self._outage = True
            log.warning(
                "rate_limits.shared_unavailable",
                error=type(error).__name__,
                fallback="per-process buckets",
                retry_in_seconds=self.offline_pause,
            )

    def _maybe_purge(self) -> None:
        now = self._clock()
        if now < self._next_purge or (self._purging is not None and not self._purging.done()):
            return
        self._next_purge = now + self.purge_interval
        self._purging = asyncio.get_running_loop().create_task(self._purge_quietly())

    async def _purge_quietly(self) -> int:
        try:
            return await self.purge()
        except Exception as error:  # the next purge tries again; rows only wait meanwhile
            log.warning("rate_limits.purge_failed", error=type(error).__name__)
            return 0

    async def purge(self) -> int:
        """Deletes the rows of buckets idle for their whole window; how many went."""
        total = 0
        for bucket, window in list(self._windows.items()):
            while True:
                async with self.pool.connection() as conn:
                    cur = await conn.execute(
                        PURGE, {"bucket": bucket, "window": window, "batch": PURGE_BATCH}
                    )
                total += cur.rowcount
                if cur.rowcount < PURGE_BATCH:
                    break
        return total

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=OPEN_TIMEOUT)

    async def close(self) -> None:
        """Stops a purge under way (the next start purges) and closes the connections."""
        task, self._purging = self._purging, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pool.close()
