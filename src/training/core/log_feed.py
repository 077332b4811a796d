"""One reading of an upstream log, shared by every projection of the process that follows it.

A ``LogFeed`` reads the log's pages once (the topics of all its followers together), keeps
the latest pages in memory, and maps each stored event to its domain event once (the first
follower that takes it does, in its own thread). Each
follower holds a ``Seat``: how far it has looked in the log. ``take`` hands a follower the
events of its topics after its seat, from memory when its seat is within the kept pages,
and otherwise by reading its own pages from the database (on its own connection): a
projection whose leadership is won late catches up on its own and then joins the shared
pages, one faster than the others reads ahead on its own, and none ever waits for another.

The feed never decides what is applied: each follower applies what it takes in its own
transaction, with its own position, as before (exactly once per view).

Which events are kept: the reader reads ahead while fewer than ``CAPACITY`` events are kept.
Once full, it drops the oldest events every seat within the kept pages has passed, and
otherwise waits: the kept pages follow their slowest seat (for which they are the read-ahead
its own subscription used to be), and a faster seat that has taken all of them reads ahead
on its own rather than wait for it. A seat behind the kept pages (led late, or restarted
from an older position) reads on its own until it reaches them. When no seat is within the
kept pages, the feed starts again from the one furthest behind, so followers that start
together share their catch-up.

Every stored event is in order: the library locks the events table for each insert, so
commits happen in the order of notification ids, and a page read after position ``p``
holds every event after ``p`` committed so far.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import Notification, Tracking
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Composable, Identifier

log = structlog.get_logger(__name__)

# Rows per query: the library subscription's page.
PAGE = 500
# Events kept in memory (about 1 KB each once mapped).
CAPACITY = 20 * PAGE
# A follower this far ahead of the reader reads on its own rather than wait for it.
AHEAD = CAPACITY
# Without a notification, the reader looks anyway this often (a notification lost with a
# connection is then late, not missing).
POLL_SECONDS = 5.0
READER_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)

Event = tuple[Any, Tracking]


class FeedUnavailable(RuntimeError):
    """The feed cannot read its log (the follower restarts, after a back-off)."""


class _Entry:
    """A stored event the feed keeps. The first follower that takes it maps it to its domain
    event (in its own thread, as each runner did; the reader only reads) for all of them."""

    __slots__ = ("event", "notification", "notification_id", "topic")

    def __init__(self, notification: Notification) -> None:
        self.notification: Notification | None = notification
        self.notification_id = notification.id
        self.topic = notification.topic
        self.event: Any = None


class Seat:
    """A follower's place in a feed: every event of its topics up to ``scanned`` was taken."""

    def __init__(
        self, name: str, topics: Sequence[str], scanned: int, datastore: PostgresDatastore
    ) -> None:
        self.name = name
        self.topics = frozenset(topics)  # empty: every topic
        self.scanned = scanned
        self.datastore = datastore
        # How the seat's events came (the tests and the benchmark read them).
        self.shared = 0
        self.alone = 0

    def follows(self, topic: str) -> bool:
        return not self.topics or topic in self.topics


class LogFeed:
    """Reads one upstream application's log for every seat of the process (see the module)."""

    def __init__(
        self,
        upstream: type[Application[Any]],
        env: Mapping[str, str],
        topics: Sequence[str],
        *,
        on_ready: Callable[[LogFeed], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.env = dict(env)
        self.topics = list(topics)  # empty: every topic
        self.on_ready = on_ready
        self.pages_read = 0
        self.error: BaseException | None = None
        self._app: Application[Any] | None = None
        self._mapper: Any = None
        self.app_name = str(upstream.name)
        self.channel = ""
        self._events_table: Composable = SQL("")
        self._lock = threading.Lock()
        self._taken = threading.Condition(self._lock)  # new pages, a reset, or stopping
        self._wake = threading.Event()  # the reader has something to look at
        self._stopping = threading.Event()
        self._seats: set[Seat] = set()
        # The kept events, oldest first, from ``_first`` on (the slots before it were dropped
        # and go when they are half the list), with their positions beside them: a seat finds
        # where it is by bisection, so a take costs what it takes, not what is kept (pages
        # read after each notification hold an event or two, and the feed keeps thousands).
        self._entries: list[_Entry] = []
        self._ids: list[int] = []
        self._first = 0
        self._floor: int | None = None  # the kept events are every event in (floor, head]
        self._head: int | None = None
        self._notified = 0  # notifications and polls so far
        self._read_to_end_at = -1  # the value of _notified when a short page was read
        self._thread: threading.Thread | None = None

    # -- the process's side -----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._read, name=f"log-feed-{self.app_name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        with self._lock:
            self._taken.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close_app()

    def notify(self) -> None:
        """New events may have been stored (a notification, or a reconnected listener)."""
        with self._lock:
            self._notified += 1
            self._taken.notify_all()  # a seat reading on its own looks again
        self._wake.set()

    # -- the followers' side ----------------------------------------------------------------

    def join(
        self, name: str, topics: Sequence[str], position: int, datastore: PostgresDatastore
    ) -> Seat:
        seat = Seat(name, topics, position, datastore)
        with self._lock:
            self._seats.add(seat)
        self._wake.set()
        return seat

    def leave(self, seat: Seat) -> None:
        with self._lock:
            self._seats.discard(seat)
        self._wake.set()

    def take(self, seat: Seat, limit: int, timeout: float) -> list[Event]:
        """The next events of the seat's topics after its place, at most ``limit``: from the
        kept pages, or read on the seat's own connection; none if nothing came in
        ``timeout`` seconds. Raises ``FeedUnavailable`` while the reader cannot read."""
        deadline = time.monotonic() + timeout
        kept: list[_Entry] = []
        with self._lock:
            while True:
                if self._stopping.is_set():
                    return []
                if self.error is not None:
                    msg = f"the {self.app_name} log cannot be read: {type(self.error).__name__}"
                    raise FeedUnavailable(msg) from self.error
                head = self._head
                if head is not None and not self._within(seat):
                    break  # behind the kept pages, or far ahead of them: on its own, below
                if head is not None:
                    kept = self._take_kept(seat, limit)
                    if self._kept >= CAPACITY:
                        self._wake.set()  # the slowest seat may have passed the oldest page
                    if kept:
                        seat.shared += len(kept)
                        break
                    if self._held_back():
                        # It has taken all that is kept, and a slower seat holds the reader
                        # back: it reads ahead on its own rather than wait for that seat.
                        break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._taken.wait(remaining)
        if kept:
            return [self._event(entry) for entry in kept]
        with self._lock:
            notified = self._notified
        taken, stored_upto = self._read_alone(seat, limit)
        with self._lock:
            if taken:
                seat.scanned = max(seat.scanned, taken[-1][1].notification_id)
            if stored_upto is not None:
                # It has every event of its topics stored up to there (and up to the head,
                # read before it): a seat that follows few topics skips to the end at once.
                seat.scanned = max(seat.scanned, stored_upto, head)
            seat.alone += len(taken)
            self._wake.set()
            while not taken and self._notified == notified and not self._stopping.is_set():
                # Nothing new for it: ask again once something is stored, not at once.
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._taken.wait(remaining)
        return taken

    def _held_back(self) -> bool:
        """Whether the reader waits for a seat: the feed keeps its fill, and its oldest page
        is one a seat within the kept pages has not passed yet."""
        if self._kept < CAPACITY:
            return False
        within = [s.scanned for s in self._seats if self._within(s)]
        return bool(within) and self._ids[self._first] > min(within)

    def _within(self, seat: Seat) -> bool:
        assert self._floor is not None
        assert self._head is not None
        return self._floor <= seat.scanned <= self._head + AHEAD

    @property
    def _kept(self) -> int:
        return len(self._ids) - self._first

    def _take_kept(self, seat: Seat, limit: int) -> list[_Entry]:
        assert self._head is not None
        taken: list[_Entry] = []
        topics = seat.topics
        entries = self._entries
        for index in range(bisect_right(self._ids, seat.scanned, self._first), len(entries)):
            entry = entries[index]
            if topics and entry.topic not in topics:
                continue
            taken.append(entry)
            if len(taken) == limit:
                seat.scanned = entry.notification_id
                return taken
        seat.scanned = max(seat.scanned, self._head)
        return taken

    def _keep(self, entries: Sequence[_Entry]) -> None:
        self._entries.extend(entries)
        self._ids.extend(entry.notification_id for entry in entries)
        self._head = entries[-1].notification_id

    def _drop_upto(self, last: int) -> None:
        """Drops the oldest kept events, up to position ``last``, while the feed is full,
        down to a page below its fill (so that it then reads a page before dropping again)."""
        end = min(
            bisect_right(self._ids, last, self._first),
            self._first + self._kept - CAPACITY + PAGE,
        )
        if end <= self._first:
            return
        self._floor = self._ids[end - 1]
        self._first = end
        if self._first > len(self._ids) // 2:
            del self._entries[: self._first], self._ids[: self._first]
            self._first = 0

    def _forget(self, floor: int | None) -> None:
        self._entries.clear()
        self._ids.clear()
        self._first = 0
        self._floor = self._head = floor

    def _read_alone(self, seat: Seat, limit: int) -> tuple[list[Event], int | None]:
        """The seat's own next events and, when they are all it has in the log, the last
        position stored before they were read (None otherwise)."""
        notifications, last_stored = self._select_alone(seat, limit)
        events = [self._event(_Entry(n)) for n in notifications]
        return events, (last_stored if len(events) < limit else None)

    def _select_alone(self, seat: Seat, limit: int) -> tuple[list[Notification], int]:
        """The library's query of a subscription's page, on the seat's own connection, after
        the last position stored (every event up to it was committed before the page is
        read: the library commits events in the order of their positions)."""
        last = SQL("SELECT max(notification_id) AS last FROM {}").format(self._events_table)
        statement = SQL("SELECT * FROM {} WHERE notification_id > %s").format(self._events_table)
        params: list[Any] = [seat.scanned]
        if seat.topics:
            statement += SQL(" AND topic = ANY(%s)")
            params.append(sorted(seat.topics))
        statement += SQL(" ORDER BY notification_id LIMIT %s")
        params.append(limit)
        with seat.datastore.get_connection() as conn, conn.cursor() as cursor:
            row = cursor.execute(last).fetchone()
            cursor.execute(statement, params)
            page = [_notification(row) for row in cursor.fetchall()]
        return page, int(row["last"] or 0) if row else 0

    def _event(self, entry: _Entry) -> Event:
        # Outside the lock: two followers may map one entry at once, each then holding an
        # equal event; the notification is dropped once mapped.
        notification = entry.notification
        if notification is not None:
            entry.event = self._mapper.to_domain_event(notification)
            entry.notification = None
        return entry.event, Tracking(self.app_name, entry.notification_id)

    # -- the reader ---------------------------------------------------------------------------

    def _read(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                if self._app is None:
                    self._open_app()
                self._read_while_wanted()
            except Exception as error:
                failures += 1
                delay = READER_DELAYS[min(failures, len(READER_DELAYS)) - 1]
                log.exception("log_feed.failed", upstream=self.app_name, retry_in=delay)
                with self._lock:
                    self.error = error
                    self._taken.notify_all()
                self._close_app()
                self._stopping.wait(delay)
                continue
            if self.error is not None or failures:
                with self._lock:
                    self.error = None
                failures = 0
            if not self._wake.wait(POLL_SECONDS):
                self.notify()
            self._wake.clear()

    def _open_app(self) -> None:
        app = self.upstream(env=self.env)
        recorder: Any = app.recorder  # a PostgresApplicationRecorder (or its likeness)
        self._app, self._mapper = app, app.mapper
        self.app_name = app.name
        self.channel = recorder.channel_name
        self._events_table = SQL("{}.{}").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )
        if self.on_ready is not None:
            self.on_ready(self)
        with self._lock:
            # Whatever was kept may be older than what was stored while the log was away.
            self._forget(None)
            self._notified += 1

    def _close_app(self) -> None:
        app, self._app = self._app, None
        if app is not None:
            app.close()

    def _read_while_wanted(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                start = self._next_start()
                notified = self._notified
            if start is None:
                return
            assert self._app is not None
            notifications = self._app.recorder.select_notifications(
                start, PAGE, topics=self.topics, inclusive_of_start=False
            )
            entries = [_Entry(n) for n in notifications]
            with self._lock:
                self.pages_read += 1
                if entries:
                    self._keep(entries)
                if len(notifications) < PAGE:
                    self._read_to_end_at = notified
                self._taken.notify_all()

    def _next_start(self) -> int | None:
        """Where the next page starts, or None when no one needs it yet."""
        seats = self._seats
        if not seats:
            self._forget(None)
            return None
        if self._head is None or not any(self._within(s) for s in seats):
            # No one can use what is kept: start again from the seat furthest behind.
            self._forget(min(s.scanned for s in seats))
            self._read_to_end_at = -1
            self._taken.notify_all()
        # Events every seat within them has passed go once the feed keeps its fill; an event
        # a slower seat still needs stays, and the reader waits (the faster seats read ahead
        # on their own meanwhile, see take).
        if self._kept >= CAPACITY:
            self._drop_upto(min(s.scanned for s in seats if self._within(s)))
        if self._kept >= CAPACITY:
            return None
        if self._read_to_end_at == self._notified:
            return None  # read to the end, and nothing new stored since
        return self._head


def _notification(row: Mapping[str, Any]) -> Notification:
    return Notification(
        id=row["notification_id"],
        originator_id=row["originator_id"],
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=bytes(row["state"]),
    )


class Listener:
    """One session listening for every feed of the process: a notification on a log's channel
    wakes the feeds of that log. After its session fails it connects again (with a back-off)
    and wakes every feed, since what was stored meanwhile was notified to no one."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._feeds: dict[str, list[LogFeed]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening: frozenset[str] = frozenset()  # the channels of the current session

    def add(self, feed: LogFeed) -> None:
        """Listens on ``feed``'s channel (known once its log is open; called again on reopening)."""
        with self._lock:
            feeds = self._feeds.setdefault(feed.channel, [])
            if feed not in feeds:
                feeds.append(feed)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-listener", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _wake(self, channels: Sequence[str]) -> None:
        with self._lock:
            feeds = [feed for channel in channels for feed in self._feeds.get(channel, ())]
        for feed in feeds:
            feed.notify()

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    self._listen(conn)
                    return
            except Exception:
                self.listening = frozenset()
                # A session that lasted starts a new run of failures.
                failures = 1 if time.monotonic() - started > 30 else failures + 1
                delay = READER_DELAYS[min(failures, len(READER_DELAYS)) - 1]
                log.exception("log_feed.listener_failed", retry_in=delay)
                self._stopping.wait(delay)

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        listening: set[str] = set()
        while not self._stopping.is_set():
            with self._lock:
                channels = [c for c in self._feeds if c not in listening]
            for channel in channels:
                conn.execute(SQL("LISTEN {}").format(Identifier(channel)))
                listening.add(channel)
            self.listening = frozenset(listening)
            # Stored before the session listened: looked for now.
            self._wake(channels)
            # A short wait: stopping is looked at in between (as the library's listener does).
            for notification in conn.notifies(timeout=0.1):
                self._wake([notification.channel])
