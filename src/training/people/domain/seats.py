"""A tenant's seat roster: its active members, so the seat limit holds under concurrency."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import LimitReached


class SeatLimitReached(LimitReached):
    code = "seat-limit-reached"


class SeatRoster(TrainingAggregate):
    """How many of a tenant's members hold a seat (are active), so the seat limit holds
    under concurrent writes.

    Every command that activates or deactivates members also changes this one aggregate, so
    two of them racing for the last seat conflict on its version and one runs again. It keeps
    a count, not the members: loading and copying it costs the same at ten members or a
    hundred thousand. Whether one member is active is the member's own to say; the caller
    hands it only members whose status it has just changed.
    """

    TOPIC = "training.people:SeatRoster"

    # Every registration, import batch and status change is an event here, so a tenant's
    # roster gains events as long as it lives: a load replays at most the last 200 (ADR 0043).
    snapshot_interval = 200

    class SnapshotState(TypedDict):
        _created_on: datetime
        _modified_on: datetime
        tenant_id: UUID | None
        taken: int

    class Event(TrainingAggregate.Event):
        TOPIC = "training.people:SeatRoster.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.people:SeatRoster.Created"

    class Opened(Created):
        TOPIC = "training.people:SeatRoster.Opened"

    class SeatsTaken(Event):
        TOPIC = "training.people:SeatRoster.SeatsTaken"
        member_ids: tuple[UUID, ...]

    class SeatsReleased(Event):
        TOPIC = "training.people:SeatRoster.SeatsReleased"
        member_ids: tuple[UUID, ...]

    @staticmethod
    def create_id(tenant_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "seat-roster")

    @classmethod
    def open(cls, tenant_id: UUID) -> SeatRoster:
        return cls(tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.taken = 0

    def free(self, seat_limit: int) -> int:
        return max(seat_limit - self.taken, 0)

    def take(self, member_ids: tuple[UUID, ...], seat_limit: int) -> None:
        """Seats for members who were not active and now are (registered, reactivated)."""
        new = tuple(dict.fromkeys(member_ids))
        if not new:
            return
        if self.taken + len(new) > seat_limit:
            raise SeatLimitReached(
                f"the tenant's {seat_limit} seats allow {self.free(seat_limit)} more active "
                f"members, not {len(new)}; deactivate members or raise the seat limit"
            )
        self._seats_taken(member_ids=new)

    @event(SeatsTaken)
    def _seats_taken(self, member_ids: tuple[UUID, ...]) -> None:
        self.taken += len(member_ids)

    def release(self, member_ids: tuple[UUID, ...]) -> None:
        """Frees the seats of members who were active and no longer are (deactivated)."""
        held = tuple(dict.fromkeys(member_ids))
        if held:
            self._seats_released(member_ids=held)

    @event(SeatsReleased)
    def _seats_released(self, member_ids: tuple[UUID, ...]) -> None:
        self.taken = max(self.taken - len(member_ids), 0)
