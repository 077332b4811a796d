"""The event store's repository, with cached aggregates that threads can share safely.

The library's repository keeps recent aggregates in a cache and, on each ``get``, brings the
cached aggregate up to date in place ("fast-forward", under a lock per aggregate) and then
deep-copies it for the caller, after releasing that lock. A second thread may be
fast-forwarding the same cached object while the first one copies it, and copying a dict or
a set that changes underneath fails ("dictionary changed size during iteration"): a command
that should have succeeded answers 500. Here one lock per aggregate covers both steps.

The library's repository also asks the snapshot store before every load it cannot serve from
its cache, for any aggregate, found or not. Only a few aggregate classes are snapshotted
(ADR 0043), and a command checks several ids that do not exist yet: asked every time, that
query cost a quarter of the member registrations a second at 16 clients. Here the snapshots
are asked only when the caller says the class has them (``get(..., snapshots=True)``).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository

# Whether the load under way may start from a snapshot: set by ``get`` for the library's
# ``_reconstruct_aggregate``, which it calls with no room for more arguments.
_from_snapshots: ContextVar[bool] = ContextVar("from_snapshots", default=False)


class SharedCacheRepository(Repository[UUID]):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._guard = threading.Lock()
        # Locks of aggregates being read, and how many readers use each: a lock lives only as
        # long as someone holds or waits for it, so the map stays as small as the concurrency.
        self._reading: dict[UUID, tuple[threading.Lock, int]] = {}

    def get(self, aggregate_id: UUID, *, snapshots: bool = False, **kwargs: Any) -> Any:
        token = _from_snapshots.set(snapshots)
        try:
            if not self.cache or kwargs.get("version") is not None:
                return super().get(aggregate_id, **kwargs)
            lock = self._take(aggregate_id)
            try:
                with lock:
                    return super().get(aggregate_id, **kwargs)
            finally:
                self._give_back(aggregate_id)
        finally:
            _from_snapshots.reset(token)

    def _reconstruct_aggregate(
        self, aggregate_id: UUID, version: int | None, projector_func: Any
    ) -> Any:
        if _from_snapshots.get():
            return super()._reconstruct_aggregate(aggregate_id, version, projector_func)
        aggregate = projector_func(
            None, self.event_store.get(originator_id=aggregate_id, lte=version)
        )
        if aggregate is None:
            msg = f"Aggregate {aggregate_id!r} version {version!r} not found."
            raise AggregateNotFoundError(msg)
        return aggregate

    def _take(self, aggregate_id: UUID) -> threading.Lock:
        with self._guard:
            lock, readers = self._reading.get(aggregate_id, (threading.Lock(), 0))
            self._reading[aggregate_id] = (lock, readers + 1)
            return lock

    def _give_back(self, aggregate_id: UUID) -> None:
        with self._guard:
            lock, readers = self._reading[aggregate_id]
            if readers == 1:
                del self._reading[aggregate_id]
            else:
                self._reading[aggregate_id] = (lock, readers - 1)
