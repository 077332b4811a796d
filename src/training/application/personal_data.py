"""Personal data travels beside events, never inside them.

A handler hands names and emails to the unit of work; the event store's recorder writes
them to the ``people`` table in the same transaction as the events, so the two never
disagree, and erasing a person deletes the row while the events stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class PersonalData:
    """``None`` keeps what is stored (a new member always comes with a display name)."""

    display_name: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class PersonalDataChange:
    """``data=None`` erases what is held about the member."""

    member_id: UUID
    tenant_id: UUID
    data: PersonalData | None
