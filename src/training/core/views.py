"""What every read-model view shares: one transaction for its rows and its position.

A view method receives the event's tenant and a function that writes rows. It opens one
transaction, scopes it to that tenant (row-level security checks every row written), records
the tracking position (which refuses a position already processed) and writes the rows. A
crash anywhere rolls back both, so a replayed event is neither lost nor applied twice.

Runners and rebuilds run a view's projection inside ``quarantining``: an event the projection
cannot apply is quarantined (``quarantine.py``) instead of stopping the view for every tenant.
``projections retry`` re-applies a quarantined event through the same view methods, with the
view ``releasing`` it: the position is not recorded again (it was, when the event was set
aside), and the quarantine row is resolved in the transaction that writes the rows.

A view whose events are many and alike (the tracks view's re-plans, ADR 0041) may write a
batch's run of them together: ``write_together`` keeps each item until the batch's next
other write, its end, or a tenant change, and ``write_items`` then writes them with a few
set-based statements in the batch's transaction. Outside a batch an item is written alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar
from uuid import UUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import EventSourcedProjection, Projection
from psycopg import Cursor, Pipeline

from training.core import quarantine
from training.core.application import TrainingApplication
from training.core.quarantine import EventRef, Quarantine
from training.core.read_store import ViewInfo
from training.core.tenant_scope import scope_to

Writer = Callable[[Cursor[Any]], None]
# The most items a view keeps for one set-based write (the runner's batches hold at most
# 500 events; a rebuild's one batch flushes them at every page as well).
MAX_TOGETHER = 500


def rows_as_json(rows: Any) -> str:
    """Rows for ``jsonb_to_recordset``, the parameter of a set-based write (``write_items``):
    msgspec encodes them in one call, where psycopg would adapt every value of every array
    in Python (ADR 0041)."""
    return msgspec.json.encode(rows).decode()


def commit_without_waiting_for_the_flush(cursor: Cursor[Any]) -> None:
    """A view's transaction commits without waiting for its WAL to reach the disk (ADR 0038).

    A view is derived from the log, and its position commits with its rows: a crash may lose
    the last fraction of a second of a view's commits, rows and position together, and the
    runner then applies those events again from the log, exactly once. The log's own commits
    still wait for the flush. Each command's event is followed by a commit in every view that
    follows it; waiting for each of those flushes was most of the database's time.
    """
    cursor.execute("SET LOCAL synchronous_commit = off")


class TenantScopedView(PostgresTrackingRecorder):
    """Base class of the read-model views. Tables come from ``migrations/``."""

    # Read-model tables the view writes; ``projections rebuild`` empties them.
    tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self._releasing: EventRef | None = None
        self.released = False
        self._batch: _Batch | None = None
        self.batches = 0  # committed (the runner's tests count them)

    @contextmanager
    def batch(self, prologue: Writer | None = None) -> Iterator[None]:
        """The events applied meanwhile write in one transaction, and their last position is
        the one tracking write: the batch commits whole or not at all, so an event is still
        applied exactly once. ``prologue`` writes first, in the same transaction."""
        with (
            self.datastore.transaction(commit=True) as cursor,
            cursor.connection.pipeline() as pipeline,
        ):
            # Pipelined: the batch's statements go out without waiting for each answer (a
            # statement that fails is reported at the next read or at the end, and the whole
            # batch is then applied again one event at a time, each reporting its own).
            commit_without_waiting_for_the_flush(cursor)
            if prologue is not None:
                prologue(cursor)
            batch = _Batch(cursor, pipeline)
            self._batch = batch
            try:
                yield
                self._write_kept(batch)
            finally:
                self._batch = None
            if batch.last is not None:
                self._insert_tracking(cursor, batch.last)
        self.batches += 1

    def sync_batch(self) -> None:
        """Waits for the answers to the batch's statements so far (a long batch, such as a
        rebuild, keeps few of them pending)."""
        if self._batch is not None:
            self._write_kept(self._batch)
            self._batch.pipeline.sync()

    def write(self, tracking: Tracking, tenant_id: UUID | None, writer: Writer) -> None:
        if self._batch is not None:
            self._write_kept(self._batch)
            writer(self._scoped(self._batch, tenant_id))
            self._batch.last = tracking
            return
        releasing = self._releasing_at(tracking)
        with self.datastore.transaction(commit=True) as cursor:
            commit_without_waiting_for_the_flush(cursor)
            if releasing is not None:
                quarantine.lock_exclusive(cursor, releasing.view, releasing.tenant_id)
            scope_to(cursor, tenant_id)
            if releasing is None:
                self._insert_tracking(cursor, tracking)
            writer(cursor)
            if releasing is not None:
                quarantine.release(cursor, releasing)
        self.released = releasing is not None

    def insert_tracking(self, tracking: Tracking) -> None:
        """An event the view has nothing to write for: its position only (or, re-applying a
        quarantined event, its release)."""
        if self._batch is not None:
            self._write_kept(self._batch)
            self._batch.last = tracking
            return
        releasing = self._releasing_at(tracking)
        with self.datastore.transaction(commit=True) as cursor:
            commit_without_waiting_for_the_flush(cursor)
            if releasing is None:
                self._insert_tracking(cursor, tracking)
                return
            quarantine.lock_exclusive(cursor, releasing.view, releasing.tenant_id)
            quarantine.release(cursor, releasing)
        self.released = True

    def write_together(self, tracking: Tracking, tenant_id: UUID | None, item: Any) -> None:
        """In a batch: keeps ``item`` for one ``write_items`` with the items of the events
        that follow it, all in the batch's transaction (so still exactly once); alone: writes
        it in a transaction of its own, as ``write`` does."""
        batch = self._batch
        if batch is None:
            self.write(tracking, tenant_id, lambda cursor: self.write_items(cursor, [item]))
            return
        if batch.kept and batch.kept_scope != tenant_id:
            self._write_kept(batch)
        batch.kept.append(item)
        batch.kept_scope = tenant_id
        batch.last = tracking
        if len(batch.kept) >= MAX_TOGETHER:
            self._write_kept(batch)

    def write_items(self, cursor: Cursor[Any], items: Sequence[Any]) -> None:
        """Writes the items of ``write_together``, in their events' order, all of one tenant."""
        raise NotImplementedError(f"{type(self).__name__} writes nothing together")

    def _write_kept(self, batch: _Batch) -> None:
        if not batch.kept:
            return
        items, batch.kept = batch.kept, []
        self.write_items(self._scoped(batch, batch.kept_scope), items)

    @staticmethod
    def _scoped(batch: _Batch, tenant_id: UUID | None) -> Cursor[Any]:
        if batch.scope != tenant_id:
            scope_to(batch.cursor, tenant_id)
            batch.scope = tenant_id
        return batch.cursor

    @contextmanager
    def releasing(self, ref: EventRef) -> Iterator[None]:
        """Re-applies the quarantined ``ref``: the view methods called meanwhile resolve it."""
        self._releasing, self.released = ref, False
        try:
            yield
        finally:
            self._releasing = None

    def _releasing_at(self, tracking: Tracking) -> EventRef | None:
        ref = self._releasing
        return ref if ref is not None and ref.tracking == tracking else None


NO_SCOPE = object()


@dataclass
class _Batch:
    cursor: Cursor[Any]
    pipeline: Pipeline
    last: Tracking | None = None
    # The tenant the transaction is scoped to (NO_SCOPE: none yet); consecutive events of
    # one tenant need no new scope.
    scope: UUID | object | None = NO_SCOPE
    # Items of ``write_together`` not written yet, all of the tenant ``kept_scope``.
    kept: list[Any] = field(default_factory=list)
    kept_scope: UUID | None = None


@cache
def quarantining(projection_class: type[Projection[Any]]) -> type[Projection[Any]]:
    """``projection_class``, applying each event through a ``Quarantine`` of its view."""

    class Quarantining(Projection[Any]):
        name = projection_class.name
        topics = projection_class.topics

        def __init__(self, view: Any) -> None:
            super().__init__(view)
            self.inner = projection_class(view=view)
            self.quarantine = Quarantine(self.name, view)

        def process_event(self, domain_event: Any, tracking: Tracking) -> None:
            self.quarantine.apply(domain_event, tracking, self.inner.process_event)

        def process_batch(self, events: Sequence[tuple[Any, Tracking]]) -> None:
            """Applies ``events`` in one transaction of the view. When one of their tenants
            has events held, or one event fails, the batch writes nothing and each event
            goes through the quarantine on its own, as it would alone."""
            view = self.inner.view
            if not self.quarantine.may_hold_any(event for event, _ in events):
                try:
                    with view.batch():
                        for domain_event, tracking in events:
                            self.inner.process_event(domain_event, tracking)
                    return
                except Exception as error:
                    if self.quarantine.transient(error):
                        raise
            for domain_event, tracking in events:
                self.process_event(domain_event, tracking)

    Quarantining.__name__ = Quarantining.__qualname__ = f"Quarantining{projection_class.__name__}"
    return Quarantining


@dataclass(frozen=True)
class ProjectionSpec:
    """A read model (projection and view), or with no view an event-sourced policy that
    owns aggregates of its own; ``upstream`` is the application whose events it follows."""

    projection_class: type[Projection[Any]] | type[EventSourcedProjection[Any]]
    view_class: type[TenantScopedView] | None = None
    upstream: type[Application[Any]] = TrainingApplication

    @property
    def name(self) -> str:
        return str(self.projection_class.name)

    @property
    def is_policy(self) -> bool:
        return self.view_class is None

    @property
    def runnable_class(self) -> type[Projection[Any]] | type[EventSourcedProjection[Any]]:
        """What a runner runs: a read model's projection quarantines the events it cannot
        apply (ADR 0026); a policy runs as it is."""
        if self.view_class is None:
            return self.projection_class
        return quarantining(self.projection_class)

    @property
    def info(self) -> ViewInfo:
        return ViewInfo(self.name, tuple(self.projection_class.topics), str(self.upstream.name))
