"""The items an attempt draws from: the starter bank and the tenant's own, under a version of
their parameters; and the unit of work a query reads the tenant's aggregates with."""

from __future__ import annotations

from uuid import UUID

from training.assessments.domain.items import ItemBank, ItemCalibration
from training.assessments.domain.scoring import ItemParameters
from training.assessments.queries import Bank, starter_bank
from training.core.application import TrainingApplication
from training.core.bus import UnitOfWork
from training.core.context import CommandContext
from training.core.errors import NotFound


def query_unit_of_work(app: TrainingApplication, tenant_id: UUID) -> UnitOfWork:
    """A unit of work over the tenant's aggregates for a query: it is never saved, so what it
    opens (a bank the tenant has not written yet) is only read."""
    return UnitOfWork(app, CommandContext.system("assessments", "", tenant_id))


def tenant_bank(uow: UnitOfWork, tenant_id: UUID) -> ItemBank:
    return uow.get_or_add(ItemBank, ItemBank.create_id(tenant_id), lambda: ItemBank.open(tenant_id))


def calibration(uow: UnitOfWork, tenant_id: UUID) -> ItemCalibration:
    return uow.get_or_add(
        ItemCalibration,
        ItemCalibration.create_id(tenant_id),
        lambda: ItemCalibration.open(tenant_id),
    )


def bank_for(uow: UnitOfWork, tenant_id: UUID, skill: str, version: int) -> Bank:
    """The skill's items (starter and the tenant's own) with the parameters of ``version``."""
    bank: Bank = dict(starter_bank().items.get(skill, {}))
    private = tenant_bank(uow, tenant_id)
    for item in private.items.values():
        if item.skill == skill:
            bank[item.item_id] = (item, private.initial[item.item_id])
    if version > 0:
        published = calibration(uow, tenant_id).versions.get(version)
        if published is None:
            raise NotFound(f"item-parameter version {version} not found")
        bank = {
            item_id: (item, published.get(item_id, parameters))
            for item_id, (item, parameters) in bank.items()
        }
    return bank


def parameters_of(bank: Bank) -> dict[str, ItemParameters]:
    return {item_id: parameters for item_id, (_, parameters) in bank.items()}
