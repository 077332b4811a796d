"""``projections retry``: re-applies a view's quarantined and parked events, in order.

For each degraded tenant (or the one asked for), the tenant's held events are re-applied
oldest first through the view's own methods. Each one's rows and its release commit together
(``TenantScopedView.releasing``); the first that fails again stays quarantined with its new
error, and the tenant's later events stay parked behind it. A tenant with nothing left held is
healthy again. The view's runner may keep running meanwhile (ADR 0026); another retry or a
rebuild of the same view may not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from training.infra.database import Database
from training.projections import quarantine
from training.projections.base import TenantScopedView
from training.projections.quarantine import EventRef, Failure, HeldEvent, Summary, tenants_text
from training.projections.registry import ProjectionSpec
from training.projections.runner import ProjectionBusy, maintenance_lock_key, take_lock


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


def retry(
    database: Database, spec: ProjectionSpec, tenants: Sequence[UUID | None] | None = None
) -> RetryReport:
    """Re-applies the held events of ``tenants`` (every degraded tenant when None)."""
    view_class = spec.view_class
    if view_class is None:
        msg = (
            f"{spec.name} is an event-sourced policy, which does not quarantine events; "
            "there is nothing to retry"
        )
        raise ProjectionBusy(msg)
    env = database.eventsourcing_env(pool_size=1, max_overflow=1)
    report = RetryReport(spec.name)
    with psycopg.connect(database.app_url, autocommit=True) as conn:
        take_lock(
            conn,
            maintenance_lock_key(spec.name),
            f"a retry or rebuild of the {spec.name} projection is running; wait for it to finish",
        )
        degraded = quarantine.degraded_tenants(conn, spec.name)
        chosen = degraded if tenants is None else [t for t in degraded if t in tenants]
        if not chosen:
            return report
        view = (
            InfrastructureFactory[TenantScopedView]
            .construct(env=Environment(spec.name, env))
            .tracking_recorder(view_class)
        )
        upstream: Application[Any] = spec.upstream(env=env)
        try:
            projection: Any = spec.projection_class(view=view)  # type: ignore[call-arg]
            for tenant_id in chosen:
                _retry_tenant(conn, view, projection, upstream, tenant_id, report)
        finally:
            upstream.close()
            view.datastore.close()
    return report


def _retry_tenant(
    conn: psycopg.Connection[Any],
    view: TenantScopedView,
    projection: Any,
    upstream: Application[Any],
    tenant_id: UUID | None,
    report: RetryReport,
) -> None:
    while (held := quarantine.next_held(conn, report.view, tenant_id)) is not None:
        failure = _apply(view, projection, upstream, held)
        if failure is not None:
            quarantine.record_failure(conn, held, failure)
            report.still_held.append(StillHeld(tenant_id, held.ref, failure))
            return
        report.applied += 1
    report.healed.append(tenant_id)


def _apply(
    view: TenantScopedView, projection: Any, upstream: Application[Any], held: HeldEvent
) -> Failure | None:
    ref = held.ref
    [notification] = upstream.recorder.select_notifications(start=ref.notification_id, limit=1)
    if notification.id != ref.notification_id:
        msg = f"event {ref.notification_id} of {ref.upstream} is missing from its events table"
        raise LookupError(msg)
    try:
        event = upstream.mapper.to_domain_event(notification)
        with view.releasing(ref):
            projection.process_event(event, ref.tracking)
            if not view.released:
                # The projection had nothing to write for it: only the release remains.
                view.insert_tracking(ref.tracking)
    except Exception as error:
        if quarantine.is_transient(error):
            raise
        return Failure.of(error)
    return None
