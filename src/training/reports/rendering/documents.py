"""The data of the three PDF reports: plain, immutable values the caller builds from read models.

Names (people, teams, tenants) come from personal data and are printed as given: an erased
person arrives as "(erased)" or whatever the caller chose. Group figures are guarded here as
well as by the caller: a level distribution or a skill change over fewer than
``MIN_GROUP`` people is refused, so a caller's mistake cannot print it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from training.reports.domain.effectiveness import (
    MIN_GROUP,
    SkillChange,
    SuppressedGroup,
    suppressed_reason,
)
from training.reports.rendering.charts import MAX_LEVEL

LEVELS: Final = tuple(range(1, MAX_LEVEL + 1))


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _window(value: tuple[date, date], name: str) -> None:
    if value[1] < value[0]:
        raise ValueError(f"{name} ends before it starts")


# -- individual ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileRow:
    skill: str
    level: int  # 0..7; 0 = not yet at level 1
    se_levels: float  # standard error of the level, in levels (converted from logits)
    target: int | None
    gap: int | None  # levels still to close: max(target - level, 0); None without a target


@dataclass(frozen=True, slots=True)
class PlanItem:
    order: int
    title: str
    minutes: int
    due_date: date | None
    reason: str  # why the planner chose it, e.g. "closes Kubernetes 2→3"


@dataclass(frozen=True, slots=True)
class IndividualReport:
    tenant_name: str
    member_name: str
    job_title: str | None
    team: str | None
    generated_at: datetime
    profile: tuple[ProfileRow, ...]
    plan: tuple[PlanItem, ...]
    changes: tuple[str, ...]  # "added 'k8s-basics': closes Kubernetes 2→3", ...
    plan_version: int
    previous_plan_version: int | None
    # The language the person chose (their profile); English when none.
    language: str = "en"

    def __post_init__(self) -> None:
        _aware(self.generated_at, "generated_at")


# -- cohort ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RosterRow:
    name: str
    status: str
    percent_complete: float  # 0..100
    at_risk: bool


@dataclass(frozen=True, slots=True)
class SessionRow:
    title: str
    starts_at: datetime
    attendance_rate: float | None  # 0..1; None before attendance is imported
    interaction_index: float | None  # interactions per minute
    content_satisfaction: float | None  # 1..5


@dataclass(frozen=True, slots=True)
class LevelDistribution:
    """How many people of the group are at each level 1..7 of a skill."""

    skill: str
    counts: tuple[int, ...]  # counts[i] people at level i + 1

    def __post_init__(self) -> None:
        if len(self.counts) != len(LEVELS) or any(c < 0 for c in self.counts):
            raise ValueError(f"counts must be {len(LEVELS)} non-negative numbers")

    @property
    def total(self) -> int:
        return sum(self.counts)


def level_distribution(
    skill: str, levels: Iterable[int], minimum_group: int = MIN_GROUP
) -> LevelDistribution | SuppressedGroup:
    """Counts per level of people's levels, or suppressed under ``minimum_group`` people."""
    counts = [0] * len(LEVELS)
    for level in levels:
        if level not in LEVELS:
            raise ValueError(f"level must be within 1..{MAX_LEVEL}: {level!r}")
        counts[level - 1] += 1
    if sum(counts) < minimum_group:
        return SuppressedGroup(skill, suppressed_reason(minimum_group))
    return LevelDistribution(skill, tuple(counts))


@dataclass(frozen=True, slots=True)
class CohortReport:
    tenant_name: str
    cohort_name: str
    curriculum_title: str
    window: tuple[date, date]  # first and last day
    roster: tuple[RosterRow, ...]
    sessions: tuple[SessionRow, ...]
    skill_distribution: tuple[LevelDistribution | SuppressedGroup, ...]
    generated_at: datetime

    def __post_init__(self) -> None:
        _aware(self.generated_at, "generated_at")
        _window(self.window, "window")
        for entry in self.skill_distribution:
            if isinstance(entry, LevelDistribution) and entry.total < MIN_GROUP:
                raise ValueError(
                    f"the distribution of {entry.skill!r} covers {suppressed_reason()}; "
                    "pass a SuppressedGroup"
                )


# -- effectiveness -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompletionRate:
    label: str  # a cohort or a curriculum
    enrolled: int
    completed: int

    def __post_init__(self) -> None:
        if not 0 <= self.completed <= self.enrolled:
            raise ValueError("completed must be within 0..enrolled")

    @property
    def rate(self) -> float | None:
        """completed / enrolled, 0..1; None when nobody is enrolled."""
        return self.completed / self.enrolled if self.enrolled else None


@dataclass(frozen=True, slots=True)
class EffectivenessReport:
    tenant_name: str
    period: tuple[date, date]  # first and last day
    changes: tuple[SkillChange | SuppressedGroup, ...]
    completion_rates: tuple[CompletionRate, ...]
    generated_at: datetime

    def __post_init__(self) -> None:
        _aware(self.generated_at, "generated_at")
        _window(self.period, "period")
        for entry in self.changes:
            if isinstance(entry, SkillChange) and entry.n < MIN_GROUP:
                raise ValueError(
                    f"the change of {entry.skill!r} covers {suppressed_reason()}; "
                    "pass a SuppressedGroup"
                )
