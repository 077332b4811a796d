"""Cursor pagination with a stable order.

A cursor is the sort key of the last item of a page, opaque to clients (base64url JSON).
The next page is ``WHERE (key columns) > (cursor values) ORDER BY key columns LIMIT n``: it
neither skips nor repeats rows when others are inserted between two requests.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class InvalidCursor(ValueError):
    pass


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(list(values))).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, msgspec.DecodeError, ValueError):
        raise InvalidCursor("the cursor is not one this API returned") from None
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidCursor("the cursor is not one this API returned")
    if not all(isinstance(v, str | int | float) for v in values):
        raise InvalidCursor("the cursor is not one this API returned")
    return values


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
