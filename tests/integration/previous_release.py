"""Events written the way a previous release stored them, for the tests of the one-time steps
of ``training migrate`` that rewrite stored events."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
from eventsourcing.persistence import StoredEvent

from training.core.bus import CommandBus
from training.core.personal_data import MemberDataChange


class PreviousReleaseStore:
    """Writes one tenant's events straight into the store, in the shapes and with the fields
    given, counting each aggregate's versions itself (the current mapper would upcast)."""

    def __init__(self, bus: CommandBus, tenant_id: uuid.UUID, actor: str) -> None:
        self.bus = bus
        self.tenant_id = tenant_id
        self.actor = actor
        self.versions: dict[uuid.UUID, int] = {}

    def stored(self, aggregate_id: uuid.UUID, topic: str, fields: dict[str, Any]) -> StoredEvent:
        version = self.versions.get(aggregate_id, 0) + 1
        self.versions[aggregate_id] = version
        state = {
            "timestamp": dt.datetime(2026, 10, 1, 9, version, tzinfo=dt.UTC).isoformat(),
            "actor": self.actor,
            "request_id": "old",
            "tenant_id": str(self.tenant_id),
            **fields,
        }
        return StoredEvent(aggregate_id, version, topic, msgspec.json.encode(state))

    def event(
        self,
        aggregate_id: uuid.UUID,
        topic: str,
        fields: dict[str, Any],
        people: tuple[MemberDataChange, ...] = (),
    ) -> None:
        stored = self.stored(aggregate_id, topic, fields)
        self.bus.app.recorder.insert_events([stored], personal_data=people)
