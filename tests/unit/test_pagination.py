from __future__ import annotations

import pytest

from training.projections.pagination import InvalidCursor, decode_cursor, encode_cursor, page_of


def test_a_cursor_round_trips() -> None:
    cursor = encode_cursor(["2026-11-22T10:00:00+00:00", "tc_abc"])
    assert decode_cursor(cursor, 2) == ["2026-11-22T10:00:00+00:00", "tc_abc"]


@pytest.mark.parametrize(
    "cursor", ["", "%%%", encode_cursor(["a"]), "e30", encode_cursor([["nested"], 1])]
)
def test_a_foreign_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, 2)


def test_a_page_knows_whether_more_follow() -> None:
    rows = list(range(5))
    full = page_of(rows, 4, lambda r: [r])
    assert full.items == [0, 1, 2, 3]
    assert decode_cursor(full.next_cursor or "", 1) == [3]
    last = page_of(rows[:3], 4, lambda r: [r])
    assert last.next_cursor is None
