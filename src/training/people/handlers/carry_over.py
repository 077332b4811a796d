"""Carrying the tenant-wide ``ExternalIds`` over into one ``ExternalIdKey`` per external id.

Before keys, every registration listed its external id in its tenant's ``ExternalIds``, and
every change of an external id listed where the old and the new one led. ``training
migrate`` runs ``carry_over_external_ids`` once (a data step recorded when done): for each
tenant that has one, the ids it lists get a key that leads where it said, a batch of ids per
command. An id whose key a command already wrote keeps its key: it is newer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from eventsourcing.utils import get_topic

from training.core.bus import CommandBus, Handler, UnitOfWork
from training.core.context import CommandContext
from training.infra.migrations import DataReport
from training.people.domain.external_ids import ExternalIdKey, ExternalIds
from training.people.handlers.members import external_id_keys

CARRY_OVER_EXTERNAL_IDS = "0029-external-id-keys"
BATCH = 500
PAGE = 500


@dataclass(frozen=True)
class CarryOverExternalIds:
    """Opens a key for each of ``external_ids`` (listed in the tenant's ``ExternalIds``)
    that has none."""

    external_ids: tuple[str, ...]


def carry_over(command: CarryOverExternalIds, uow: UnitOfWork) -> int:
    """Answers how many keys it opened."""
    tenant_id = uow.require_tenant()
    listed = uow.get(ExternalIds, ExternalIds.create_id(tenant_id)).listed
    keys = external_id_keys(uow, tenant_id, command.external_ids)
    opened = 0
    for external_id in command.external_ids:
        if external_id in listed and external_id not in keys:
            uow.add(ExternalIdKey.claim(tenant_id, external_id, listed[external_id]))
            opened += 1
    return opened


def carry_over_external_ids(bus: CommandBus) -> DataReport:
    """Gives every external id a tenant's ``ExternalIds`` lists its own key."""
    tenants = keys = 0
    for tenant_id in _tenants_with_listed_ids(bus):
        context = CommandContext.system(
            "migrate", f"external-ids-{uuid.uuid4().hex[:8]}", tenant_id
        )
        legacy: object = bus.app.repository.get(ExternalIds.create_id(tenant_id))
        assert isinstance(legacy, ExternalIds)
        listed = tuple(legacy.listed)
        for start in range(0, len(listed), BATCH):
            batch = CarryOverExternalIds(listed[start : start + BATCH])
            keys += int(bus.execute(context, batch).result)
        tenants += 1
    return {"tenants": tenants, "keys_opened": keys}


def _tenants_with_listed_ids(bus: CommandBus) -> Iterator[uuid.UUID]:
    topic = get_topic(ExternalIds.Opened)
    start = 1
    while True:
        page = bus.app.recorder.select_notifications(start, PAGE, topics=[topic])
        if not page:
            return
        for notification in page:
            opened = bus.app.mapper.to_domain_event(notification)
            assert isinstance(opened, ExternalIds.Opened)
            if opened.tenant_id is not None:
                yield opened.tenant_id
        start = page[-1].id + 1


HANDLERS: dict[type, Handler] = {CarryOverExternalIds: carry_over}
