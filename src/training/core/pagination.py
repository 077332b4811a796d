"""Cursor pagination with a stable order.

A cursor is the sort key of the last item of a page, opaque to clients (base64url JSON).
The next page is ``WHERE (key columns) > (cursor values) ORDER BY key columns LIMIT n``: it
neither skips nor repeats rows when others are inserted between two requests.

A cursor comes back from the client, so it is input like any other: ``decode_cursor`` takes
the kind of each position of the list's key (``TEXT``, ``INT``, ``BIGINT``, ``UUID_KEY``,
``TIMESTAMP``, ``DATE``) and refuses a cursor whose values are not of those kinds, so that
nothing but a well-typed value of the right range ever reaches SQL (ADR 0024).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

REFUSED = "the cursor is not one this API returned"


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class KeyKind:
    """What one position of a list's sort key holds; ``parse`` answers None to refuse."""

    name: str
    parse: Callable[[Any], Any]


# The longest text key a list sorts by (external ids, slugs, codes, client ids are shorter).
MAX_TEXT_KEY = 256
_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]{8,15}(Z|[+-][0-9:]{2,8})")


def _text(value: Any) -> str | None:
    # PostgreSQL text cannot hold NUL.
    if isinstance(value, str) and len(value) <= MAX_TEXT_KEY and "\x00" not in value:
        return value
    return None


def _integer(low: int, high: int) -> Callable[[Any], int | None]:
    def parse(value: Any) -> int | None:
        # bool is an int to Python, never a key.
        return value if type(value) is int and low <= value <= high else None

    return parse


def _uuid(value: Any) -> UUID | None:
    if isinstance(value, str) and _UUID_TEXT.fullmatch(value):
        return UUID(value)
    return None


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _TIMESTAMP_TEXT.fullmatch(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _date(value: Any) -> date | None:
    if not isinstance(value, str) or not _DATE_TEXT.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


TEXT = KeyKind("text", _text)
INT = KeyKind("int", _integer(0, 2**31 - 1))  # an ``integer`` column
BIGINT = KeyKind("bigint", _integer(0, 2**63 - 1))  # a ``bigint`` column
UUID_KEY = KeyKind("uuid", _uuid)
TIMESTAMP = KeyKind("timestamp", _timestamp)  # ISO 8601 with its offset, as encoded here
DATE = KeyKind("date", _date)  # ISO 8601 calendar date


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, *kinds: KeyKind) -> list[Any]:
    """The key a cursor names, one value per kind, each parsed (uuids as ``UUID``, timestamps
    as ``datetime``); ``InvalidCursor`` for anything this API would not have written."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, msgspec.DecodeError, ValueError, RecursionError):
        # ValueError covers bytes that are not UTF-8 (UnicodeDecodeError).
        raise InvalidCursor(REFUSED) from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise InvalidCursor(REFUSED)
    parsed = [kind.parse(value) for kind, value in zip(kinds, values, strict=True)]
    if any(value is None for value in parsed):
        raise InvalidCursor(REFUSED)
    return parsed


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_of(rows: list[T], limit: int, key: Callable[[T], Sequence[Any]]) -> Page[T]:
    """A page from ``limit + 1`` fetched rows: the extra row only says there is a next page."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, encode_cursor(key(rows[-1])))
    return Page(rows, None)


def page_after(
    rows: Sequence[T],
    *,
    limit: int,
    cursor: str | None,
    key: Callable[[T], Sequence[Any]],
    kinds: Sequence[KeyKind],
) -> Page[T]:
    """A page of a list held in memory (a few hundred rows read from an aggregate), in the
    order of ``key``, after the row a cursor names."""
    ordered = sorted(rows, key=lambda row: list(key(row)))
    if cursor is not None:
        after = decode_cursor(cursor, *kinds)
        ordered = [row for row in ordered if list(key(row)) > after]
    return page_of(ordered[: limit + 1], limit, key)
