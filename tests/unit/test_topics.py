"""Topics are pinned, so moving or renaming code never breaks stored events."""

from __future__ import annotations

from eventsourcing.utils import get_topic, resolve_topic

from training.catalog import AGGREGATES, event_classes


def test_every_aggregate_and_event_pins_its_own_topic() -> None:
    seen: set[str] = set()
    for aggregate in AGGREGATES:
        assert "TOPIC" in vars(aggregate), aggregate
        assert resolve_topic(aggregate.TOPIC) is aggregate
        classes = event_classes(aggregate)
        assert classes, aggregate
        for cls in classes:
            # The library wraps command-method events in a subclass; the pinned topic is the
            # one declared on the event class itself, never the aggregate's base Event topic.
            assert cls.TOPIC != aggregate.Event.TOPIC, cls
            assert cls.TOPIC.endswith(f".{cls.__name__}"), cls
            assert get_topic(cls) == cls.TOPIC
            assert resolve_topic(cls.TOPIC) is cls
            assert cls.TOPIC not in seen
            seen.add(cls.TOPIC)
