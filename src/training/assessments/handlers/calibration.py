"""Calibration: re-estimating item difficulties from the recorded responses and publishing
them as the tenant's next parameter version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from training.assessments.domain.scoring import ItemParameters, calibrate_difficulties
from training.assessments.handlers.bank import (
    bank_for,
    calibration,
    query_unit_of_work,
    tenant_bank,
)
from training.assessments.queries import starter_bank
from training.core.application import TrainingApplication
from training.core.bus import Handler, UnitOfWork
from training.core.errors import InvalidTransition


@dataclass(frozen=True)
class PublishParameters:
    parameters: tuple[ItemParameters, ...]
    responses_used: int


def publish_parameters(command: PublishParameters, uow: UnitOfWork) -> int:
    tenant_id = uow.require_tenant()
    return calibration(uow, tenant_id).publish(command.parameters, command.responses_used)


def published_versions(app: TrainingApplication, tenant_id: UUID) -> set[int]:
    return set(calibration(query_unit_of_work(app, tenant_id), tenant_id).versions)


def current_parameters(app: TrainingApplication, tenant_id: UUID) -> dict[str, ItemParameters]:
    """Every item's parameters in the current version: starter and private items."""
    uow = query_unit_of_work(app, tenant_id)
    skills = set(starter_bank().skills)
    skills |= {item.skill for item in tenant_bank(uow, tenant_id).items.values()}
    version = calibration(uow, tenant_id).current_version
    found: dict[str, ItemParameters] = {}
    for skill in sorted(skills):
        found.update(bank_for(uow, tenant_id, skill, version).parameters)
    return found


@dataclass(frozen=True)
class Recalibration:
    """What a calibration publishes, and how many of its items' difficulties moved."""

    publish: PublishParameters
    changed: int


def recalibrate(
    app: TrainingApplication,
    tenant_id: UUID,
    responses: Sequence[tuple[str, float, bool]],
    *,
    min_responses: int,
) -> Recalibration:
    """Re-estimates, from the current parameters, the difficulty of every item with at least
    ``min_responses`` of ``responses`` (item, θ of the attempt, correct); the others keep
    theirs. Responses to items the tenant no longer has are left out."""
    current = current_parameters(app, tenant_id)
    usable = [response for response in responses if response[0] in current]
    if not usable:
        raise InvalidTransition("there are no recorded responses to calibrate with yet")
    calibrated = calibrate_difficulties(usable, current, min_responses=min_responses)
    changed = sum(
        1
        for item_id, parameters in calibrated.items()
        if parameters.difficulty != current[item_id].difficulty
    )
    return Recalibration(PublishParameters(tuple(calibrated.values()), len(usable)), changed)


HANDLERS: dict[type, Handler] = {
    PublishParameters: publish_parameters,
}
