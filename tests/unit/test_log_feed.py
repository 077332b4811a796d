"""The shared reading of a log (ADR 0036), on an in-memory log: each follower gets every
event of its topics after its own place, once and in order, whether from the kept pages or
read on its own; a follower that does not take holds no other back; followers that start
together share one reading."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import Notification

from training.core import log_feed
from training.core.log_feed import LogFeed, Seat

TOPICS = ("a", "b", "c")


class StoredLog:
    """Notifications in order, appended to while the feed reads."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.lock = threading.Lock()
        self.queries = 0

    def append(self, count: int) -> None:
        with self.lock:
            start = len(self.notifications)
            for n in range(start + 1, start + count + 1):
                topic = TOPICS[n % len(TOPICS)]
                self.notifications.append(
                    Notification(
                        id=n,
                        originator_id=uuid.uuid4(),
                        originator_version=1,
                        topic=topic,
                        state=b"",
                    )
                )

    def last(self) -> int:
        with self.lock:
            return len(self.notifications)

    def after(
        self, start: int, limit: int, topics: frozenset[str] | set[str]
    ) -> list[Notification]:
        with self.lock:
            self.queries += 1
            found = [n for n in self.notifications[start:] if not topics or n.topic in topics]
        return found[:limit]


class Recorder:
    channel_name = "fake_events"
    events_table_name = "fake_events"

    class datastore:  # noqa: N801 (the library's attribute name)
        schema = "training"

    def __init__(self, stored: StoredLog) -> None:
        self.stored = stored

    def select_notifications(
        self, start: int, limit: int, topics: Any = (), *, inclusive_of_start: bool = True
    ) -> list[Notification]:
        assert not inclusive_of_start
        return self.stored.after(start, limit, set(topics))


class Mapper:
    def to_domain_event(self, notification: Notification) -> tuple[str, int]:
        return notification.topic, notification.id


def upstream_of(stored: StoredLog) -> Any:
    class Upstream:
        name = "fake"

        def __init__(self, env: Any) -> None:
            self.recorder = Recorder(stored)
            self.mapper = Mapper()

        def close(self) -> None:
            pass

    return Upstream


class InMemoryFeed(LogFeed):
    """Reads on a follower's own from the stored log instead of its database connection."""

    def __init__(self, stored: StoredLog) -> None:
        super().__init__(upstream_of(stored), {}, [])
        self.stored = stored

    def _select_alone(self, seat: Seat, limit: int) -> tuple[list[Notification], int]:
        last = self.stored.last()
        return self.stored.after(seat.scanned, limit, seat.topics), last


@pytest.fixture
def stored() -> StoredLog:
    return StoredLog()


@pytest.fixture
def feed(stored: StoredLog) -> Iterator[InMemoryFeed]:
    running = InMemoryFeed(stored)
    running.start()
    yield running
    running.stop()


def take_until(feed: LogFeed, seat: Seat, last: int, timeout: float = 10.0) -> list[int]:
    """Every notification id the seat takes until it has taken ``last``."""
    deadline = time.monotonic() + timeout
    taken: list[int] = []
    while not taken or taken[-1] < last:
        assert time.monotonic() < deadline, f"{seat.name} stopped at {taken[-1:]}"
        for (topic, n), tracking in feed.take(seat, 50, 0.2):
            assert tracking.notification_id == n
            assert seat.follows(topic)
            taken.append(n)
    return taken


def expected(after: int, upto: int, topics: tuple[str, ...]) -> list[int]:
    return [n for n in range(after + 1, upto + 1) if not topics or TOPICS[n % 3] in topics]


def test_followers_at_different_places_get_their_own_events_once_in_order(
    stored: StoredLog, feed: InMemoryFeed
) -> None:
    stored.append(1_000)
    only_a = feed.join("only-a", ["a"], 0, datastore=None)  # type: ignore[arg-type]
    a_and_b = feed.join("a-and-b", ["a", "b"], 600, datastore=None)  # type: ignore[arg-type]
    every = feed.join("every", [], 990, datastore=None)  # type: ignore[arg-type]
    feed.notify()
    assert take_until(feed, only_a, 999) == expected(0, 1_000, ("a",))
    assert take_until(feed, a_and_b, 1_000) == expected(600, 1_000, ("a", "b"))
    assert take_until(feed, every, 1_000) == expected(990, 1_000, ())

    stored.append(30)
    feed.notify()
    assert take_until(feed, every, 1_030) == expected(1_000, 1_030, ())
    assert take_until(feed, only_a, 1_029) == expected(999, 1_030, ("a",))
    assert every.shared > 0


def test_a_follower_that_does_not_take_holds_no_other_back(
    stored: StoredLog, feed: InMemoryFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_feed, "CAPACITY", 100)
    monkeypatch.setattr(log_feed, "AHEAD", 100)
    stored.append(3_000)
    stalled = feed.join("stalled", [], 0, datastore=None)  # type: ignore[arg-type]
    fast = feed.join("fast", [], 0, datastore=None)  # type: ignore[arg-type]
    feed.notify()
    # The fast one takes the whole log while the other takes nothing: what the feed keeps
    # first, then the rest on its own.
    assert take_until(feed, fast, 3_000) == expected(0, 3_000, ())
    assert (fast.shared > 0, fast.alone > 0) == (True, True)
    # The feed kept what the other had not taken, and reads on as it takes.
    assert take_until(feed, stalled, 3_000) == expected(0, 3_000, ())
    assert (stalled.shared, stalled.alone) == (3_000, 0)

    # Both at the end now: what comes next is read once for both.
    fast_before, stalled_before = fast.shared, stalled.shared
    stored.append(10)
    feed.notify()
    assert take_until(feed, stalled, 3_010) == expected(3_000, 3_010, ())
    assert take_until(feed, fast, 3_010) == expected(3_000, 3_010, ())
    assert (fast.shared - fast_before, stalled.shared - stalled_before) == (10, 10)


def test_a_follower_behind_what_is_kept_reads_on_its_own_then_joins(
    stored: StoredLog, feed: InMemoryFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_feed, "CAPACITY", 100)
    monkeypatch.setattr(log_feed, "AHEAD", 100)
    stored.append(1_000)
    live = feed.join("live", [], 0, datastore=None)  # type: ignore[arg-type]
    feed.notify()
    assert take_until(feed, live, 1_000) == expected(0, 1_000, ())
    # Led late, from far behind what the feed keeps now.
    late = feed.join("late", ["a"], 10, datastore=None)  # type: ignore[arg-type]
    assert take_until(feed, late, 999) == expected(10, 1_000, ("a",))
    assert late.alone > 0
    shared_before = late.shared
    stored.append(30)
    feed.notify()
    assert take_until(feed, late, 1_029) == expected(999, 1_030, ("a",))
    assert late.shared - shared_before == 10
    assert take_until(feed, live, 1_030) == expected(1_000, 1_030, ())


def test_followers_that_start_together_share_one_reading(stored: StoredLog) -> None:
    stored.append(2_000)
    feed = InMemoryFeed(stored)
    seats = [feed.join(f"view-{n}", [], 0, datastore=None) for n in range(3)]  # type: ignore[arg-type]
    feed.start()
    try:
        for seat in seats:
            assert take_until(feed, seat, 2_000) == expected(0, 2_000, ())
        assert [seat.alone for seat in seats] == [0, 0, 0]
        # Four full pages and the short one that finds the end: once, not once per view.
        assert stored.queries <= 6
    finally:
        feed.stop()


def test_a_follower_leaving_and_coming_back_starts_from_the_place_it_gives(
    stored: StoredLog, feed: InMemoryFeed
) -> None:
    stored.append(500)
    seat = feed.join("view", ["c"], 0, datastore=None)  # type: ignore[arg-type]
    feed.notify()
    taken = take_until(feed, seat, 497)
    feed.leave(seat)
    # Restarted from its tracked position: the last event it applied.
    again = feed.join("view", ["c"], taken[100], datastore=None)  # type: ignore[arg-type]
    assert take_until(feed, again, 497) == taken[101:]


def test_events_stored_one_at_a_time_reach_every_follower_once_while_old_ones_go(
    stored: StoredLog, feed: InMemoryFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A live service: each notification brings a page of one event, and the feed, full,
    # drops what every follower has passed while the followers take.
    monkeypatch.setattr(log_feed, "CAPACITY", 40)
    monkeypatch.setattr(log_feed, "AHEAD", 40)
    seats = {
        topics: feed.join("-".join(topics) or "every", list(topics), 0, datastore=None)  # type: ignore[arg-type]
        for topics in [(), ("a",), ("b", "c")]
    }
    taken: dict[tuple[str, ...], list[int]] = {topics: [] for topics in seats}
    for last in range(1, 301):
        stored.append(1)
        feed.notify()
        for topics, seat in seats.items():
            if expected(last - 1, last, topics):
                taken[topics] += take_until(feed, seat, last)
    for topics in seats:
        assert taken[topics] == expected(0, 300, topics)
    every = seats[()]
    assert every.alone < every.shared
    assert feed._kept <= log_feed.CAPACITY + log_feed.PAGE
