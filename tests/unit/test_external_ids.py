"""Where external ids lead once some of them changed (the member id never changes), each id
on a key of its own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.unit.cohort_world import in_memory_bus
from training.core.access import Role
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.errors import AlreadyExists
from training.people.domain.external_ids import ExternalIdKey, ExternalIds
from training.people.domain.members import Member
from training.people.handlers.carry_over import carry_over_external_ids
from training.people.handlers.members import RegisterMember, UpdateMember, lead_of
from training.people.queries import member_with_external_id
from training.tenancy.handlers import RegisterTenant

ENGINEER = (Role.ENGINEER,)


def test_an_external_id_without_a_key_leads_to_the_member_derived_from_it() -> None:
    tenant_id = uuid.uuid4()
    assert lead_of(tenant_id, "E1", None) == Member.create_id(tenant_id, "E1")


def test_a_changed_external_id_leads_to_its_member_and_the_old_one_to_nobody() -> None:
    tenant_id = uuid.uuid4()
    member = Member.register(tenant_id=tenant_id, external_id="E1", roles=ENGINEER)
    old = ExternalIdKey.claim(tenant_id, "E1", member.id)
    new = ExternalIdKey.claim(tenant_id, "E2", None)
    old.assign(None)
    new.assign(member.id)
    member.change_external_id("E2")
    assert member.id == Member.create_id(tenant_id, "E1")
    assert member.external_id == "E2"
    assert lead_of(tenant_id, "E2", new) == member.id
    assert lead_of(tenant_id, "E1", old) is None
    version = new.version
    new.assign(member.id)  # no change, no event
    assert new.version == version
    assert old.id == ExternalIdKey.create_id(tenant_id, "E1") != new.id


def test_a_member_may_be_registered_with_a_given_id() -> None:
    tenant_id, member_id = uuid.uuid4(), uuid.uuid4()
    member = Member.register(
        tenant_id=tenant_id, external_id="E1", roles=ENGINEER, member_id=member_id
    )
    assert member.id == member_id
    assert member.tenant_id == tenant_id


def tenant_context() -> tuple[CommandBus, CommandContext, uuid.UUID]:
    bus = in_memory_bus()
    operator = CommandContext(Actor(ActorKind.OPERATOR, "op"), "req-op", None)
    tenant = bus.execute(operator, RegisterTenant(f"t-{uuid.uuid4().hex[:8]}", "T", 100)).result
    context = CommandContext(Actor(ActorKind.CLIENT, "hr"), "req-hr", tenant.tenant_id)
    return bus, context, tenant.tenant_id


def stored_events(bus: CommandBus) -> list[Any]:
    return [
        bus.app.mapper.to_domain_event(n) for n in bus.app.recorder.select_notifications(1, 1_000)
    ]


def test_a_registration_writes_its_own_ids_key_and_nothing_tenant_wide_that_grows() -> None:
    bus, context, tenant_id = tenant_context()
    for n in range(3):
        bus.execute(context, RegisterMember(f"E-{n}", f"Person {n}", None, ENGINEER))
    events = stored_events(bus)
    keys = [e for e in events if isinstance(e, ExternalIdKey.Claimed)]
    assert {k.originator_id for k in keys} == {
        ExternalIdKey.create_id(tenant_id, f"E-{n}") for n in range(3)
    }
    assert not [e for e in events if isinstance(e, ExternalIds.Event)]


def test_the_ids_a_tenant_wide_list_kept_are_carried_over_to_keys_once() -> None:
    bus, context, tenant_id = tenant_context()
    # As before keys: Ann registered with A-1 and moved to A-2, so A-1 leads to nobody, and
    # Rae was registered with "R" under a reissued id; only the list says so.
    ann = Member.register(tenant_id=tenant_id, external_id="A-1", roles=ENGINEER)
    ann.change_external_id("A-2")
    rae = Member.register(
        tenant_id=tenant_id, external_id="R", roles=ENGINEER, member_id=uuid.uuid4()
    )
    legacy = ExternalIds.open(tenant_id)
    legacy.assign("A-1", None)
    legacy.assign("A-2", ann.id)
    legacy.claim({"R": rae.id})
    bus.app.save(legacy, ann, rae)

    assert carry_over_external_ids(bus) == {"tenants": 1, "keys_opened": 3}
    assert member_with_external_id(bus.app, tenant_id, "A-2") == ann.id
    assert member_with_external_id(bus.app, tenant_id, "R") == rae.id
    assert member_with_external_id(bus.app, tenant_id, "A-1") is None
    assert carry_over_external_ids(bus) == {"tenants": 1, "keys_opened": 0}

    # A-2 is Ann's: nobody else may take it; A-1 is free, under a new member id.
    bo = bus.execute(context, RegisterMember("B-1", "Bo", None, ENGINEER)).result
    with pytest.raises(AlreadyExists) as refused:
        bus.execute(context, UpdateMember(bo.member_id, external_id="A-2"))
    assert refused.value.field == "external_id"
    new = bus.execute(context, RegisterMember("A-1", "Al", None, ENGINEER)).result
    assert new.member_id not in (ann.id, Member.create_id(tenant_id, "A-1"))
    assert member_with_external_id(bus.app, tenant_id, "A-1") == new.member_id
