"""A tenant's training policy: the thresholds HR sets for the whole company."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import RuleViolated

DEFAULT_AT_RISK_THRESHOLD = 20  # percentage points behind the cohort's schedule
DEFAULT_RETAKE_COOLDOWN_DAYS = 14


class TrainingPolicy(TrainingAggregate):
    TOPIC = "training.policy:TrainingPolicy"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.policy:TrainingPolicy.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.policy:TrainingPolicy.Created"

    class Adopted(Created):
        TOPIC = "training.policy:TrainingPolicy.Adopted"
        at_risk_threshold: int
        retake_cooldown_days: int

    class Changed(Event):
        TOPIC = "training.policy:TrainingPolicy.Changed"
        at_risk_threshold: int
        retake_cooldown_days: int

    @staticmethod
    def create_id(tenant_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "training-policy")

    @classmethod
    def adopt_defaults(cls, tenant_id: UUID) -> TrainingPolicy:
        return cls(
            at_risk_threshold=DEFAULT_AT_RISK_THRESHOLD,
            retake_cooldown_days=DEFAULT_RETAKE_COOLDOWN_DAYS,
            tenant_id=tenant_id,
        )

    @event(Adopted)
    def __init__(
        self, at_risk_threshold: int, retake_cooldown_days: int, *, tenant_id: UUID | None = None
    ) -> None:
        self.tenant_id = tenant_id
        self.at_risk_threshold = at_risk_threshold
        self.retake_cooldown_days = retake_cooldown_days

    def change(self, at_risk_threshold: int, retake_cooldown_days: int) -> None:
        if not 1 <= at_risk_threshold <= 100:
            raise RuleViolated(
                "the at-risk threshold is 1-100 percentage points", field="at_risk_threshold"
            )
        if not 0 <= retake_cooldown_days <= 365:
            raise RuleViolated("the retake cool-down is 0-365 days", field="retake_cooldown_days")
        if (at_risk_threshold, retake_cooldown_days) != (
            self.at_risk_threshold,
            self.retake_cooldown_days,
        ):
            self._changed(
                at_risk_threshold=at_risk_threshold, retake_cooldown_days=retake_cooldown_days
            )

    @event(Changed)
    def _changed(self, at_risk_threshold: int, retake_cooldown_days: int) -> None:
        self.at_risk_threshold = at_risk_threshold
        self.retake_cooldown_days = retake_cooldown_days
