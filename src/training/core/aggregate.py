"""What every aggregate and event of the service shares.

Every event records who caused it (``actor``), in which request (``request_id``) and for
which tenant (``tenant_id``). The domain leaves them empty; the application's command bus
stamps them on the pending events before saving, so aggregate methods stay free of transport
concerns and every projection (the audit log first) knows each event's tenant.

An aggregate that belongs to a tenant takes it as a keyword-only ``tenant_id`` argument of
``__init__`` with a default: the created event then reuses the base class field instead of
redefining it, and the aggregate's factory method makes the argument required.
"""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

# Never change: every deterministic aggregate id is derived from it.
ID_NAMESPACE = UUID("5b0f1d6c-6f57-4a8e-9c1e-2b7f0d0c7a11")


def stable_id(*parts: object) -> UUID:
    """A deterministic id from a natural key, e.g. ``stable_id("tenants", "acme")``."""
    return uuid5(ID_NAMESPACE, "/" + "/".join(str(part) for part in parts))


class TrainingAggregate(Aggregate):
    """Base class of the service's aggregates; each concrete class pins its topics."""

    class Event(Aggregate.Event):
        # Pinned on every concrete event class, so moving code never breaks stored events.
        TOPIC: ClassVar[str]

        actor: str = field(default="", kw_only=True)
        request_id: str = field(default="", kw_only=True)
        tenant_id: UUID | None = field(default=None, kw_only=True)

    class Created(Event, Aggregate.Created):
        pass

    # The tenant the aggregate belongs to; ``None`` only for platform-level aggregates such as
    # the operator's own API clients. Set by every concrete ``__init__``.
    tenant_id: UUID | None

    # Every how many versions a snapshot is stored, for aggregates whose history grows
    # without end; they also declare ``SnapshotState`` (core/snapshots.py, ADR 0043).
    snapshot_interval: ClassVar[int | None] = None
