"""The assessment slot: one per engineer and skill, it allows one attempt at a time and
keeps the retake cool-down."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import InvalidTransition, LimitReached


class AssessmentSlot(TrainingAggregate):
    """One per engineer and skill: at most one attempt at a time, and the retake cool-down."""

    TOPIC = "training.assessments:AssessmentSlot"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.assessments:AssessmentSlot.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.assessments:AssessmentSlot.Created"

    class Opened(Created):
        TOPIC = "training.assessments:AssessmentSlot.Opened"
        member_id: UUID
        skill: str

    class AttemptStarted(Event):
        TOPIC = "training.assessments:AssessmentSlot.AttemptStarted"
        attempt_id: UUID

    class AttemptEnded(Event):
        TOPIC = "training.assessments:AssessmentSlot.AttemptEnded"
        attempt_id: UUID
        completed: bool
        ended_at: datetime

    @staticmethod
    def create_id(tenant_id: UUID, member_id: UUID, skill: str) -> UUID:
        return stable_id("tenants", tenant_id, "assessment-slot", member_id, skill)

    @classmethod
    def open(cls, tenant_id: UUID, member_id: UUID, skill: str) -> AssessmentSlot:
        return cls(member_id=member_id, skill=skill, tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, member_id: UUID, skill: str, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.skill = skill
        self.open_attempt: UUID | None = None
        self.last_completed_at: datetime | None = None

    def begin(self, attempt_id: UUID, now: datetime, cooldown_days: int) -> None:
        if self.open_attempt is not None:
            raise InvalidTransition(
                f"an attempt on {self.skill} is in progress ({self.open_attempt}); finish or "
                "abandon it first"
            )
        if self.last_completed_at is not None and cooldown_days > 0:
            allowed = self.last_completed_at + timedelta(days=cooldown_days)
            if now < allowed:
                raise LimitReached(
                    f"a retake of {self.skill} is possible from {allowed.date().isoformat()} "
                    f"({cooldown_days}-day cool-down)"
                )
        self._attempt_started(attempt_id=attempt_id)

    @event(AttemptStarted)
    def _attempt_started(self, attempt_id: UUID) -> None:
        self.open_attempt = attempt_id

    def end(self, attempt_id: UUID, *, completed: bool, now: datetime) -> None:
        if self.open_attempt == attempt_id:
            self._attempt_ended(attempt_id=attempt_id, completed=completed, ended_at=now)

    @event(AttemptEnded)
    def _attempt_ended(self, attempt_id: UUID, completed: bool, ended_at: datetime) -> None:
        self.open_attempt = None
        if completed:
            self.last_completed_at = ended_at
