"""Stores events as msgspec JSON, so enums, dates, UUIDs and tuples of structs come back typed.

The library's default JSON transcoder cannot encode enums, dates or dataclasses; msgspec
encodes all of them and ``msgspec.convert`` rebuilds the frozen event dataclass with its
declared field types. Upcasting (``class_version`` plus ``upcast_vN_vN+1`` static methods
on the event class) works as in the library's own mapper.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import get_topic, resolve_topic

from training.core.aggregate import TrainingAggregate

_preparing = threading.Lock()
_prepared: set[type] = set()


def prepare_event_types() -> None:
    """Builds msgspec's description of every event class, once, before any event is read.

    msgspec builds it on a class's first ``convert`` and stores it on the class. When several
    threads read the same new event type for the first time at once (every projection runner
    reads each new event), the builds race, and the process crashed in msgspec's C code (a
    segmentation fault, reproduced with a short thread switch interval). Built here under a
    lock, the description is only ever read afterwards.
    """
    with _preparing:
        for cls in _defined_event_classes(TrainingAggregate.Event):
            if cls not in _prepared:
                msgspec.json.Decoder(cls)  # builds and keeps the class's description
                _prepared.add(cls)


def prepare_type(cls: type) -> None:
    """``prepare_event_types`` for one more stored type that is not an aggregate's event (the
    snapshots)."""
    with _preparing:
        if cls not in _prepared:
            msgspec.json.Decoder(cls)
            _prepared.add(cls)


def _defined_event_classes(base: type) -> list[type]:
    """Every subclass of ``base`` defined so far. Every context's domain is imported before
    an application is made (the handlers and views import them; ``training.catalog`` lists
    them all), so core finds the event classes without naming a context."""
    found: list[type] = []
    pending: list[type] = list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


class PassThroughTranscoder(Transcoder):
    """The mapper does the encoding itself; the transcoder only satisfies the library's API."""

    def encode(self, obj: Any) -> bytes:
        return msgspec.json.encode(obj)

    def decode(self, data: bytes) -> Any:
        return msgspec.json.decode(data)


class MsgspecMapper(Mapper[UUID]):
    def __init__(
        self,
        transcoder: Transcoder,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        super().__init__(transcoder, compressor, cipher)
        prepare_event_types()

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        data = msgspec.json.encode(state)
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=data,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        data = stored_event.state
        try:
            if self.cipher:
                data = self.cipher.decrypt(data)
            if self.compressor:
                data = self.compressor.decompress(data)
            state: dict[str, Any] = msgspec.json.decode(data)
            from_version = state.pop("class_version", 1)
            while from_version < getattr(cls, "class_version", 1):
                getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
                from_version += 1
            state["originator_id"] = stored_event.originator_id
            state["originator_version"] = stored_event.originator_version
            event: DomainEventProtocol[UUID] = msgspec.convert(state, type=cls, strict=False)
        except (msgspec.MsgspecError, AttributeError, TypeError) as error:
            msg = (
                f"cannot read stored event {stored_event.topic} "
                f"{stored_event.originator_id} v{stored_event.originator_version}: {error}"
            )
            raise MapperDeserialisationError(msg) from error
        return event
