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
    """Where a tenant's external ids led, in one aggregate, until each id got its own
    ``ExternalIdKey``: it grew with every registration, and every registration loaded it.

    No command writes it any more. Its events stay in the store, and ``training migrate``
    carries what it listed over into keys once (``people.handlers.carry_over``).
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


class ExternalIdKey(TrainingAggregate):
    """Where one of a tenant's external ids leads: one external id, one member, under
    concurrency.

    Every command that gives a member an external id writes that id's key (a registration
    opens it; a change assigns it, and frees the id given up), so two commands giving one
    id to two members conflict on it and the one run again finds the id taken. A key is
    written only by commands about its own id: their cost does not grow with the tenant.
    An id with no key leads, as it always did, to the member whose id derives from it.
    The tenant-wide ``ExternalIds`` kept these before; ``training migrate`` carries what
    it listed over into keys once.
    """

    TOPIC = "training.people:ExternalIdKey"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.people:ExternalIdKey.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.people:ExternalIdKey.Created"

    class Claimed(Created):
        """``member_id`` None: the id was given up before its key was opened."""

        TOPIC = "training.people:ExternalIdKey.Claimed"
        external_id: str
        member_id: UUID | None

    class Assigned(Event):
        """``member_id`` None: the external id leads to nobody (it is free again)."""

        TOPIC = "training.people:ExternalIdKey.Assigned"
        member_id: UUID | None

    @staticmethod
    def create_id(tenant_id: UUID, external_id: str) -> UUID:
        return stable_id("tenants", tenant_id, "external-id", external_id)

    @classmethod
    def claim(cls, tenant_id: UUID, external_id: str, member_id: UUID | None) -> ExternalIdKey:
        return cls(tenant_id=tenant_id, external_id=external_id, member_id=member_id)

    @event(Claimed)
    def __init__(
        self,
        *,
        tenant_id: UUID | None = None,
        external_id: str = "",
        member_id: UUID | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.external_id = external_id
        self.member_id = member_id

    def assign(self, member_id: UUID | None) -> None:
        if member_id != self.member_id:
            self._assigned(member_id=member_id)

    @event(Assigned)
    def _assigned(self, member_id: UUID | None) -> None:
        self.member_id = member_id
