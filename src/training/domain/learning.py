"""An engineer's own record of the modules they start, complete or skip on their track."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from training.domain.base import TrainingAggregate, stable_id
from training.domain.errors import InvalidTransition, RuleViolated


class ModuleState(StrEnum):
    STARTED = "started"
    COMPLETED = "completed"
    SKIPPED = "skipped"


class LearningRecord(TrainingAggregate):
    TOPIC = "training.learning:LearningRecord"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.learning:LearningRecord.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.learning:LearningRecord.Created"

    class Opened(Created):
        TOPIC = "training.learning:LearningRecord.Opened"
        member_id: UUID

    class ModuleProgressed(Event):
        TOPIC = "training.learning:LearningRecord.ModuleProgressed"
        member_id: UUID
        curriculum_id: str
        key: str
        state: ModuleState
        note: str

    @staticmethod
    def create_id(tenant_id: UUID, member_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "learning-record", member_id)

    @classmethod
    def open(cls, tenant_id: UUID, member_id: UUID) -> LearningRecord:
        return cls(member_id=member_id, tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, member_id: UUID, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.states: dict[tuple[str, str], ModuleState] = {}

    def progress(self, curriculum_id: str, key: str, state: ModuleState, note: str) -> None:
        current = self.states.get((curriculum_id, key))
        if current is ModuleState.COMPLETED:
            raise InvalidTransition("the module is completed")
        if current is state:
            return  # the same report twice changes nothing
        if state is ModuleState.SKIPPED and not note.strip():
            raise RuleViolated("say why the module is skipped", field="reason")
        self._progressed(
            member_id=self.member_id,
            curriculum_id=curriculum_id,
            key=key,
            state=state,
            note=note.strip()[:500],
        )

    @event(ModuleProgressed)
    def _progressed(
        self, member_id: UUID, curriculum_id: str, key: str, state: ModuleState, note: str
    ) -> None:
        self.states[(curriculum_id, key)] = state
