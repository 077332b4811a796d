"""Runs the projections, restarts them when they fail, and keeps one runner per projection.

Per upstream log, the process reads once (``LogFeed``: one reader, one session listening for
every log) and hands each projection it leads the events of its topics after its own
position; each applies them in its own thread, in its own transactions, with its own tracking
write, as before (ADR 0036). Leadership is per projection: a supervisor thread per projection
takes a PostgreSQL advisory lock named after it, so however many processes start, exactly
one of them runs it; the others stand by and take over if the leader stops. The locks of
the process are held on one session (``Leadership``). A projection that raises (a lost
connection, its log unreadable) releases its lock, leaves the feed and starts again after a
back-off, from its tracked position; the others go on. An event a read model cannot apply
does not make it raise: it is quarantined (ADR 0026).

``states`` tells /readyz what each projection is doing in this process.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import Environment

from training.core.log_feed import Listener, LogFeed, Seat
from training.core.views import ProjectionSpec, TenantScopedView

log = structlog.get_logger(__name__)

RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
LEADER_RETRY_SECONDS = 2.0
# A runner that ran this long before failing starts a new run of failures (and a new "since").
HEALTHY_AFTER_SECONDS = 30.0
# The most events one view transaction applies (ADR 0034). Read when each batch is taken,
# so the benchmark can change it.
MAX_BATCH = 500
# How long a projection waits for events before it looks at its leadership and at stopping.
TAKE_SECONDS = 0.5


def leader_lock_key(name: str) -> int:
    return zlib.crc32(f"training-projection:{name}".encode())


def maintenance_lock_key(name: str) -> int:
    """Held by ``projections rebuild`` and ``projections retry``: one at a time per view."""
    return zlib.crc32(f"training-projection-maintenance:{name}".encode())


class ProjectionBusy(RuntimeError):
    """A maintenance command refused: something runs that it would race with."""


def take_lock(conn: psycopg.Connection[Any], key: int, refusal: str) -> None:
    """Takes a session-level advisory lock on ``conn`` (released when it closes), or refuses."""
    held = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    if not (held and held[0]):
        raise ProjectionBusy(refusal)


class LeadershipLost(RuntimeError):
    """The session holding this process's leader locks ended: another process may lead now."""


class Leadership:
    """The leader locks of this process's projections, on one session for all of them.

    A projection's lock is released when it stops or fails, so that a process standing by may
    take over while this one backs off; all of them when the session ends. ``holds`` says
    whether a lock taken under ``generation`` is still held: it looks at the session at most
    every ``CHECK_SECONDS``, and a session found dead ends the generation, so that every
    projection of the process stops applying and competes for its lock again.
    """

    CHECK_SECONDS = 2.0

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.generation = 0
        self._conn: psycopg.Connection[Any] | None = None
        self._held: set[int] = set()
        self._checked = 0.0
        self._lock = threading.Lock()

    def take(self, key: int) -> int | None:
        """The generation the lock is held under, or None when another session holds it."""
        with self._lock:
            if self._conn is None or self._conn.closed:
                self._drop()
                self._conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
                self._checked = time.monotonic()
            try:
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            except psycopg.Error:
                self._drop()
                raise
            if not (row and row[0]):
                return None
            self._held.add(key)
            return self.generation

    def release(self, key: int) -> None:
        with self._lock:
            if key not in self._held:
                return
            self._held.discard(key)
            if self._conn is None:
                return
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.Error:
                self._drop()

    def holds(self, generation: int) -> bool:
        with self._lock:
            if generation != self.generation or self._conn is None:
                return False
            now = time.monotonic()
            if now - self._checked < self.CHECK_SECONDS:
                return True
            self._checked = now
            try:
                self._conn.execute("SELECT 1")
            except psycopg.Error:
                self._drop()
                return False
            return True

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # ends the session: every lock on it is released
        self._held.clear()
        self.generation += 1


class LedByCaller(Leadership):
    """For a caller that holds the leader locks on a session of its own (``projections
    rebuild``, which must be the only writer of the view while it replays)."""

    def take(self, key: int) -> int | None:
        return self.generation

    def release(self, key: int) -> None:
        """Nothing to release here: the caller's own session holds the lock."""

    def holds(self, generation: int) -> bool:
        return True

    def close(self) -> None:
        """Nothing to close here: the caller's own session is the caller's to close."""


def _env(name: str, env: Mapping[str, str]) -> Environment:
    # Under the projection's name, as the library's runners do (the settings module alone
    # reads the process's environment: ``env`` is all there is).
    return Environment(name, dict(env))


class Follower:
    """One projection's side of a feed: its position, its connection, how it applies events."""

    def __init__(self, spec: ProjectionSpec, env: Mapping[str, str]) -> None:
        self.spec = spec
        self.view: TenantScopedView | None = None
        self.policy: Application[Any] | None = None
        projection_class: Any = spec.runnable_class
        if spec.view_class is None:
            # An event-sourced policy: its new events and its position commit together.
            policy = projection_class(env=_env(spec.name, env))
            self.policy, self.projection = policy, policy
            self.datastore: PostgresDatastore = policy.recorder.datastore
            self.recorder: Any = policy.recorder
        else:
            factory = InfrastructureFactory[Any].construct(env=_env(spec.name, env))
            view = factory.tracking_recorder(spec.view_class)
            try:
                self.view, self.projection = view, projection_class(view=view)
            except BaseException:
                view.datastore.close()
                raise
            self.datastore, self.recorder = view.datastore, view

    def position(self, upstream: str) -> int:
        return int(self.recorder.max_tracking_id(upstream) or 0)

    def apply(self, events: Sequence[tuple[Any, Tracking]]) -> None:
        process_batch = getattr(self.projection, "process_batch", None)
        if process_batch is not None:
            process_batch(events)  # one transaction, one tracking write (ADR 0034)
            return
        for domain_event, tracking in events:
            self.projection.process_event(domain_event, tracking)

    def close(self) -> None:
        if self.policy is not None:
            self.policy.close()
        else:
            self.datastore.close()


RunnerStatus = Literal["starting", "running", "restarting", "standby", "stopped"]


@dataclass(frozen=True)
class RunnerState:
    """What this process does with a projection: runs it, waits to restart it after an error
    (since the first error of the run), stands by while another process runs it, or neither."""

    status: RunnerStatus
    restarts: int = 0
    failing_since: datetime | None = None
    last_error: str | None = None


class ProjectionSupervisor:
    def __init__(
        self,
        specs: Sequence[ProjectionSpec],
        env: Mapping[str, str],
        lock_conninfo: str,
        *,
        leadership: Leadership | None = None,
    ) -> None:
        self.specs = tuple(specs)
        self.env = dict(env)
        self.lock_conninfo = lock_conninfo
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._leadership = leadership or Leadership(lock_conninfo)
        self._listener = Listener(lock_conninfo)
        self.feeds: dict[type[Application[Any]], LogFeed] = {}
        self._followers: dict[str, tuple[Follower, Seat]] = {}
        self.restarts: dict[str, int] = {spec.name: 0 for spec in self.specs}
        self.errors: dict[str, BaseException] = {}  # each projection's last
        self._states: dict[str, RunnerState] = {
            spec.name: RunnerState("stopped") for spec in self.specs
        }

    def start(self) -> None:
        for spec in self.specs:
            # Until its thread knows whether it leads: /readyz must not call it stopped.
            self._set_state(spec.name, "starting")
        for upstream in dict.fromkeys(spec.upstream for spec in self.specs):
            following = [spec for spec in self.specs if spec.upstream is upstream]
            # One reading for all: the topics of every projection (none: every topic).
            topics = [] if any(not s.info.topics for s in following) else _union(following)
            self.feeds[upstream] = LogFeed(upstream, self.env, topics, on_ready=self._listener.add)
        self._listener.start()
        for feed in self.feeds.values():
            feed.start()
        for spec in self.specs:
            thread = threading.Thread(
                target=self._supervise, args=(spec,), name=f"projection-{spec.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        for feed in self.feeds.values():
            feed.stop(timeout)  # a projection waiting for events returns at once
        for thread in self._threads:
            thread.join(timeout)
        self._listener.stop(timeout)
        self._leadership.close()

    def wait(self) -> None:
        """Blocks until ``stop`` is called (``training worker`` runs this in its main thread)."""
        self._stopping.wait()

    def running(self) -> list[str]:
        with self._lock:
            return sorted(name for name, s in self._states.items() if s.status == "running")

    def states(self) -> dict[str, RunnerState]:
        with self._lock:
            return dict(self._states)

    def listening(self) -> frozenset[str]:
        """The channels (one per log) this process listens on, once its session is up."""
        return self._listener.listening

    def view(self, name: str) -> TenantScopedView | None:
        """The view a running read model writes (the tests count its batches)."""
        with self._lock:
            found = self._followers.get(name)
        return found[0].view if found else None

    def seat(self, name: str) -> Seat | None:
        """Where a running projection is in its feed, and how its events came."""
        with self._lock:
            found = self._followers.get(name)
        return found[1] if found else None

    def _set_state(self, name: str, status: RunnerStatus, **changes: Any) -> None:
        with self._lock:
            current = self._states[name]
            self._states[name] = RunnerState(
                status,
                changes.get("restarts", current.restarts),
                changes.get("failing_since", current.failing_since),
                changes.get("last_error", current.last_error),
            )

    def _supervise(self, spec: ProjectionSpec) -> None:
        failures = 0
        failing_since: datetime | None = None
        key = leader_lock_key(spec.name)
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                generation = self._leadership.take(key)
                if generation is None:
                    self._set_state(spec.name, "standby")
                    self._stopping.wait(LEADER_RETRY_SECONDS)
                    continue
                try:
                    self._set_state(spec.name, "starting")
                    self._run(spec, generation)
                    failures = 0
                finally:
                    self._leadership.release(key)
            except Exception as error:
                if time.monotonic() - started >= HEALTHY_AFTER_SECONDS:
                    failures, failing_since = 0, None
                failures += 1
                failing_since = failing_since or datetime.now(UTC)
                self.restarts[spec.name] += 1
                self.errors[spec.name] = error
                delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS)) - 1]
                self._set_state(
                    spec.name,
                    "restarting",
                    restarts=self.restarts[spec.name],
                    failing_since=failing_since,
                    last_error=type(error).__name__,
                )
                log.exception("projection.failed", projection=spec.name, restart_in=delay)
                self._stopping.wait(delay)
        self._set_state(spec.name, "stopped")

    def _run(self, spec: ProjectionSpec, generation: int) -> None:
        feed = self.feeds[spec.upstream]
        follower = Follower(spec, self.env)
        try:
            position = follower.position(feed.app_name)
            seat = feed.join(spec.name, spec.info.topics, position, follower.datastore)
            with self._lock:
                self._followers[spec.name] = (follower, seat)
            try:
                self._set_state(spec.name, "running")
                log.info("projection.started", projection=spec.name, position=position)
                while not self._stopping.is_set():
                    if not self._leadership.holds(generation):
                        msg = f"the {spec.name} projection's leader lock was lost"
                        raise LeadershipLost(msg)
                    events = feed.take(seat, MAX_BATCH, TAKE_SECONDS)
                    if events:
                        follower.apply(events)
            finally:
                with self._lock:
                    self._followers.pop(spec.name, None)
                feed.leave(seat)
        finally:
            follower.close()


def _union(specs: Sequence[ProjectionSpec]) -> list[str]:
    return sorted({topic for spec in specs for topic in spec.info.topics})
