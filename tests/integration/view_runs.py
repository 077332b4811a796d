"""Applying events to a view in one runner's batch, then one at a time: the tests of views that
write a batch's runs together (ADR 0041) compare the rows each way leaves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import Environment

from training.core.views import TenantScopedView
from training.infra.database import Database


def stamped(events: Sequence[Any], **stamps: Any) -> list[Any]:
    """The events as the command bus stores them, with ``stamps`` (actor, tenant_id, ...)."""
    return [type(e)(**{**vars(e), **stamps}) for e in events]


def apply_batched_then_alone(
    database: Database,
    view_class: type[TenantScopedView],
    projection_class: type[Projection[Any]],
    batched: Sequence[Any],
    alone: Sequence[Any],
    upstream: str = "training",
) -> None:
    """``batched`` in one batch of the view, then ``alone`` each in a transaction of its own,
    at consecutive positions of ``upstream``; the view's position is the last of them."""
    env = Environment(
        projection_class.name, database.eventsourcing_env(pool_size=1, max_overflow=0)
    )
    view = InfrastructureFactory[TenantScopedView].construct(env=env).tracking_recorder(view_class)
    projection = projection_class(view=view)
    try:
        position = 0
        with view.batch():
            for event in batched:
                position += 1
                projection.process_event(event, Tracking(upstream, position))
        for event in alone:
            position += 1
            projection.process_event(event, Tracking(upstream, position))
        assert view.max_tracking_id(upstream) == position
    finally:
        view.datastore.close()
