"""Where a tenant's external ids lead: one external id, one member, under concurrency."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.people.domain.copies import CopiedFlat
from training.people.domain.members import Member


@dataclass(frozen=True, slots=True)
class Claim:
    """An external id a new member took."""

    external_id: str
    member_id: UUID


class ExternalIds(CopiedFlat, TrainingAggregate):
    """Where a tenant's external ids lead: one external id, one member, under concurrency.

    A member's id derives from the external id it was registered with and never changes. An
    external id that changed is listed here: the new one leads to its member, the old one
    to nobody (it is free again). Every registration lists the id it takes too (``Claimed``,
    one event for a whole import batch), so every command that gives a member an external
    id writes this aggregate, and two of them giving one id to two members (a registration
    racing a change to the same id) conflict on its version: the one run again finds the id
    taken. An id registered before registrations were listed is not listed and leads, as
    before, to the member whose id derives from it.
    """

    TOPIC = "training.people:ExternalIds"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.people:ExternalIds.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.people:ExternalIds.Created"

    class Opened(Created):
        TOPIC = "training.people:ExternalIds.Opened"

    class Assigned(Event):
        """``member_id`` None: the external id leads to nobody."""

        TOPIC = "training.people:ExternalIds.Assigned"
        external_id: str
        member_id: UUID | None

    class Claimed(Event):
        """New members took these external ids (a registration, or an import batch)."""

        TOPIC = "training.people:ExternalIds.Claimed"
        claims: tuple[Claim, ...]

    @staticmethod
    def create_id(tenant_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "external-ids")

    @classmethod
    def open(cls, tenant_id: UUID) -> ExternalIds:
        return cls(tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.listed: dict[str, UUID | None] = {}

    def lead(self, external_id: str) -> UUID | None:
        """The member id an external id leads to (that member may not exist yet), or None
        when it was given up and its derived id belongs to the member who gave it up."""
        if external_id in self.listed:
            return self.listed[external_id]
        assert self.tenant_id is not None
        return Member.create_id(self.tenant_id, external_id)

    def assign(self, external_id: str, member_id: UUID | None) -> None:
        if external_id not in self.listed or self.listed[external_id] != member_id:
            self._assigned(external_id=external_id, member_id=member_id)

    @event(Assigned)
    def _assigned(self, external_id: str, member_id: UUID | None) -> None:
        self.listed[external_id] = member_id

    def claim(self, claims: dict[str, UUID]) -> None:
        """Lists the external ids new members registered with. An id that leads to an
        existing member is the caller's refusal to make, before it registers anyone."""
        if claims:
            self._claimed(claims=tuple(Claim(e, m) for e, m in claims.items()))

    @event(Claimed)
    def _claimed(self, claims: tuple[Claim, ...]) -> None:
        for claim in claims:
            self.listed[claim.external_id] = claim.member_id


def lead_of(tenant_id: UUID, external_id: str, keys: ExternalIds | None) -> UUID | None:
    """Where an external id leads, given the tenant's ``ExternalIds`` if it has any."""
    return keys.lead(external_id) if keys is not None else Member.create_id(tenant_id, external_id)
