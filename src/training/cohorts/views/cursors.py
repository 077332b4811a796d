"""The cursors of the cohorts' lists: by time (cohorts by scheduling, sessions by start) or by
arrival in a cohort."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from training.core.pagination import BIGINT, TIMESTAMP, UUID_KEY, InvalidCursor, decode_cursor


def after_time(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The (timestamp, id) a cursor of the time-ordered queries names."""
    if cursor is None:
        return None
    values = decode_cursor(cursor, TIMESTAMP, UUID_KEY)
    refused = InvalidCursor("the cursor is not one this API returned")
    try:
        at = datetime.fromisoformat(str(values[0]))
        key = UUID(str(values[1]))
    except ValueError:
        raise refused from None
    if at.tzinfo is None:
        raise refused
    return at, key


def after_position(cursor: str | None) -> int | None:
    """The arrival position in a cohort a cursor of the arrival-ordered queries names."""
    if cursor is None:
        return None
    value = decode_cursor(cursor, BIGINT)[0]
    if type(value) is not int or not 0 <= value < 2**62:
        raise InvalidCursor("the cursor is not one this API returned")
    return value


def time_key(at: datetime, key: UUID) -> list[Any]:
    """The cursor of a row of a time-ordered query: its timestamp and id."""
    return [at.isoformat(), str(key)]
