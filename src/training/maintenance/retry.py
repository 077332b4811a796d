"""``projections retry``: re-applies a view's quarantined and parked events, in order.

The held events (of every degraded tenant, or of those asked for) are re-applied in the order
of the log, through the view's own methods or, for the planning process, its policy. Each
one's rows (or new events) and its release commit together (``releasing``); the first that
fails again stays quarantined with its new error, and its tenant's later events stay parked
behind it while the other tenants go on. For the planning process a platform event that fails
again holds every tenant, and a tenant's events held behind the platform's are retried with
it, never before. A tenant with nothing left held is healthy again. The runner may keep
running meanwhile (ADR 0026); another retry or a rebuild of the same view may not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment, get_topic

from training.core import held_events, quarantine
from training.core.held_events import HeldEvent, Summary, tenants_text
from training.core.projection_runner import ProjectionBusy, maintenance_lock_key, take_lock
from training.core.quarantine import EventRef, Failure
from training.core.views import ProjectionSpec, TenantScopedView
from training.infra.database import Database
from training.infra.recorder import TrainingProcessRecorder
from training.planning.process import Planning


@dataclass(frozen=True)
class StillHeld:
    """A tenant whose first held event failed again."""

    tenant_id: UUID | None
    event: EventRef
    failure: Failure


@dataclass
class RetryReport:
    view: str
    applied: int = 0
    healed: list[UUID | None] = field(default_factory=list)
    still_held: list[StillHeld] = field(default_factory=list)

    @property
    def tenants(self) -> int:
        return len(self.healed) + len(self.still_held)

    def line(self, left: Summary) -> str:
        """What the retry did, in one line; ``left`` is what the view still holds back."""
        if not self.tenants:
            return f"{self.view}: nothing to retry; no event of the tenants asked for is held back"
        done = (
            f"{self.view}: re-applied {self.applied} held event(s) in order for "
            f"{self.tenants} tenant(s)"
        )
        if self.still_held:
            first = self.still_held[0]
            return (
                f"{done}; still degraded: tenant {tenants_text([first.tenant_id])}, whose event "
                f"{first.event.notification_id} ({first.event.topic}) failed again with "
                f"{first.failure}"
                + (
                    f", and {len(self.still_held) - 1} more tenant(s)"
                    if len(self.still_held) > 1
                    else ""
                )
            )
        if left.held:
            return f"{done}; {left.tenants} other tenant(s) of {self.view} are still degraded"
        return f"{done}; {self.view} is healthy again for every tenant"


class Target(Protocol):
    """What re-applies a held event: a view with its projection, or the planning process."""

    platform_holds_all: bool

    def reapply(self, event: Any, ref: EventRef) -> None:
        """Applies ``event`` and releases ``ref`` in the same transaction."""

    def restarts_on(self, error: BaseException) -> bool:
        """Whether ``error`` may not happen again (then the retry stops, and can be run again)."""

    def close(self) -> None: ...


class ViewTarget:
    platform_holds_all = False

    def __init__(self, view: TenantScopedView, projection: Any) -> None:
        self.view = view
        self.projection = projection

    def reapply(self, event: Any, ref: EventRef) -> None:
        with self.view.releasing(ref):
            self.projection.process_event(event, ref.tracking)
            if not self.view.released:
                # The projection had nothing to write for it: only the release remains.
                self.view.insert_tracking(ref.tracking)

    def restarts_on(self, error: BaseException) -> bool:
        return quarantine.is_transient(error)

    def close(self) -> None:
        self.view.datastore.close()


class PlanningTarget:
    """The planning process: a platform event holds every tenant's (its catalogue feeds every
    plan). Its cache brings each aggregate up to date when it hands it out (the running
    process writes the same aggregates meanwhile); without a cache, each held event would
    replay the tenant's catalogue, which lists every track."""

    platform_holds_all = True

    def __init__(self, env: dict[str, str]) -> None:
        self.process = Planning(
            env={
                **env,
                "PROCESS_RECORDER_TOPIC": get_topic(TrainingProcessRecorder),
                "AGGREGATE_CACHE_FASTFORWARD": "y",
            }
        )
        recorder = self.process.recorder
        assert isinstance(recorder, TrainingProcessRecorder)
        self.recorder = recorder

    def reapply(self, event: Any, ref: EventRef) -> None:
        with self.recorder.releasing(ref):
            self.process.reapply(event, ref.tracking)
            if not self.recorder.released:  # the process records every event it applies
                msg = f"event {ref.notification_id} was applied without its release"
                raise RuntimeError(msg)

    def restarts_on(self, error: BaseException) -> bool:
        return self.process.restarts_on(error)

    def close(self) -> None:
        self.process.close()


def _target(spec: ProjectionSpec, env: dict[str, str]) -> Target:
    view_class = spec.view_class
    if view_class is not None:
        view = (
            InfrastructureFactory[TenantScopedView]
            .construct(env=Environment(spec.name, env))
            .tracking_recorder(view_class)
        )
        return ViewTarget(view, spec.projection_class(view=view))  # type: ignore[call-arg]
    if spec.projection_class is Planning:
        return PlanningTarget(env)
    msg = f"{spec.name} does not quarantine events; there is nothing to retry"
    raise ProjectionBusy(msg)


def retry(
    database: Database, spec: ProjectionSpec, tenants: Sequence[UUID | None] | None = None
) -> RetryReport:
    """Re-applies the held events of ``tenants`` (every degraded tenant when None)."""
    env = database.eventsourcing_env(pool_size=1, max_overflow=1)
    report = RetryReport(spec.name)
    with (
        psycopg.connect(database.app_url, autocommit=True) as conn,
        psycopg.connect(database.worker_url, autocommit=True) as worker,
    ):
        take_lock(
            conn,
            maintenance_lock_key(spec.name),
            f"a retry or rebuild of the {spec.name} projection is running; wait for it to finish",
        )
        with _opened(spec, env) as target:
            degraded = held_events.degraded_tenants(worker, spec.name)
            chosen = degraded if tenants is None else [t for t in degraded if t in tenants]
            if not chosen:
                return report
            upstream: Application[Any] = spec.upstream(env=env)
            try:
                _retry(conn, worker, target, upstream, degraded, chosen, report)
            finally:
                upstream.close()
    return report


@contextmanager
def _opened(spec: ProjectionSpec, env: dict[str, str]) -> Iterator[Target]:
    target = _target(spec, env)
    try:
        yield target
    finally:
        target.close()


def _retry(
    conn: psycopg.Connection[Any],
    worker: psycopg.Connection[Any],
    target: Target,
    upstream: Application[Any],
    degraded: list[UUID | None],
    chosen: list[UUID | None],
    report: RetryReport,
) -> None:
    scopes: list[UUID | None] | None = chosen
    if target.platform_holds_all and None in degraded:
        if None not in chosen:
            waiting = tenants_text([t for t in chosen if t is not None])
            msg = (
                f"tenant {waiting} waits behind the platform's held events: retry them "
                f"first (`training projections retry {report.view} --tenant platform`)"
            )
            raise ProjectionBusy(msg)
        scopes = None  # every tenant's held events follow the platform's, in the log's order
    blocked: set[UUID | None] = set()
    touched: list[UUID | None] = []
    while (held := held_events.next_held(worker, report.view, scopes, blocked)) is not None:
        tenant_id = held.ref.tenant_id
        if tenant_id not in touched:
            touched.append(tenant_id)
        failure = _apply(target, upstream, held)
        if failure is None:
            report.applied += 1
            continue
        held_events.record_failure(conn, held, failure)
        report.still_held.append(StillHeld(tenant_id, held.ref, failure))
        blocked.add(tenant_id)
        if tenant_id is None and target.platform_holds_all:
            break  # every tenant waits behind the platform
    report.healed = [t for t in touched if t not in blocked]


def _apply(target: Target, upstream: Application[Any], held: HeldEvent) -> Failure | None:
    ref = held.ref
    [notification] = upstream.recorder.select_notifications(start=ref.notification_id, limit=1)
    if notification.id != ref.notification_id:
        msg = f"event {ref.notification_id} of {ref.upstream} is missing from its events table"
        raise LookupError(msg)
    try:
        target.reapply(upstream.mapper.to_domain_event(notification), ref)
    except Exception as error:
        if target.restarts_on(error):
            raise
        return Failure.of(error)
    return None
