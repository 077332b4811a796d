"""Cursor decoding: what checking every position of a cursor costs, against decoding only.

A cursor of the time-ordered lists, (timestamp, uuid), is decoded many times in one process,
first as base64url JSON with an arity check only (how cursors were read before ADR 0024),
then with ``decode_cursor(cursor, TIMESTAMP, UUID_KEY)``. It prints a Markdown table; the
ratio is what matters, since both run in the same process a moment apart. Usage::

    .venv/bin/python scripts/bench/cursor_decode.py [--rounds 100000]
"""

from __future__ import annotations

import argparse
import base64
import platform
import timeit
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from training.core.pagination import TIMESTAMP, UUID_KEY, decode_cursor, encode_cursor


def untyped(cursor: str) -> list[Any]:
    padded = cursor + "=" * (-len(cursor) % 4)
    values = msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(values, list) or len(values) != 2:
        raise ValueError("not a cursor")
    return values


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100_000)
    rounds = parser.parse_args().rounds
    cursor = encode_cursor([datetime.now(UTC).isoformat(), str(uuid.uuid4())])
    before = timeit.timeit(lambda: untyped(cursor), number=rounds) / rounds * 1e6
    after = timeit.timeit(lambda: decode_cursor(cursor, TIMESTAMP, UUID_KEY), number=rounds)
    after = after / rounds * 1e6
    print(f"Cursor decoding, {rounds:,} rounds, Python {platform.python_version()}\n")
    print("| decoding | µs per cursor |")
    print("|---|---|")
    print(f"| base64 JSON, arity checked | {before:.2f} |")
    print(f"| typed (timestamp, uuid) | {after:.2f} |")
    print(f"\nratio typed / untyped: {after / before:.1f}")


if __name__ == "__main__":
    main()
