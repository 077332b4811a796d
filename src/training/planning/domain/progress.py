"""How far a person is behind their own plan, for managers' at-risk flags."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

DONE = frozenset({"completed", "skipped"})


@dataclass(frozen=True)
class PlannedModule:
    minutes: int
    due_on: date
    state: str


def points_behind(modules: Iterable[PlannedModule], today: date) -> int:
    """Percentage points of the plan's learning time that were due by ``today`` and are not
    done (completed or skipped): 0 when on schedule or ahead, or with nothing planned."""
    planned = list(modules)
    total = sum(m.minutes for m in planned)
    if total <= 0:
        return 0
    due = sum(m.minutes for m in planned if m.due_on <= today)
    done = sum(m.minutes for m in planned if m.state in DONE)
    return max(0, round(100 * (due - done) / total))


def at_risk(modules: Iterable[PlannedModule], today: date, threshold: int) -> bool:
    """Behind by more than the tenant's at-risk threshold (percentage points), as a cohort's
    progress counts it."""
    return points_behind(modules, today) > threshold
