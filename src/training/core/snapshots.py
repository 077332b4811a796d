"""Snapshots of aggregates whose history grows without end, so loading one costs the same at
any age (ADR 0043).

An aggregate class opts in with ``snapshot_interval`` (every that many versions) and
``SnapshotState``, a ``TypedDict`` of every attribute it keeps, with their types. A snapshot
is taken after the command that wrote a version divisible by the interval has committed,
from the aggregate as that command left it; the repository then loads the latest snapshot
and replays only the events after it.

- **Typed.** The library's snapshot stores the aggregate's attributes as a dict, which the
  service's msgspec mapper reads back as JSON: dates and ids would come back as strings.
  ``TrainingSnapshot`` converts them to the types ``SnapshotState`` declares, and refuses to
  take a snapshot of an aggregate whose attributes are not exactly those.
- **Disposable.** A snapshot is derived from events that stay: deleting any or all of them
  (``DELETE FROM training.training_snapshots``) only makes the next loads replay more. So a
  snapshot that cannot be written is logged, never an error for the command, which has
  already committed; and a change to an aggregate's attributes needs no upcaster for its
  snapshots when they are deleted with the release (or a ``class_version`` upcaster, as for
  events, when they are kept).
- **No personal data.** Names and emails live beside the events, never in them (ADR 0006),
  and so never in an aggregate's attributes or its snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast
from uuid import UUID

import msgspec
import structlog
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import register_topic, resolve_topic

from training.core.aggregate import TrainingAggregate
from training.core.application import TrainingApplication
from training.core.mapper import prepare_type

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class TrainingSnapshot(Snapshot):
    """A snapshot whose state comes back with the types its aggregate declares."""

    # Pinned, as every event's topic is, so moving this module never orphans a snapshot.
    TOPIC: ClassVar[str] = "training.core:Snapshot"

    @classmethod
    def take(cls, aggregate: Any) -> TrainingSnapshot:
        snapshot = super().take(aggregate)
        declared = set(state_type(type(aggregate)).__annotations__)
        kept = set(snapshot.state) - {"class_version"}
        if kept != declared:
            msg = (
                f"{type(aggregate).__name__}.SnapshotState does not match the aggregate's "
                f"attributes: missing {sorted(kept - declared)}, extra {sorted(declared - kept)}"
            )
            raise TypeError(msg)
        return snapshot

    def mutate(self, _: None) -> Any:
        """The library's ``Snapshot.mutate``, with the state typed after any upcasting."""
        aggregate_class = resolve_topic(self.topic)
        state = dict(self.state)
        from_version = state.pop("class_version", 1)
        while from_version < getattr(aggregate_class, "class_version", 1):
            getattr(aggregate_class, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        typed: dict[str, Any] = msgspec.convert(state, state_type(aggregate_class), strict=False)
        typed["_id"] = self.originator_id
        typed["_version"] = self.originator_version
        typed["_pending_events"] = []
        aggregate = object.__new__(aggregate_class)
        object.__setattr__(aggregate, "__dict__", typed)
        return aggregate


register_topic(TrainingSnapshot.TOPIC, TrainingSnapshot)
prepare_type(TrainingSnapshot)


def state_type(aggregate_class: type) -> type:
    state = getattr(aggregate_class, "SnapshotState", None)
    if state is None:
        msg = f"{aggregate_class.__name__} declares no SnapshotState"
        raise TypeError(msg)
    return cast(type, state)


def due(
    aggregates: Iterable[TrainingAggregate], events: Sequence[TrainingAggregate.Event]
) -> list[TrainingAggregate]:
    """The aggregates, among those a command saved, that one of its events brought to a
    version divisible by their class's ``snapshot_interval``."""
    written: dict[UUID, list[int]] = {}
    for event in events:
        written.setdefault(event.originator_id, []).append(event.originator_version)
    found = []
    for aggregate in aggregates:
        interval = type(aggregate).snapshot_interval
        versions = written.get(aggregate.id, [])
        if interval and any(version % interval == 0 for version in versions):
            found.append(aggregate)
    return found


def store(app: TrainingApplication, aggregates: Sequence[TrainingAggregate]) -> None:
    """Stores a snapshot of each aggregate, as it is now: after its command committed."""
    if app.snapshots is None or not aggregates:
        return
    for aggregate in aggregates:
        try:
            app.snapshots.put([TrainingSnapshot.take(aggregate)])
        except IntegrityError:
            # Another process stored this version's snapshot first: the same state.
            log.debug("snapshot.stored_elsewhere", aggregate_id=str(aggregate.id))
        except Exception:  # a snapshot only saves replay; the command has committed
            log.warning(
                "snapshot.failed",
                aggregate=type(aggregate).__name__,
                aggregate_id=str(aggregate.id),
                version=aggregate.version,
                exc_info=True,
            )
