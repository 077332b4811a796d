"""What the operator, the readiness check and read-your-writes read of the quarantine: the events
a view holds back, the tenants they degrade, and whether a read must wait for one (ADR 0026)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from training.core.quarantine import COLUMNS, EventRef, Failure, alert, tenant_text
from training.core.read_store import APPLICATION_NAME, ReadStore, ViewBehind, ViewInfo
from training.core.tenant_scope import scope_to, scope_to_async


@dataclass(frozen=True)
class HeldEvent:
    ref: EventRef
    status: str


HELD_COLUMNS = f"{COLUMNS}, status"


def _held_event(row: Sequence[Any]) -> HeldEvent:
    ref = EventRef(str(row[0]), int(row[1]), str(row[2]), row[3], str(row[4]), row[5], int(row[6]))
    return HeldEvent(ref, str(row[7]))


def next_held(
    worker: psycopg.Connection[Any],
    view: str,
    tenants: Collection[UUID | None] | None,
    blocked: Collection[UUID | None] = (),
) -> HeldEvent | None:
    """The view's first held event, in the order of the log, of ``tenants`` (every one when
    None) that is not ``blocked``."""

    def keys(scopes: Collection[UUID | None]) -> list[str]:
        return [tenant_text(s) for s in scopes]

    row = worker.execute(
        f"SELECT {HELD_COLUMNS} FROM training.projection_quarantine "
        "WHERE view_name = %(view)s AND resolved_at IS NULL "
        "AND (%(all)s OR coalesce(tenant_id::text, 'platform') = ANY(%(tenants)s)) "
        "AND NOT coalesce(tenant_id::text, 'platform') = ANY(%(blocked)s) "
        "ORDER BY notification_id LIMIT 1",
        {
            "view": view,
            "all": tenants is None,
            "tenants": keys(tenants or ()),
            "blocked": keys(blocked),
        },
    ).fetchone()
    return _held_event(row) if row else None


def degraded_tenants(worker: psycopg.Connection[Any], view: str) -> list[UUID | None]:
    """The view's degraded tenants, the longest degraded first."""
    rows = worker.execute(
        "SELECT tenant_id FROM training.projection_quarantine "
        "WHERE view_name = %s AND resolved_at IS NULL "
        "GROUP BY tenant_id ORDER BY min(notification_id)",
        (view,),
    ).fetchall()
    return [row[0] for row in rows]


def record_failure(conn: psycopg.Connection[Any], held: HeldEvent, failure: Failure) -> None:
    """A retry of ``held`` failed again: it becomes (or stays) the tenant's failed event."""
    with conn.transaction():
        scope_to(conn, held.ref.tenant_id)
        conn.execute(
            "UPDATE training.projection_quarantine SET status = 'failed', error_type = %s, "
            "error_message = %s, attempts = attempts + 1, last_attempt_at = now() "
            "WHERE view_name = %s AND notification_id = %s AND resolved_at IS NULL",
            (failure.error_type, failure.message, held.ref.view, held.ref.notification_id),
        )
    alert(held.ref, failure)


def resolve_for_rebuild(
    conn: psycopg.Connection[Any], worker: psycopg.Connection[Any], view: str
) -> int:
    """A rebuild replays every event again: what it cannot apply it quarantines afresh."""
    resolved = 0
    with conn.transaction():
        for tenant_id in degraded_tenants(worker, view):
            scope_to(conn, tenant_id)
            resolved += conn.execute(
                "UPDATE training.projection_quarantine SET resolved_at = now(), "
                "resolution = 'rebuilt' WHERE view_name = %s AND resolved_at IS NULL",
                (view,),
            ).rowcount
    return resolved


@dataclass(frozen=True)
class Summary:
    """How much of a view is held back, for the operator's one-line answers."""

    failed: int
    parked: int
    tenants: int

    @property
    def held(self) -> int:
        return self.failed + self.parked


def summary(worker: psycopg.Connection[Any], view: str) -> Summary:
    row = worker.execute(
        "SELECT count(*) FILTER (WHERE status = 'failed'), "
        "count(*) FILTER (WHERE status = 'parked'), "
        "count(DISTINCT coalesce(tenant_id::text, 'platform')) "
        "FROM training.projection_quarantine WHERE view_name = %s AND resolved_at IS NULL",
        (view,),
    ).fetchone()
    assert row is not None
    return Summary(int(row[0]), int(row[1]), int(row[2]))


@dataclass(frozen=True)
class DegradedTenant:
    view: str
    tenant_id: UUID | None
    since: datetime
    failed: int
    parked: int


# /readyz lists at most this many tenants per view (most degraded views have one or two; a
# broken deployment may have every tenant).
DEGRADED_TENANTS_LISTED = 50


DEGRADED = (
    "SELECT view_name, tenant_id, since, failed, parked, tenants FROM ("
    "  SELECT view_name, tenant_id, min(quarantined_at) AS since, "
    "  count(*) FILTER (WHERE status = 'failed') AS failed, "
    "  count(*) FILTER (WHERE status = 'parked') AS parked, "
    "  count(*) OVER (PARTITION BY view_name) AS tenants, "
    "  row_number() OVER (PARTITION BY view_name ORDER BY min(quarantined_at), tenant_id) AS n "
    "  FROM training.projection_quarantine WHERE resolved_at IS NULL "
    "  GROUP BY view_name, tenant_id"
    f") AS held WHERE n <= {DEGRADED_TENANTS_LISTED} ORDER BY view_name, n"
)


class DegradedViews:
    """What ``/readyz`` reads of the quarantine, as the worker role: the API's platform
    sessions see no tenant's rows. One pooled connection at most, opened when first asked and
    closed after a while idle, so a flood of ``/readyz`` requests opens no more."""

    def __init__(self, worker_conninfo: str) -> None:
        self.pool = AsyncConnectionPool(
            worker_conninfo, min_size=0, max_size=1, open=False, timeout=5.0, max_idle=300.0
        )

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    async def rows(self) -> list[tuple[Any, ...]]:
        """(view, tenant, since, failed, parked, degraded tenants of the view), per view the
        longest degraded first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(DEGRADED)
            return list(await cur.fetchall())


def tenant_arg(value: str) -> UUID | None:
    """``--tenant``: a tenant id, or ``platform`` for the platform's own events."""
    return None if value == "platform" else UUID(value)


def tenants_text(tenants: Sequence[UUID | None]) -> str:
    return ", ".join(tenant_text(t) for t in tenants)


async def held_back(
    conn: AsyncConnection[Any], views: Sequence[str], tenant_id: UUID | None, position: int
) -> tuple[str, int] | None:
    """The first of ``views`` that holds back an event of ``tenant_id`` at or before
    ``position``, and how many of the tenant's events it holds: a read that asked for that
    position would not see its own write. ``conn`` is in a transaction, which this scopes to
    ``tenant_id`` (the rows are the tenant's)."""
    await scope_to_async(conn, tenant_id)
    cur = await conn.execute(
        "SELECT view_name, count(*) FROM training.projection_quarantine "
        "WHERE view_name = ANY(%s) AND tenant_id IS NOT DISTINCT FROM %s "
        "AND resolved_at IS NULL GROUP BY view_name "
        "HAVING min(notification_id) <= %s ORDER BY view_name LIMIT 1",
        (list(views), tenant_id, position),
    )
    row = await cur.fetchone()
    return (str(row[0]), int(row[1])) if row else None


async def refuse_if_held_back(
    store: ReadStore, views: Sequence[ViewInfo], tenant_id: UUID | None, position: int
) -> None:
    """Read-your-writes for a degraded tenant: the view's position has passed the write, but
    the write may be among the events held back, so the read answers as a view behind. A view
    of the planning process's events (tracks) is behind too while the process holds back the
    tenant's events, which are positions in the same log as the write's."""
    names = [view.name for view in views if view.upstream == APPLICATION_NAME]
    names += sorted({view.upstream for view in views if view.upstream != APPLICATION_NAME})
    if not names:
        return
    async with store.session(tenant_id) as conn:
        held = await held_back(conn, names, tenant_id, position)
    if held is not None:
        raise ViewBehind(held[0], position, held[1])
