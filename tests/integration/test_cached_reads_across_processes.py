"""What a request reads from caches is never older than the store: a member's standing and a
skill's item bank, changed by another process (another application on the same database,
whose writes this one's caches never see), are read anew on the very next request."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from training.assessments.domain.items import Item, ItemKind, Option
from training.assessments.domain.scoring import ItemParameters
from training.assessments.handlers.bank import bank_for, query_unit_of_work
from training.assessments.handlers.calibration import PublishParameters
from training.assessments.handlers.items import AddItem, ReviseItem
from training.assessments.queries import starter_bank
from training.bootstrap import command_bus, training_application
from training.core.access import Role
from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.infra.database import Database
from training.people.handlers.members import (
    DeactivateMember,
    ReactivateMember,
    RegisterMember,
    UpdateMember,
)
from training.people.queries import member_in_force
from training.tenancy.handlers import ReactivateTenant, RegisterTenant, SuspendTenant

SKILL = "python"


@pytest.fixture(scope="module")
def other_bus(database: Database) -> Iterator[CommandBus]:
    """Another process's command bus: its own application, caches and connections."""
    application = training_application(database)
    try:
        yield command_bus(application)
    finally:
        application.close()


def new_tenant(bus: CommandBus) -> CommandContext:
    slug = f"cache-{uuid.uuid4().hex[:8]}"
    platform = CommandContext.system("tests", request_id="t")
    tenant = bus.execute(platform, RegisterTenant(slug, slug, 100)).result
    return CommandContext(Actor(ActorKind.CLIENT, "tests"), "r", tenant.tenant_id)


def test_a_member_deactivated_elsewhere_is_refused_at_once(
    app: TrainingApplication, bus: CommandBus, other_bus: CommandBus
) -> None:
    context = new_tenant(bus)
    tenant_id = context.tenant_id
    assert tenant_id is not None
    registered = bus.execute(
        context, RegisterMember("S1", "Sam", "s1@example.test", (Role.ENGINEER,))
    ).result
    member_id = registered.member_id
    # Asked twice: the second answer comes from the cache.
    assert member_in_force(app, tenant_id, member_id).refusal is None
    assert member_in_force(app, tenant_id, member_id).roles == (Role.ENGINEER,)

    other_bus.execute(context, DeactivateMember(member_id, "left"))
    assert member_in_force(app, tenant_id, member_id).refusal == "the member is deactivated"

    other_bus.execute(context, ReactivateMember(member_id))
    other_bus.execute(context, UpdateMember(member_id, roles=(Role.HR_MANAGER,)))
    standing = member_in_force(app, tenant_id, member_id)
    assert standing.refusal is None
    assert standing.roles == (Role.HR_MANAGER,)

    platform = CommandContext.system("tests", request_id="t")
    other_bus.execute(platform, SuspendTenant(tenant_id, "unpaid"))
    assert member_in_force(app, tenant_id, member_id).refusal == "the tenant is suspended"
    other_bus.execute(platform, ReactivateTenant(tenant_id))
    assert member_in_force(app, tenant_id, member_id).refusal is None


def test_an_unknown_or_foreign_member_stays_refused(
    app: TrainingApplication, bus: CommandBus
) -> None:
    context, foreign = new_tenant(bus), new_tenant(bus)
    assert context.tenant_id is not None
    assert foreign.tenant_id is not None
    elsewhere = bus.execute(
        foreign, RegisterMember("F1", "Fay", "f1@example.test", (Role.ENGINEER,))
    ).result.member_id
    for _ in range(2):
        assert member_in_force(app, context.tenant_id, elsewhere).refusal == (
            "the member is unknown"
        )
        assert member_in_force(app, context.tenant_id, uuid.uuid4()).refusal == (
            "the member is unknown"
        )


def private_item(item_id: str, stem: str = "Which one?") -> Item:
    options = (Option("a", "one"), Option("b", "two"), Option("c", "three"))
    return Item(item_id, SKILL, ItemKind.SINGLE_CHOICE, stem, None, options, ("b",), 60)


def test_a_bank_shows_items_and_parameters_published_elsewhere_at_once(
    app: TrainingApplication, bus: CommandBus, other_bus: CommandBus
) -> None:
    context = new_tenant(bus)
    tenant_id = context.tenant_id
    assert tenant_id is not None

    def bank(version: int) -> dict[str, tuple[Item, ItemParameters]]:
        return dict(bank_for(query_unit_of_work(app, tenant_id), tenant_id, SKILL, version).items)

    starter = starter_bank().items[SKILL]
    assert bank(0) == starter
    assert bank(0) == starter  # from the cache

    other_bus.execute(context, AddItem(private_item("acme-py-1"), 0.5, 1.1))
    added = bank(0)
    assert set(added) == set(starter) | {"acme-py-1"}
    assert added["acme-py-1"][1] == ItemParameters("acme-py-1", 0.5, 1.1)

    other_bus.execute(context, ReviseItem(private_item("acme-py-1", "Which one now?")))
    revised = bank(0)["acme-py-1"][0]
    assert (revised.stem, revised.version) == ("Which one now?", 2)

    harder = tuple(
        ItemParameters(item_id, parameters.difficulty + 1.0, parameters.discrimination)
        for item_id, (_, parameters) in bank(0).items()
    )
    other_bus.execute(context, PublishParameters(harder, responses_used=100))
    published = bank(1)
    assert {item_id: params for item_id, (_, params) in published.items()} == {
        p.item_id: p for p in harder
    }
    # Version 0 keeps the shipped and initial parameters.
    assert bank(0)["acme-py-1"][1] == ItemParameters("acme-py-1", 0.5, 1.1)
