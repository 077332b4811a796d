"""One external id, one member, under any interleaving (on the in-memory event store).

A registration taking an external id and a change of another member to the same id both
write that id's ``ExternalIdKey``: whichever saves second conflicts in the event store, and
run again on fresh state it is refused. Before, a registration of an id nobody had changed
did not write it, both commands saved, and two members held one external id.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from tests.unit.cohort_world import in_memory_bus
from training.core.access import Role
from training.core.bus import CommandBus, UnitOfWork
from training.core.context import Actor, ActorKind, CommandContext
from training.core.errors import AlreadyExists
from training.people.domain.external_ids import ExternalIdKey, ExternalIds
from training.people.domain.members import Member
from training.people.domain.seats import SeatRoster
from training.people.handlers.imports import ImportMembers, MemberRow
from training.people.handlers.members import RegisterMember, UpdateMember
from training.people.queries import member_with_external_id
from training.tenancy.handlers import RegisterTenant

ENGINEER = (Role.ENGINEER,)


def tenant_of(bus: CommandBus) -> CommandContext:
    operator = CommandContext(Actor(ActorKind.OPERATOR, "op"), "req-op", None)
    tenant = bus.execute(operator, RegisterTenant(f"t-{uuid.uuid4().hex[:8]}", "T", 100)).result
    return CommandContext(Actor(ActorKind.CLIENT, "hr"), "req-hr", tenant.tenant_id)


def decided(bus: CommandBus, context: CommandContext, command: Any) -> list[Any]:
    """Runs the command's handler now and answers its events, to be saved later."""
    uow = UnitOfWork(bus.app, context)
    bus.handlers[type(command)](command, uow)
    return uow.collect_stamped_events()


def holders(bus: CommandBus, tenant_id: uuid.UUID, external_id: str) -> list[uuid.UUID]:
    found = []
    for notification in bus.app.recorder.select_notifications(1, 10_000):
        event: Any = bus.app.mapper.to_domain_event(notification)
        if isinstance(event, Member.Registered | Member.ExternalIdChanged):
            found.append(event.originator_id)
    members = {m: bus.app.repository.get(m) for m in found}
    return sorted(
        {m for m, member in members.items() if member.external_id == external_id}, key=str
    )


def test_a_new_id_is_claimed_and_leads_to_its_member() -> None:
    tenant_id, member_id = uuid.uuid4(), uuid.uuid4()
    key = ExternalIdKey.claim(tenant_id, "z", member_id)
    assert key.member_id == member_id
    assert key.id == ExternalIdKey.create_id(tenant_id, "z")
    claimed = key.collect_events()[-1]
    assert isinstance(claimed, ExternalIdKey.Claimed)
    version = key.version
    key.assign(member_id)  # nothing changed, no event
    assert key.version == version


@pytest.mark.parametrize("first", ["registration", "change"])
def test_a_registration_and_a_change_to_its_external_id_conflict(first: str) -> None:
    bus = in_memory_bus()
    context = tenant_of(bus)
    assert context.tenant_id is not None
    ann = bus.execute(context, RegisterMember("A-1", "Ann", None, ENGINEER)).result
    # Both decide on the same state: nobody holds "z".
    registration = decided(bus, context, RegisterMember("z", "Zed", None, ENGINEER))
    change = decided(bus, context, UpdateMember(ann.member_id, external_id="z"))
    winner, loser = (registration, change) if first == "registration" else (change, registration)
    bus.app.save(*winner)
    with pytest.raises(IntegrityError):
        bus.app.save(*loser)
    assert len(holders(bus, context.tenant_id, "z")) == 1


def test_run_again_after_the_conflict_the_loser_is_refused() -> None:
    bus = in_memory_bus()
    context = tenant_of(bus)
    ann = bus.execute(context, RegisterMember("A-1", "Ann", None, ENGINEER)).result
    bus.execute(context, UpdateMember(ann.member_id, external_id="z"))
    with pytest.raises(AlreadyExists) as refused:
        bus.execute(context, RegisterMember("z", "Zed", None, ENGINEER))
    assert refused.value.field == "external_id"
    bus.execute(context, RegisterMember("y", "Yan", None, ENGINEER))
    with pytest.raises(AlreadyExists) as refused:
        bus.execute(context, UpdateMember(ann.member_id, external_id="y"))
    assert refused.value.field == "external_id"


def test_an_import_batch_and_a_change_to_one_of_its_ids_conflict() -> None:
    bus = in_memory_bus()
    context = tenant_of(bus)
    assert context.tenant_id is not None
    ann = bus.execute(context, RegisterMember("A-1", "Ann", None, ENGINEER)).result
    rows = tuple(
        MemberRow(n, f"I-{n}", f"Imported {n}", None, ENGINEER, None, None, None)
        for n in range(2, 6)
    )
    batch = decided(bus, context, ImportMembers(rows))
    change = decided(bus, context, UpdateMember(ann.member_id, external_id="I-3"))
    bus.app.save(*change)
    with pytest.raises(IntegrityError):
        bus.app.save(*batch)
    # Run again, the batch imports the other rows and reports the taken one as an update of
    # the member who holds it now.
    outcomes = bus.execute(context, ImportMembers(rows)).result
    assert [o.result for o in outcomes] == ["created", "updated", "created", "created"]
    assert holders(bus, context.tenant_id, "I-3") == [ann.member_id]


def test_a_manager_registered_earlier_in_the_batch_under_a_reissued_id_is_found() -> None:
    bus = in_memory_bus()
    context = tenant_of(bus)
    ann = bus.execute(context, RegisterMember("M-1", "Ann", None, ENGINEER)).result
    bus.execute(context, UpdateMember(ann.member_id, external_id="M-2"))  # frees M-1
    rows = (
        MemberRow(2, "M-1", "New manager", None, ENGINEER, None, None, None),
        MemberRow(3, "E-1", "Engineer", None, ENGINEER, "M-1", None, None),
    )
    outcomes = bus.execute(context, ImportMembers(rows)).result
    assert [o.result for o in outcomes] == ["created", "created"], outcomes
    assert context.tenant_id is not None
    manager_id = member_with_external_id(bus.app, context.tenant_id, "M-1")
    assert manager_id not in (None, ann.member_id)
    engineer_id = member_with_external_id(bus.app, context.tenant_id, "E-1")
    assert engineer_id is not None
    engineer = bus.app.repository.get(engineer_id)
    assert engineer.manager_id == manager_id


def test_a_copy_from_the_cache_changes_independently_of_the_cached_one() -> None:
    tenant_id = uuid.uuid4()
    keys = ExternalIds.open(tenant_id)
    roster = SeatRoster.open(tenant_id)
    keys.claim({"E1": uuid.uuid4()})
    roster.take((uuid.uuid4(),), 10)
    for cached in (keys, roster):
        cached.collect_events()
    copied_keys, copied_roster = copy.deepcopy(keys), copy.deepcopy(roster)
    copied_keys.claim({"E2": uuid.uuid4()})
    copied_roster.take((uuid.uuid4(),), 10)
    assert (set(keys.listed), keys.version, keys.collect_events()) == ({"E1"}, 2, [])
    assert (roster.taken, roster.version, roster.collect_events()) == (1, 2, [])
    assert (set(copied_keys.listed), copied_roster.taken) == ({"E1", "E2"}, 2)
    assert len(copied_keys.collect_events()) == len(copied_roster.collect_events()) == 1
