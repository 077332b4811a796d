"""Everything the event store holds about one member, for a data-subject export."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from training.core.application import TrainingApplication
from training.core.errors import NotFound
from training.people.domain.members import Member


def export_member(
    app: TrainingApplication, tenant_id: UUID, member_id: UUID
) -> list[dict[str, Any]]:
    """The member's own history, event by event, with who did what and when."""
    try:
        member: object = app.repository.get(member_id)
    except AggregateNotFoundError:
        raise NotFound(f"member {member_id} not found") from None
    if not isinstance(member, Member) or member.tenant_id != tenant_id:
        raise NotFound(f"member {member_id} not found")
    history = []
    for event in app.events.get(member_id):
        data = {
            f.name: getattr(event, f.name)
            for f in dataclasses.fields(event)  # type: ignore[arg-type]
            if f.name not in ("originator_id", "originator_topic")
        }
        history.append({"type": get_topic(type(event)), **data})
    return history
