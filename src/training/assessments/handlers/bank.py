"""The items an attempt draws from: the starter bank and the tenant's own, under a version of
their parameters; and the unit of work a query reads the tenant's aggregates with."""

from __future__ import annotations

import threading
from dataclasses import replace
from uuid import UUID
from weakref import WeakKeyDictionary

from training.assessments.domain.items import ItemBank, ItemCalibration
from training.assessments.handlers.bank_cache import BankCache, BankKey, SkillBank
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


def items_version(app: TrainingApplication, tenant_id: UUID) -> int:
    """The version of the tenant's ``ItemBank`` now, 0 when it has none: one indexed read of
    its last event, where loading it reads and copies all of them."""
    last = app.recorder.select_events(ItemBank.create_id(tenant_id), desc=True, limit=1)
    return last[0].originator_version if last else 0


def bank_for(uow: UnitOfWork, tenant_id: UUID, skill: str, version: int) -> SkillBank:
    """The skill's items (starter and the tenant's own) with the parameters of ``version``.

    Kept per application (``bank_cache``) under the current version of the tenant's items,
    so an item added or revised a moment ago, here or in another process, is in the next
    bank asked for."""
    key = BankKey(tenant_id, skill, version, items_version(uow.app, tenant_id))
    return bank_cache(uow.app).get_or_build(key, lambda: _build(uow, key))


def _build(uow: UnitOfWork, key: BankKey) -> tuple[BankKey | None, SkillBank]:
    """The bank of ``key`` as the store holds it now, and the key it belongs under; no key
    when the tenant's items have changes not saved yet (the bank must not outlive them)."""
    tenant_id, skill, version = key.tenant_id, key.skill, key.parameter_version
    bank: Bank = dict(starter_bank().items.get(skill, {}))
    built_from = 0
    saved = True
    if uow.exists(ItemBank.create_id(tenant_id)):
        private = tenant_bank(uow, tenant_id)
        built_from, saved = private.version, not private.pending_events
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
    built = SkillBank.of(bank)
    return (replace(key, items_version=built_from) if saved else None), built


def bank_cache(app: TrainingApplication) -> BankCache:
    """The application's cache of built banks (one per application: tests run several,
    each on a database of its own)."""
    with _CACHES_LOCK:
        cache = _CACHES.get(app)
        if cache is None:
            cache = _CACHES[app] = BankCache()
        return cache


_CACHES: WeakKeyDictionary[TrainingApplication, BankCache] = WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def assessable_skills(app: TrainingApplication, tenant_id: UUID) -> list[str]:
    """The skills the tenant's people can be assessed on: those with items, shared or the
    tenant's own."""
    skills = set(starter_bank().items)
    uow = query_unit_of_work(app, tenant_id)
    if uow.exists(ItemBank.create_id(tenant_id)):
        skills.update(item.skill for item in tenant_bank(uow, tenant_id).items.values())
    return sorted(skills)
