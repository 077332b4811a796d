"""What other contexts may ask of cohorts: questions over its aggregates, read inside their unit
of work."""

from __future__ import annotations

from uuid import UUID

from training.cohorts.domain.policy import TrainingPolicy
from training.core.bus import UnitOfWork


def training_policy(uow: UnitOfWork, tenant_id: UUID) -> TrainingPolicy:
    """The tenant's training policy; the defaults, adopted in this unit of work, when it never
    recorded one."""
    return uow.get_or_add(
        TrainingPolicy,
        TrainingPolicy.create_id(tenant_id),
        lambda: TrainingPolicy.adopt_defaults(tenant_id),
    )
