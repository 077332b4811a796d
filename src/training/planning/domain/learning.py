"""An engineer's own record of the modules they start, complete or skip on their track.

Why an engineer skipped a module is free text that may name people (ADR 0020): it is kept
beside the events, erased with the engineer, not in ``ModuleProgressed``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import InvalidTransition, RuleViolated

MAX_NOTE = 500


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
        """The note that came with the report is kept beside the event."""

        TOPIC = "training.learning:LearningRecord.ModuleProgressed"
        class_version = 2
        member_id: UUID
        curriculum_id: str
        key: str
        state: ModuleState

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.pop("note", None)

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

    def progress(self, curriculum_id: str, key: str, state: ModuleState, note: str) -> str | None:
        """Records the report; answers its note to keep beside the event (None: nothing was
        recorded, or no note came with it)."""
        current = self.states.get((curriculum_id, key))
        if current is ModuleState.COMPLETED:
            raise InvalidTransition("the module is completed")
        if current is state:
            return None  # the same report twice changes nothing
        cleaned = note.strip()[:MAX_NOTE]
        if state is ModuleState.SKIPPED and not cleaned:
            raise RuleViolated("say why the module is skipped", field="reason")
        self._progressed(
            member_id=self.member_id, curriculum_id=curriculum_id, key=key, state=state
        )
        return cleaned or None

    @event(ModuleProgressed)
    def _progressed(
        self, member_id: UUID, curriculum_id: str, key: str, state: ModuleState
    ) -> None:
        self.states[(curriculum_id, key)] = state
