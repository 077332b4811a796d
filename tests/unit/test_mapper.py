"""The msgspec mapper keeps every value type the domain uses, and upcasts old events."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

import msgspec
from eventsourcing.domain import event
from eventsourcing.persistence import StoredEvent

from training.core.aggregate import TrainingAggregate
from training.core.mapper import MsgspecMapper, PassThroughTranscoder


class Format(enum.StrEnum):
    VIDEO = "video"
    LAB = "lab"


class Level(enum.IntEnum):
    ONE = 1
    FOUR = 4


class Target(msgspec.Struct, frozen=True):
    skill: str
    level: Level
    due: dt.date


class Sample(TrainingAggregate):
    TOPIC = "tests.mapper:Sample"

    class Event(TrainingAggregate.Event):
        TOPIC = "tests.mapper:Sample.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "tests.mapper:Sample.Created"

    class Started(Created):
        TOPIC = "tests.mapper:Sample.Started"
        format: Format
        targets: tuple[Target, ...]
        starts_on: dt.date
        at: dt.datetime
        owner: uuid.UUID | None
        weight: Decimal
        tags: frozenset[str]

    class Relabelled(Event):
        TOPIC = "tests.mapper:Sample.Relabelled"
        class_version = 2
        label: str
        locale: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["locale"] = "en"

    @event(Started)
    def __init__(
        self,
        format: Format,
        targets: tuple[Target, ...],
        starts_on: dt.date,
        at: dt.datetime,
        owner: uuid.UUID | None,
        weight: Decimal,
        tags: frozenset[str],
        *,
        tenant_id: uuid.UUID | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.format = format
        self.targets = targets

    @event(Relabelled)
    def relabel(self, label: str, locale: str) -> None:
        self.label = label
        self.locale = locale


def mapper() -> MsgspecMapper:
    return MsgspecMapper(transcoder=PassThroughTranscoder())


def test_every_value_type_survives_a_round_trip() -> None:
    sample = Sample(
        format=Format.LAB,
        targets=(
            Target("k8s", Level.FOUR, dt.date(2026, 12, 1)),
            Target("sql", Level.ONE, dt.date(2027, 1, 5)),
        ),
        starts_on=dt.date(2026, 11, 30),
        at=dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC),
        owner=uuid.uuid4(),
        weight=Decimal("0.75"),
        tags=frozenset({"a", "b"}),
        tenant_id=uuid.uuid4(),
    )
    [original] = sample.collect_events()
    stored = mapper().to_stored_event(original)
    restored = mapper().to_domain_event(stored)
    assert restored == original
    assert isinstance(restored, Sample.Started)
    assert restored.format is Format.LAB
    assert restored.targets[0].level is Level.FOUR
    assert isinstance(restored.targets, tuple)
    assert isinstance(restored.starts_on, dt.date)
    assert restored.at.tzinfo is not None


def test_an_old_event_is_upcast_on_read() -> None:
    originator = uuid.uuid4()
    # What version 1 of Relabelled stored, before the locale field existed.
    stored = StoredEvent(
        originator_id=originator,
        originator_version=2,
        topic="tests.mapper:Sample.Relabelled",
        state=b'{"timestamp":"2026-01-02T03:04:05Z","actor":"client:x","request_id":"r","tenant_id":null,"label":"old"}',
    )
    event = mapper().to_domain_event(stored)
    assert isinstance(event, Sample.Relabelled)
    assert (event.label, event.locale, event.actor) == ("old", "en", "client:x")
    # New events record their class version so they are not upcast again.
    rewritten = mapper().to_stored_event(event)
    assert b'"class_version":2' in rewritten.state
    assert mapper().to_domain_event(rewritten) == event


def test_a_mapper_prepares_every_event_type_before_any_event_is_read() -> None:
    # Reading one new event type from several threads at once crashed the process in
    # msgspec while it built the type's description; a mapper builds them all first.
    from training.catalog import AGGREGATES, PLANNING_AGGREGATES, event_classes

    MsgspecMapper(transcoder=PassThroughTranscoder())
    classes = [
        cls for aggregate in (*AGGREGATES, *PLANNING_AGGREGATES) for cls in event_classes(aggregate)
    ]
    assert len(classes) > 50
    unprepared = [cls.__qualname__ for cls in classes if "__msgspec_cache__" not in vars(cls)]
    assert unprepared == []
