"""What the planner is given and what it answers: plain values.

The model. A skill's gap is ``target - current`` levels. A module brings each skill it
targets up to ``min(module level, target level)``, so after a set of modules a skill stands at
the highest level any of them reaches (never above the target, never below where it was):
two modules teaching the same level do not add up. The value of a plan is the number of gap
levels it closes; the objective is the largest value within the budget, then the fewest
minutes, then the most modules of the cohort's pinned (preferred) curriculum versions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from training.core.errors import RuleViolated
from training.curricula.domain import ModuleSpec

ModuleRef = tuple[str, str]  # (curriculum id, module key): the same module across versions

MINUTES_PER_HOUR = 60
DAYS_PER_WEEK = 7


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetLevel:
    """A level the engineer should reach in a skill, and who asks for it."""

    skill: str
    level: int
    source: str  # "role profile Backend Engineer L3", "goal G2: Kubernetes 4 by 2027-03-01"


@dataclass(frozen=True, slots=True)
class CurrentLevel:
    """The skill profile's level and its standard error (in logits) for one skill."""

    skill: str
    level: int
    se: float


@dataclass(frozen=True, slots=True)
class CandidateModule:
    """A module the tenant offers, in one published version of its curriculum."""

    curriculum_id: str
    curriculum_version: int
    module: ModuleSpec
    preferred: bool = False  # the cohort's pinned version of the curriculum

    @property
    def ref(self) -> ModuleRef:
        return (self.curriculum_id, self.module.key)


@dataclass(frozen=True, slots=True)
class Constraints:
    """The time the engineer has for training, from ``start`` to ``deadline``."""

    weekly_hours: float
    start: date
    deadline: date

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weekly_hours) and self.weekly_hours >= 0):
            raise RuleViolated("weekly hours are a number of 0 or more", field="weekly_hours")
        if self.deadline < self.start:
            raise RuleViolated("the deadline is on or after the start", field="deadline")

    @property
    def budget_minutes(self) -> int:
        """weekly hours x 60 x weeks (fractional), rounded down: a plan must fit, not nearly."""
        # Through the decimal text of the float: 0.7 h is 42 minutes, while the binary value
        # 0.6999... would round down to 41.
        hours = Fraction(repr(float(self.weekly_hours)))
        days = (self.deadline - self.start).days
        return math.floor(hours * MINUTES_PER_HOUR * days / DAYS_PER_WEEK)


# --- outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GapClosure:
    """Levels of one skill a module closes, and the targets that ask for them."""

    skill: str
    from_level: int
    to_level: int
    because: str  # the sources that require more than ``from_level``, joined with " and "


@dataclass(frozen=True, slots=True)
class PlannedModule:
    curriculum_id: str
    curriculum_version: int
    key: str
    title: str
    minutes: int
    order: int  # 1-based position in the track
    reason: str
    closes: tuple[GapClosure, ...]
    in_progress: bool = False
    unlocks: tuple[str, ...] = ()  # keys of later planned modules that require this one

    @property
    def ref(self) -> ModuleRef:
        return (self.curriculum_id, self.key)


@dataclass(frozen=True, slots=True)
class DeferredModule:
    """A module that would close a gap but does not fit in the budget."""

    curriculum_id: str
    curriculum_version: int
    key: str
    title: str
    minutes: int
    closes: tuple[GapClosure, ...]  # what it would close after the planned modules
    requires: tuple[str, ...]  # keys of prerequisites it would bring along (not planned yet)
    minutes_over_budget: int
    reason: str

    @property
    def ref(self) -> ModuleRef:
        return (self.curriculum_id, self.key)


@dataclass(frozen=True, slots=True)
class SkillGap:
    """A targeted skill: its level, its target and the sources of the target.

    In ``Plan.remaining_gaps`` the level is the one the plan reaches; in ``Plan.targets`` it
    is the profile's level before any module.
    """

    skill: str
    current: int
    target: int
    sources: tuple[str, ...]  # highest level asked first

    @property
    def size(self) -> int:
        return max(0, self.target - self.current)


@dataclass(frozen=True, slots=True)
class Plan:
    modules: tuple[PlannedModule, ...]
    deferred: tuple[DeferredModule, ...]
    remaining_gaps: tuple[SkillGap, ...]
    minutes_used: int  # may exceed the budget only through modules already in progress
    budget_minutes: int
    # Every targeted skill as it stood when planned, closed ones included, so a later
    # ``diff_plans`` can tell a removed target from a gap that closed.
    targets: tuple[SkillGap, ...] = ()

    @property
    def gap_closed(self) -> int:
        return sum(c.to_level - c.from_level for m in self.modules for c in m.closes)


@dataclass(frozen=True, slots=True)
class PlanDiff:
    added: tuple[tuple[ModuleRef, str], ...]  # (ref, reason in the new plan)
    removed: tuple[tuple[ModuleRef, str], ...]  # (ref, why it left)
    reordered: tuple[tuple[ModuleRef, int, int], ...]  # (ref, old order, new order)
