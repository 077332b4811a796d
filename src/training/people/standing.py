"""What ``member_in_force`` needs to answer without replaying: the current versions of a few
aggregates in one indexed read, and answers kept under the versions they were read at.

Whether a member may act depends only on the member's and the tenant's events. Every event
raises its aggregate's version, so an answer kept under the versions it was computed from is
right for as long as those are still the latest versions, and reading the latest versions
costs one probe of the events table's primary key per aggregate, where loading an aggregate
reads its new events, locks it and deep-copies it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from training.core.application import TrainingApplication

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def latest_versions(app: TrainingApplication, aggregate_ids: Sequence[UUID]) -> dict[UUID, int]:
    """The version of each of ``aggregate_ids`` now; one that has no event is left out."""
    recorder = app.recorder
    if not isinstance(recorder, PostgresApplicationRecorder):  # the in-memory store
        found: dict[UUID, int] = {}
        for aggregate_id in aggregate_ids:
            last = recorder.select_events(aggregate_id, desc=True, limit=1)
            if last:
                found[aggregate_id] = last[0].originator_version
        return found
    # One backward probe of the primary key (originator_id, originator_version) per id.
    statement = SQL(
        "SELECT ids.id AS originator_id, (SELECT e.originator_version FROM {schema}.{table} e "
        "WHERE e.originator_id = ids.id ORDER BY e.originator_version DESC LIMIT 1) AS version "
        "FROM unnest(%s::uuid[]) AS ids(id)"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, (list(aggregate_ids),))
        return {
            row["originator_id"]: int(row["version"])
            for row in curs.fetchall()
            if row["version"] is not None
        }


class VersionedCache(Generic[K, V]):
    """Values by key, each valid only at the versions it was computed from; the least
    recently used goes first beyond ``max_entries``. Safe to share between threads."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[tuple[int, ...], V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K, versions: tuple[int, ...]) -> V | None:
        """The value of ``key`` if it was computed at exactly ``versions``."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] != versions:
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: K, versions: tuple[int, ...], value: V) -> None:
        with self._lock:
            self._entries[key] = (versions, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
