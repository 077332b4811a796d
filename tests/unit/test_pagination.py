from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from training.core.pagination import (
    BIGINT,
    DATE,
    INT,
    TEXT,
    TIMESTAMP,
    UUID_KEY,
    InvalidCursor,
    decode_cursor,
    encode_cursor,
    page_after,
    page_of,
)

AT = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
ID = UUID("6f1c2a3b-0000-4000-8000-000000000001")


def forged(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def test_a_cursor_round_trips_as_typed_values() -> None:
    cursor = encode_cursor([AT.isoformat(), str(ID), 7])
    assert decode_cursor(cursor, TIMESTAMP, UUID_KEY, INT) == [AT, ID, 7]
    assert decode_cursor(encode_cursor(["tc_abc"]), TEXT) == ["tc_abc"]
    assert decode_cursor(encode_cursor([2**63 - 1]), BIGINT) == [2**63 - 1]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        "e30",  # {}
        encode_cursor(["a"]),  # one value short
        encode_cursor(["a", "b", "c"]),  # one too many
        encode_cursor([["nested"], 1]),
        base64.urlsafe_b64encode(b'["\xff"]').decode(),  # not UTF-8
        base64.urlsafe_b64encode(b"[" * 2000 + b"]" * 2000).decode(),
    ],
)
def test_a_cursor_of_another_shape_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, TEXT, TEXT)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (TEXT, 1),
        (TEXT, None),
        (TEXT, "x" * 257),
        (TEXT, "a\u0000b"),  # PostgreSQL text holds no NUL
        (INT, "1"),
        (INT, True),
        (INT, 1.0),
        (INT, -1),
        (INT, 2**31),  # an integer column
        (BIGINT, 2**63),
        (BIGINT, int("9" * 30)),
        (UUID_KEY, "zzz"),
        (UUID_KEY, 1),
        (UUID_KEY, "{6f1c2a3b-0000-4000-8000-000000000001}"),
        (TIMESTAMP, "zzz"),
        (TIMESTAMP, "2026-11-22T10:00:00"),  # no offset
        (TIMESTAMP, "2026-13-45T10:00:00+00:00"),
        (TIMESTAMP, 1_700_000_000),
        (DATE, "2026-02-30"),
        (DATE, "2026-11-22T10:00:00+00:00"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused(kind: Any, value: Any) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(forged([value]), kind)


def test_a_page_knows_whether_more_follow() -> None:
    rows = list(range(5))
    full = page_of(rows, 4, lambda r: [r])
    assert full.items == [0, 1, 2, 3]
    assert decode_cursor(full.next_cursor or "", INT) == [3]
    last = page_of(rows[:3], 4, lambda r: [r])
    assert last.next_cursor is None


def test_a_list_held_in_memory_pages_in_key_order_without_repeats() -> None:
    rows = ["d", "b", "a", "e", "c"]
    seen: list[str] = []
    cursor = None
    while True:
        page = page_after(rows, limit=2, cursor=cursor, key=lambda r: [r], kinds=[TEXT])
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["a", "b", "c", "d", "e"]
    with pytest.raises(InvalidCursor):
        page_after(rows, limit=2, cursor=encode_cursor([1]), key=lambda r: [r], kinds=[TEXT])
