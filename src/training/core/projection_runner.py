"""Runs the projections, restarts them when they fail, and keeps one runner per projection.

Each projection runs in a library ``ProjectionRunner`` (its own subscription thread and
pool). A supervisor thread per projection first takes a PostgreSQL advisory lock named after
the projection, so however many processes start, exactly one of them runs it; the others
wait and take over if the leader dies. A runner that raises (for example when its LISTEN
connection is lost) is closed and started again after a back-off. An event a read model
cannot apply does not make it raise: it is quarantined (ADR 0026) and the runner goes on.

``states`` tells /readyz what each runner is doing in this process.
"""

from __future__ import annotations

import threading
import time
import weakref
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
import structlog
from eventsourcing.projection import (
    ApplicationSubscription,
    BaseProjectionRunner,
    EventSourcedProjectionRunner,
    ProjectionRunner,
)

from training.core.views import ProjectionSpec

log = structlog.get_logger(__name__)

RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
LEADER_RETRY_SECONDS = 2.0
# A runner that ran this long before failing starts a new run of failures (and a new "since").
HEALTHY_AFTER_SECONDS = 30.0


def leader_lock_key(name: str) -> int:
    return zlib.crc32(f"training-projection:{name}".encode())


def maintenance_lock_key(name: str) -> int:
    """Held by ``projections rebuild`` and ``projections retry``: one at a time per view."""
    return zlib.crc32(f"training-projection-maintenance:{name}".encode())


# The most events one view transaction applies: a page of the subscription.
MAX_BATCH = 500


class BatchingProjectionRunner(ProjectionRunner[Any, Any]):
    """The library's runner, handing a read model every event the subscription already
    holds in one batch (``process_batch``: one transaction, one tracking write) instead of
    one transaction per event. A projection without ``process_batch`` gets one at a time."""

    @staticmethod
    def _process_events_loop(
        subscription: ApplicationSubscription[Any],
        projection: Any,
        is_stopping: threading.Event,
        runner: weakref.ReferenceType[Any],
    ) -> None:
        try:
            process_batch = getattr(projection, "process_batch", None)
            events = iter(subscription)
            for first in events:
                batch = [first]
                while len(batch) < MAX_BATCH and _holds_more(subscription):
                    try:
                        batch.append(next(events))
                    except StopIteration:
                        break
                if process_batch is not None:
                    process_batch(batch)
                else:
                    for domain_event, tracking in batch:
                        projection.process_event(domain_event, tracking)
        except BaseException as error:
            # As the library's loop: the error stops the runner, and run_forever raises it.
            found = runner()
            if found is not None:
                found._thread_error = error
        finally:
            is_stopping.set()


def _holds_more(subscription: ApplicationSubscription[Any]) -> bool:
    """Whether the subscription has events at hand, pulled and not yet handed out, so that
    taking the next one does not wait for new events.

    It reads the library's listen-notify subscription (eventsourcing 9.5): the page it is
    handing out and the pages queued behind it. Anything else answers False, and every batch
    is one event: slower, never wrong. ``tests/integration/test_projection_batches.py``
    fails if batches stop forming."""
    pulled = getattr(subscription, "subscription", None)
    page = getattr(pulled, "_notifications", None)
    index = getattr(pulled, "_notifications_index", None)
    queued = getattr(pulled, "_notifications_queue", None)
    if page is None or not isinstance(index, int):
        return False
    return index < len(page) or (queued is not None and queued.qsize() > 0)


class ProjectionBusy(RuntimeError):
    """A maintenance command refused: something runs that it would race with."""


def take_lock(conn: psycopg.Connection[Any], key: int, refusal: str) -> None:
    """Takes a session-level advisory lock on ``conn`` (released when it closes), or refuses."""
    held = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    if not (held and held[0]):
        raise ProjectionBusy(refusal)


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
    ) -> None:
        self.specs = tuple(specs)
        self.env = dict(env)
        self.lock_conninfo = lock_conninfo
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._runners: dict[str, BaseProjectionRunner[Any]] = {}
        self._lock = threading.Lock()
        self.restarts: dict[str, int] = {spec.name: 0 for spec in self.specs}
        self._states: dict[str, RunnerState] = {
            spec.name: RunnerState("stopped") for spec in self.specs
        }

    def start(self) -> None:
        for spec in self.specs:
            # Until its thread knows whether it leads: /readyz must not call it stopped.
            self._set_state(spec.name, "starting")
        for spec in self.specs:
            thread = threading.Thread(
                target=self._supervise, args=(spec,), name=f"projection-{spec.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        with self._lock:
            for runner in self._runners.values():
                runner.stop()
        for thread in self._threads:
            thread.join(timeout)

    def wait(self) -> None:
        """Blocks until ``stop`` is called (``training worker`` runs this in its main thread)."""
        self._stopping.wait()

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._runners)

    def states(self) -> dict[str, RunnerState]:
        with self._lock:
            return dict(self._states)

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
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                with self._leadership(spec) as leader:
                    if not leader:
                        self._set_state(spec.name, "standby")
                        self._stopping.wait(LEADER_RETRY_SECONDS)
                        continue
                    self._set_state(spec.name, "starting")
                    self._run(spec)
                    failures = 0
            except Exception as error:
                if time.monotonic() - started >= HEALTHY_AFTER_SECONDS:
                    failures, failing_since = 0, None
                failures += 1
                failing_since = failing_since or datetime.now(UTC)
                self.restarts[spec.name] += 1
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

    def _run(self, spec: ProjectionSpec) -> None:
        runner: BaseProjectionRunner[Any]
        projection_class: Any = spec.runnable_class
        if spec.view_class is None:
            runner = EventSourcedProjectionRunner(
                application_class=spec.upstream, projection_class=projection_class, env=self.env
            )
        else:
            runner = BatchingProjectionRunner(
                application_class=spec.upstream,
                projection_class=projection_class,
                view_class=spec.view_class,
                env=self.env,
            )
        with runner:
            with self._lock:
                self._runners[spec.name] = runner
            self._set_state(spec.name, "running")
            log.info("projection.started", projection=spec.name)
            try:
                while not self._stopping.is_set():
                    runner.run_forever(timeout=0.5)
            finally:
                with self._lock:
                    self._runners.pop(spec.name, None)

    class _Leadership:
        def __init__(self, conninfo: str, key: int) -> None:
            self.conninfo = conninfo
            self.key = key
            self.conn: psycopg.Connection | None = None

        def __enter__(self) -> bool:
            self.conn = psycopg.connect(self.conninfo, autocommit=True)
            row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
            return bool(row and row[0])

        def __exit__(self, *exc: object) -> None:
            if self.conn is not None:
                self.conn.close()  # closing the session releases the advisory lock

    def _leadership(self, spec: ProjectionSpec) -> _Leadership:
        return self._Leadership(self.lock_conninfo, leader_lock_key(spec.name))
