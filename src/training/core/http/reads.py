"""Reading from a controller: the caller's tenant's views, after the caller's own writes.

A query that carries ``Training-Position`` (what a command answered) waits, bounded, until the
views it reads hold the caller's tenant's events up to it; another tenant's backlog is not
waited for (ADR 0028). ``Reads.session`` is the read-only transaction scoped to the caller's
tenant, or to the platform for the operator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from training.core.held_events import held_back, refuse_if_held_back
from training.core.read_store import APPLICATION_NAME, ReadStore, ViewBehind, ViewInfo


@dataclass(frozen=True)
class Reads:
    """The read store as one request's caller uses it."""

    store: ReadStore
    tenant_id: UUID | None
    # The ``Training-Position`` the caller sent, read only when a view is waited for: a route
    # that never waits (a sign-in callback) does not refuse a header it does not use.
    sent_position: Callable[[], int | None]
    wait: float
    # The processes whose own events some views follow, by application name.
    producers: Mapping[str, ViewInfo] = field(default_factory=dict)

    async def after(self, views: Sequence[ViewInfo], *, tenant_id: UUID | None = None) -> None:
        """Waits until ``views`` reflect the position the caller sent back, if it sent one:
        the caller's tenant's events up to it (``tenant_id`` names the tenant where a route
        has no principal, as a calendar feed's secret URL)."""
        await read_your_writes(
            self.store,
            views,
            self.sent_position(),
            self.tenant_id if tenant_id is None else tenant_id,
            wait=self.wait,
            producers=self.producers,
        )

    @asynccontextmanager
    async def session(
        self, *, tenant_id: UUID | None = None, primary: bool = False
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """A read-only transaction scoped to the caller's tenant (or to ``tenant_id``); on the
        primary (``primary``) when a write is decided on what it reads."""
        scope = self.tenant_id if tenant_id is None else tenant_id
        async with self.store.session(scope, primary=primary) as conn:
            yield conn


async def read_your_writes(
    store: ReadStore,
    views: Sequence[ViewInfo],
    position: int | None,
    tenant_id: UUID | None,
    *,
    wait: float,
    producers: Mapping[str, ViewInfo],
) -> None:
    """Waits until every view in ``views`` holds ``tenant_id``'s events up to ``position``
    (every tenant's when ``tenant_id`` is None, the platform's own reads), or raises
    ``ViewBehind``."""
    if position is None:
        return
    reached = await store.wait_for(views, position, wait, tenant_id=tenant_id, producers=producers)
    # A view passes the positions of the events it quarantines (ADR 0026): not the tenant's.
    await refuse_if_held_back(store, views, tenant_id, position)
    derived = [view.name for view in views if view.upstream != APPLICATION_NAME]
    if derived:
        # Their quarantined events are positions in their producer's log.
        async with store.session(None) as conn:
            for name in derived:
                held = await held_back(conn, [name], tenant_id, reached[name])
                if held is not None:
                    raise ViewBehind(held[0], position, held[1])
