"""An engineer reports progress on their track: a module started, completed or skipped."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from training.core.bus import Handler, UnitOfWork
from training.core.context import ActorKind
from training.core.errors import Forbidden
from training.planning.domain.learning import LearningRecord, ModuleState


@dataclass(frozen=True)
class RecordProgress:
    curriculum_id: UUID
    key: str
    state: ModuleState
    note: str = ""


def record_progress(command: RecordProgress, uow: UnitOfWork) -> int:
    """People report their own progress; a skip needs a reason, and re-plans the track. The
    note is kept beside the event (it may name people), erased with the engineer."""
    tenant_id = uow.require_tenant()
    if uow.context.actor.kind is not ActorKind.MEMBER:
        raise Forbidden("progress is reported by the engineer, with their own sign-in")
    member_id = UUID(uow.context.actor.id)
    record = uow.get_or_add(
        LearningRecord,
        LearningRecord.create_id(tenant_id, member_id),
        lambda: LearningRecord.open(tenant_id, member_id),
    )
    note = record.progress(str(command.curriculum_id), command.key, command.state, command.note)
    if note is not None:
        uow.keep_learning_note(record, member_id, str(command.curriculum_id), command.key, note)
    return int(record.version)


HANDLERS: dict[type, Handler] = {RecordProgress: record_progress}
