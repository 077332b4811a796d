"""What the pages' forms share: the version a form was shown at, and a list of targets
written one a line."""

from __future__ import annotations

import re
from typing import Any

TARGET_LINE = re.compile(r"^\s*([^\s:=]+)\s*[:=]\s*([0-9]{1,2})\s*$")
MAX_TARGET_LINES = 200


WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def whole_number(value: str) -> bool:
    """``value`` is a whole number a form may send (ASCII digits, at most 18 of them)."""
    return WHOLE_NUMBER.fullmatch(value) is not None


def form_version(form: Any) -> int | None:
    """The version the form was shown at: a change made since refuses it (as ``If-Match``)."""
    value = str(form.get("version", ""))
    return int(value) if whole_number(value) else None


def parse_targets(written: str) -> list[tuple[str, int]] | None:
    """``code: level`` pairs, one a line (blank lines skipped), or None when a line is not
    one; the codes and levels are checked where they are used."""
    pairs = []
    lines = [line for line in written.splitlines() if line.strip()]
    if len(lines) > MAX_TARGET_LINES:
        return None
    for line in lines:
        found = TARGET_LINE.match(line)
        if found is None:
            return None
        pairs.append((found.group(1).lower(), int(found.group(2))))
    return pairs


def written_targets(targets: Any) -> str:
    """Targets (with ``skill`` and ``level``) as a form shows them, one a line."""
    return "\n".join(f"{target.skill}: {target.level}" for target in targets)
