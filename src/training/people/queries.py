"""What other contexts may ask of people: questions over its aggregates, read inside their unit
of work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from training.core.access import Role
from training.core.aggregate import TrainingAggregate
from training.core.application import TrainingApplication
from training.core.bus import UnitOfWork
from training.core.errors import NotFound
from training.core.loading import load_many
from training.people.domain.external_ids import ExternalIdKey
from training.people.domain.members import Member
from training.people.domain.seats import SeatRoster
from training.tenancy.queries import tenant_is_active

A = TypeVar("A", bound=TrainingAggregate)


def seat_roster(uow: UnitOfWork, tenant_id: UUID) -> SeatRoster:
    return tenant_wide(
        uow, SeatRoster, SeatRoster.create_id(tenant_id), lambda: SeatRoster.open(tenant_id)
    )


def active_members(uow: UnitOfWork, member_ids: Sequence[UUID]) -> frozenset[UUID]:
    """Which of ``member_ids`` are active members of the caller's tenant, each member's own
    record asked (one query for them all)."""
    tenant_id = uow.require_tenant()
    found = load_many(uow.app, tuple(member_ids))
    return frozenset(
        member_id
        for member_id, member in found.items()
        if isinstance(member, Member) and member.tenant_id == tenant_id and member.is_active
    )


def member_with_external_id(
    app: TrainingApplication, tenant_id: UUID, external_id: str
) -> UUID | None:
    """The member of the tenant an external id leads to now (read from the event store).

    The member must still hold it: an id given up without being freed on its key
    (``GiveOpaqueExternalId``) still derives to its old member, and leads nowhere."""
    lead: UUID | None = Member.create_id(tenant_id, external_id)
    try:
        key: object = app.repository.get(ExternalIdKey.create_id(tenant_id, external_id))
        if isinstance(key, ExternalIdKey) and key.tenant_id == tenant_id:
            lead = key.member_id
    except AggregateNotFoundError:
        pass
    if lead is None:
        return None
    try:
        member: object = app.repository.get(lead)
    except AggregateNotFoundError:
        return None
    if not isinstance(member, Member) or member.tenant_id != tenant_id:
        return None
    if member.external_id != external_id:
        return None
    return lead


def member_in_force(app: TrainingApplication, tenant_id: UUID, member_id: UUID) -> MemberStanding:
    """Whether a person may act now, and with which roles (read from the event store)."""
    try:
        member: object = app.repository.get(member_id)
    except AggregateNotFoundError:
        return MemberStanding("the member is unknown")
    if not isinstance(member, Member) or member.tenant_id != tenant_id:
        return MemberStanding("the member is unknown")
    if not member.is_active or member.erased:
        return MemberStanding("the member is deactivated")
    if not tenant_is_active(app, tenant_id):
        return MemberStanding("the tenant is suspended")
    return MemberStanding(None, member.roles)


def tenant_wide(uow: UnitOfWork, cls: type[A], aggregate_id: UUID, open_: Callable[[], A]) -> A:
    """A tenant's one aggregate of ``cls`` (opened, and saved with the rest, when the tenant
    has none yet). It exists in nearly every command that asks, so it is loaded at once: one
    read, where asking first whether it exists costs a second one."""
    try:
        return uow.get(cls, aggregate_id)
    except NotFound:  # its id derives from the tenant: not found means it does not exist
        aggregate = open_()
        uow.add(aggregate)
        return aggregate


@dataclass(frozen=True)
class MemberStanding:
    refusal: str | None
    roles: tuple[Role, ...] = ()
