"""The command bus: one entry point, stamped events, the tenant boundary, retries."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

import pytest

from tests.unit.fake_time import FakeTime
from training.core.application import TrainingApplication
from training.core.bus import CommandBus, ConcurrentModification, UnitOfWork
from training.core.context import Actor, ActorKind, CommandContext
from training.core.errors import AlreadyExists, Forbidden, NotFound, StaleVersion
from training.core.retry import RetryPolicy
from training.tenancy.domain import Tenant
from training.tenancy.handlers import HANDLERS, RegisterTenant, SuspendTenant, UpdateTenant


def in_memory_bus() -> CommandBus:
    return CommandBus(
        TrainingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}), HANDLERS
    )


def operator(request_id: str = "req-1") -> CommandContext:
    return CommandContext(Actor(ActorKind.OPERATOR, "op_1"), request_id, None)


def tenant_client(tenant_id: uuid.UUID) -> CommandContext:
    return CommandContext(Actor(ActorKind.CLIENT, "tc_1"), "req-2", tenant_id)


def test_every_event_records_actor_request_and_tenant() -> None:
    bus = in_memory_bus()
    outcome = bus.execute(operator("req-42"), RegisterTenant("acme", "Acme", 10))
    bus.execute(operator("req-43"), UpdateTenant(outcome.result.tenant_id, name="Acme 2"))
    events = list(bus.app.events.get(outcome.result.tenant_id))
    assert [e.actor for e in events] == ["operator:op_1", "operator:op_1"]
    assert [e.request_id for e in events] == ["req-42", "req-43"]
    assert {e.tenant_id for e in events} == {outcome.result.tenant_id}
    assert outcome.position == 2  # the tenant and the skill framework it starts from


def test_a_command_that_changes_nothing_has_no_position() -> None:
    bus = in_memory_bus()
    tenant = bus.execute(operator(), RegisterTenant("acme", "Acme", 10)).result
    unchanged = bus.execute(operator(), UpdateTenant(tenant.tenant_id, name="Acme"))
    assert unchanged.position is None
    assert unchanged.result.version == 1


def test_a_duplicate_natural_key_is_refused() -> None:
    bus = in_memory_bus()
    bus.execute(operator(), RegisterTenant("acme", "Acme", 10))
    with pytest.raises(AlreadyExists):
        bus.execute(operator(), RegisterTenant("acme", "Other", 10))


def test_a_stale_expected_version_is_refused() -> None:
    bus = in_memory_bus()
    tenant = bus.execute(operator(), RegisterTenant("acme", "Acme", 10)).result
    bus.execute(operator(), UpdateTenant(tenant.tenant_id, name="B", expected_version=1))
    with pytest.raises(StaleVersion):
        bus.execute(operator(), UpdateTenant(tenant.tenant_id, name="C", expected_version=1))


def test_tenant_commands_need_the_platform() -> None:
    bus = in_memory_bus()
    tenant = bus.execute(operator(), RegisterTenant("acme", "Acme", 10)).result
    with pytest.raises(Forbidden):
        bus.execute(tenant_client(tenant.tenant_id), SuspendTenant(tenant.tenant_id, "x"))


@dataclass(frozen=True)
class Peek:
    tenant_id: uuid.UUID


def peek(command: Peek, uow: UnitOfWork) -> str:
    return uow.get(Tenant, command.tenant_id).name


def test_another_tenants_aggregate_is_not_found() -> None:
    bus = in_memory_bus()
    bus.handlers[Peek] = peek
    acme = bus.execute(operator(), RegisterTenant("acme", "Acme", 10)).result
    globex = bus.execute(operator(), RegisterTenant("globex", "Globex", 10)).result
    assert bus.execute(tenant_client(acme.tenant_id), Peek(acme.tenant_id)).result == "Acme"
    with pytest.raises(NotFound):
        bus.execute(tenant_client(acme.tenant_id), Peek(globex.tenant_id))
    with pytest.raises(NotFound):
        bus.execute(tenant_client(acme.tenant_id), Peek(uuid.uuid4()))


@dataclass(frozen=True)
class RenameRacing:
    tenant_id: uuid.UUID
    name: str


def test_a_lost_race_runs_the_handler_again_on_fresh_state() -> None:
    bus = in_memory_bus()
    tenant = bus.execute(operator(), RegisterTenant("acme", "Acme", 10)).result
    attempts: list[int] = []

    def rename_while_another_writer_wins(command: RenameRacing, uow: UnitOfWork) -> int:
        loaded = uow.get(Tenant, command.tenant_id)
        attempts.append(loaded.version)
        if len(attempts) == 1:  # another request saves first, between our load and our save
            rival = bus.app.repository.get(command.tenant_id)
            rival.rename("Rival")
            bus.app.save(rival)
        loaded.rename(command.name)
        return int(loaded.version)

    bus.handlers[RenameRacing] = rename_while_another_writer_wins
    outcome = bus.execute(operator(), RenameRacing(tenant.tenant_id, "Mine"))
    assert attempts == [1, 2]
    assert outcome.result == 3
    assert bus.app.repository.get(tenant.tenant_id).name == "Mine"


def bus_with(retry: RetryPolicy) -> CommandBus:
    return CommandBus(
        TrainingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}),
        HANDLERS,
        retry=retry,
    )


def rename_racing(bus: CommandBus, attempts: list[int], rival_wins: int) -> None:
    """A handler that loses its first ``rival_wins`` races to a writer of another process."""

    def rename(command: RenameRacing, uow: UnitOfWork) -> int:
        loaded = uow.get(Tenant, command.tenant_id)
        attempts.append(loaded.version)
        if len(attempts) <= rival_wins:
            rival = bus.app.repository.get(command.tenant_id)
            rival.rename(f"Rival {len(attempts)}")
            bus.app.save(rival)
        loaded.rename(command.name)
        return int(loaded.version)

    bus.handlers[RenameRacing] = rename


def test_a_command_that_loses_in_its_turn_backs_off_then_wins() -> None:
    time = FakeTime()
    bus = bus_with(time.retry_policy(draw=lambda: 0.5))
    tenant = bus.execute(operator(), RegisterTenant("acme", "Acme", 10)).result
    attempts: list[int] = []
    rename_racing(bus, attempts, rival_wins=3)
    outcome = bus.execute(operator(), RenameRacing(tenant.tenant_id, "Mine"))
    assert attempts == [1, 2, 3, 4]
    assert outcome.result == 5
    # The first loss runs again at once (in its turn); each loss in its turn waits, longer.
    assert time.slept == pytest.approx([0.0025, 0.005])


def test_a_command_that_keeps_losing_gives_up_when_its_budget_is_spent() -> None:
    time = FakeTime()
    retry = time.retry_policy(budget=1.0, draw=lambda: 0.9)
    bus = bus_with(retry)
    tenant = bus.execute(operator(), RegisterTenant("acme", "Acme", 10)).result
    attempts: list[int] = []
    rename_racing(bus, attempts, rival_wins=1_000)
    with pytest.raises(ConcurrentModification, match="RenameRacing changes for 1 s"):
        bus.execute(operator(), RenameRacing(tenant.tenant_id, "Mine"))
    assert len(attempts) == len(time.slept) + 2
    assert sum(time.slept) <= 1.0
    assert max(time.slept) == pytest.approx(0.9 * retry.max_delay)  # the ceiling holds
    assert bus.app.repository.get(tenant.tenant_id).name.startswith("Rival")


def test_with_no_budget_a_lost_race_is_a_conflict_at_once() -> None:
    time = FakeTime()
    bus = bus_with(time.retry_policy(budget=0.0))
    tenant = bus.execute(operator(), RegisterTenant("acme", "Acme", 10)).result
    attempts: list[int] = []
    rename_racing(bus, attempts, rival_wins=1)
    with pytest.raises(ConcurrentModification):
        bus.execute(operator(), RenameRacing(tenant.tenant_id, "Mine"))
    assert attempts == [1]
    assert time.slept == []


@dataclass(frozen=True)
class Rename:
    tenant_id: uuid.UUID
    name: str


def test_concurrent_commands_on_one_aggregate_all_succeed() -> None:
    bus = in_memory_bus()
    tenant = bus.execute(operator(), RegisterTenant("acme", "Acme", 10)).result
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def rename(command: Rename, uow: UnitOfWork) -> None:
        uow.get(Tenant, command.tenant_id).rename(command.name)

    def run(index: int) -> None:
        start.wait()
        try:
            bus.execute(operator(), Rename(tenant.tenant_id, f"Acme {index}"))
        except BaseException as error:  # the test looks at it
            errors.append(error)

    bus.handlers[Rename] = rename
    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert bus.app.repository.get(tenant.tenant_id).version == 1 + 16


def test_a_unit_of_work_reads_one_state_an_aggregate_found_missing_stays_missing() -> None:
    """A handler that checks and then acts must not see an aggregate appear in between: two
    reads of one key, the second after another command created it, let two members take
    one external id (found by racing a SCIM PATCH and a registration)."""
    bus = in_memory_bus()
    slug = f"t-{uuid.uuid4().hex[:8]}"
    tenant_id = Tenant.create_id(slug)
    uow = UnitOfWork(bus.app, operator())
    with pytest.raises(NotFound):
        uow.get(Tenant, tenant_id)
    bus.execute(operator("req-2"), RegisterTenant(slug, "Acme", 5))  # another command, meanwhile
    with pytest.raises(NotFound):
        uow.get(Tenant, tenant_id)
    assert not uow.exists(tenant_id)
    # A new command sees it.
    assert UnitOfWork(bus.app, operator("req-3")).get(Tenant, tenant_id).name == "Acme"
