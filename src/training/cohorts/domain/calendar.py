"""Calendar feeds: a secret URL per cohort or per person, of which only a hash is kept."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id


class FeedKind(StrEnum):
    COHORT = "cohort"
    MEMBER = "member"


class CalendarFeed(TrainingAggregate):
    """A secret calendar URL for one cohort or one person. Only a hash of the secret is kept;
    rotating issues a new secret and the old URL stops working."""

    TOPIC = "training.cohorts:CalendarFeed"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.cohorts:CalendarFeed.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.cohorts:CalendarFeed.Created"

    class Issued(Created):
        TOPIC = "training.cohorts:CalendarFeed.Issued"
        kind: FeedKind
        subject_id: UUID
        token_hash: str

    class Rotated(Event):
        TOPIC = "training.cohorts:CalendarFeed.Rotated"
        token_hash: str

    @staticmethod
    def create_id(tenant_id: UUID, kind: FeedKind, subject_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "calendar", kind, subject_id)

    @classmethod
    def issue(
        cls, tenant_id: UUID, kind: FeedKind, subject_id: UUID, token_hash: str
    ) -> CalendarFeed:
        return cls(kind=kind, subject_id=subject_id, token_hash=token_hash, tenant_id=tenant_id)

    @event(Issued)
    def __init__(
        self, kind: FeedKind, subject_id: UUID, token_hash: str, *, tenant_id: UUID | None = None
    ) -> None:
        self.tenant_id = tenant_id
        self.kind = kind
        self.subject_id = subject_id
        self.token_hash = token_hash

    def rotate(self, token_hash: str) -> None:
        self._rotated(token_hash=token_hash)

    @event(Rotated)
    def _rotated(self, token_hash: str) -> None:
        self.token_hash = token_hash
