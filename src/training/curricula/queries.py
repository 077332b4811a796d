"""What other contexts may ask of curricula: questions over its aggregates, read inside their unit
of work."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from training.core.application import TrainingApplication
from training.core.errors import NotFound
from training.curricula.domain import Curriculum


def visible_curriculum(
    app: TrainingApplication, tenant_id: UUID | None, curriculum_id: UUID
) -> Curriculum:
    """A curriculum ``tenant_id`` may read: its own or the catalogue's (the operator: the
    catalogue only). Read from the event store; the caller must not save it."""
    try:
        curriculum: object = app.repository.get(curriculum_id)
    except AggregateNotFoundError:
        raise NotFound(f"Curriculum {curriculum_id} not found") from None
    if not isinstance(curriculum, Curriculum) or curriculum.tenant_id not in (None, tenant_id):
        raise NotFound(f"Curriculum {curriculum_id} not found")
    return curriculum
