"""What other contexts may ask of cohorts: questions over its aggregates, read inside their unit
of work."""

from __future__ import annotations

from uuid import UUID

from training.cohorts.domain.policy import TrainingPolicy
from training.core.bus import UnitOfWork


def policy(uow: UnitOfWork, tenant_id: UUID) -> TrainingPolicy:
    return uow.get_or_add(
        TrainingPolicy,
        TrainingPolicy.create_id(tenant_id),
        lambda: TrainingPolicy.adopt_defaults(tenant_id),
    )
