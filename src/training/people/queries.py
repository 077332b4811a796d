"""What other contexts may ask of people: questions over its aggregates, read inside their unit
of work."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID
from weakref import WeakKeyDictionary

from eventsourcing.application import AggregateNotFoundError

from training.core.access import Role
from training.core.aggregate import TrainingAggregate
from training.core.application import TrainingApplication
from training.core.bus import UnitOfWork
from training.core.errors import NotFound
from training.people.domain.external_ids import ExternalIdKey
from training.people.domain.members import Member
from training.people.domain.seats import SeatRoster
from training.people.standing import VersionedCache, latest_versions
from training.tenancy.domain import Tenant

A = TypeVar("A", bound=TrainingAggregate)


def seat_roster(uow: UnitOfWork, tenant_id: UUID) -> SeatRoster:
    return tenant_wide(
        uow, SeatRoster, SeatRoster.create_id(tenant_id), lambda: SeatRoster.open(tenant_id)
    )


def active_members(uow: UnitOfWork, member_ids: Sequence[UUID]) -> frozenset[UUID]:
    """Which of ``member_ids`` are active members of the caller's tenant, each member's own
    record asked (one query for them all)."""
    uow.require_tenant()
    members = uow.get_many(Member, member_ids)
    return frozenset(member_id for member_id, member in members.items() if member.is_active)


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
    """Whether a person may act now, and with which roles (read from the event store).

    Asked on every request a member makes. The answer is kept per application under the
    versions of the member and the tenant it was read at, and each request reads only their
    current versions (one query): a deactivation, an erasure, a change of roles or the
    tenant's suspension is an event, so the very next request, in any process, reads the
    member again."""
    versions = latest_versions(app, (member_id, tenant_id))
    member_version, tenant_version = versions.get(member_id, 0), versions.get(tenant_id, 0)
    cache = _standings(app)
    found = cache.get((tenant_id, member_id), (member_version, tenant_version))
    if found is not None:
        return found
    standing, read_at = _read_standing(app, tenant_id, member_id, tenant_version)
    cache.put((tenant_id, member_id), read_at, standing)
    return standing


def _read_standing(
    app: TrainingApplication, tenant_id: UUID, member_id: UUID, tenant_version: int
) -> tuple[MemberStanding, tuple[int, int]]:
    """The standing and the versions of the member and the tenant it rests on (the tenant's
    as given when the answer does not depend on it)."""
    try:
        member: object = app.repository.get(member_id)
    except AggregateNotFoundError:
        return MemberStanding("the member is unknown"), (0, tenant_version)
    if not isinstance(member, Member) or member.tenant_id != tenant_id:
        return MemberStanding("the member is unknown"), (_version_of(member), tenant_version)
    if not member.is_active or member.erased:
        return MemberStanding("the member is deactivated"), (member.version, tenant_version)
    try:
        tenant: object = app.repository.get(tenant_id)
    except AggregateNotFoundError:
        return MemberStanding("the tenant is suspended"), (member.version, 0)
    if not isinstance(tenant, Tenant) or not tenant.is_active:
        return MemberStanding("the tenant is suspended"), (member.version, _version_of(tenant))
    return MemberStanding(None, member.roles), (member.version, tenant.version)


def _version_of(aggregate: object) -> int:
    return aggregate.version if isinstance(aggregate, TrainingAggregate) else -1


# A standing is a few dozen bytes (a refusal or a handful of roles): 20,000 members' take
# about 10 MB.
MAX_STANDINGS = 20_000
_STANDINGS: WeakKeyDictionary[
    TrainingApplication, VersionedCache[tuple[UUID, UUID], MemberStanding]
] = WeakKeyDictionary()
_STANDINGS_LOCK = threading.Lock()


def _standings(app: TrainingApplication) -> VersionedCache[tuple[UUID, UUID], MemberStanding]:
    """The application's standings (one cache per application: tests run several, each on
    a database of its own)."""
    with _STANDINGS_LOCK:
        cache = _STANDINGS.get(app)
        if cache is None:
            cache = _STANDINGS[app] = VersionedCache(MAX_STANDINGS)
        return cache


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
