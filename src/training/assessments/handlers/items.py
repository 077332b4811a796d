"""A tenant's private items: adding and revising them, and reading them as their authors do."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from training.assessments.domain.items import Item
from training.assessments.domain.scoring import ItemParameters
from training.assessments.handlers.bank import calibration, query_unit_of_work, tenant_bank
from training.assessments.queries import starter_bank
from training.core.application import TrainingApplication
from training.core.bus import Handler, UnitOfWork
from training.core.errors import NotFound, RuleViolated
from training.skills.queries import usable_skills


@dataclass(frozen=True)
class AddItem:
    item: Item
    difficulty: float
    discrimination: float


@dataclass(frozen=True)
class ReviseItem:
    item: Item


def add_item(command: AddItem, uow: UnitOfWork) -> int:
    tenant_id = uow.require_tenant()
    if command.item.skill not in usable_skills(uow, tenant_id):
        raise RuleViolated(f"{command.item.skill!r} is not a skill of this tenant", field="skill")
    taken = {item_id for bank in starter_bank().items.values() for item_id in bank}
    bank = tenant_bank(uow, tenant_id)
    bank.add(command.item, command.difficulty, command.discrimination, taken)
    return int(bank.items[command.item.item_id].version)


def revise_item(command: ReviseItem, uow: UnitOfWork) -> int:
    tenant_id = uow.require_tenant()
    return int(tenant_bank(uow, tenant_id).revise(command.item).version)


@dataclass(frozen=True)
class AuthoredItem:
    """A private item as its authors see it: its content and key, with its parameters in the
    current version (``parameter_version`` 0: still the initial ones)."""

    item: Item
    parameters: ItemParameters
    parameter_version: int


def authored_items(
    app: TrainingApplication, tenant_id: UUID, skill: str | None = None
) -> list[AuthoredItem]:
    """The tenant's private items (of ``skill``, if given), by item id."""
    uow = query_unit_of_work(app, tenant_id)
    bank = tenant_bank(uow, tenant_id)
    version = calibration(uow, tenant_id).current_version
    published = calibration(uow, tenant_id).versions.get(version, {})
    return [
        AuthoredItem(
            item,
            published.get(item.item_id, bank.initial[item.item_id]),
            version if item.item_id in published else 0,
        )
        for item in sorted(bank.items.values(), key=lambda i: i.item_id)
        if skill is None or item.skill == skill
    ]


def authored_item(app: TrainingApplication, tenant_id: UUID, item_id: str) -> AuthoredItem:
    for found in authored_items(app, tenant_id):
        if found.item.item_id == item_id:
            return found
    raise NotFound(f"item {item_id} not found among the tenant's items")


HANDLERS: dict[type, Handler] = {
    AddItem: add_item,
    ReviseItem: revise_item,
}
