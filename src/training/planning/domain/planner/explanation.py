"""The reasons a person can check: what a planned module closes and who asks for it, what it
unlocks, and what a deferred module would close and how far it is over the budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from training.curricula.domain import ModuleSpec
from training.planning.domain.planner.model import (
    CandidateModule,
    CurrentLevel,
    DeferredModule,
    GapClosure,
    PlannedModule,
)
from training.planning.domain.planner.problem import MergedTarget
from training.planning.domain.planner.search import Search


class Narrator:
    """Turns levels and sources into the sentences of reasons."""

    def __init__(
        self,
        goals: Mapping[str, MergedTarget],
        profile: Mapping[str, CurrentLevel],
        skill_names: Mapping[str, str] | None,
    ) -> None:
        self.goals = goals
        self.profile = profile
        self.names = skill_names or {}

    def name(self, skill: str) -> str:
        return self.names.get(skill, skill)

    def closures(self, module: ModuleSpec, levels: dict[str, int]) -> tuple[GapClosure, ...]:
        """What the module closes at ``levels``, which it then raises."""
        found = []
        for target in sorted(module.targets, key=lambda t: t.skill):
            goal = self.goals.get(target.skill)
            if goal is None:
                continue
            before = levels.get(target.skill, 0)
            after = min(target.level, goal.level)
            if after <= before:
                continue
            because = " and ".join(source for level, source in goal.sources if level > before)
            found.append(GapClosure(target.skill, before, after, because))
            levels[target.skill] = after
        return tuple(found)

    def evidence(self, closure: GapClosure) -> str:
        entry = self.profile.get(closure.skill)
        if entry is None:
            return " (no evidence of this skill yet)" if closure.from_level == 0 else ""
        if closure.from_level != entry.level:
            return ""  # the level an earlier planned module reaches, not a measurement
        return f" (level {entry.level} measured with SE {entry.se:.2f})"

    def planned(self, closes: Sequence[GapClosure]) -> list[str]:
        return [
            f"closes {self.name(c.skill)} {c.from_level}→{c.to_level}, required by {c.because}"
            f"{self.evidence(c)}"
            for c in closes
        ]

    def would_close(self, closes: Sequence[GapClosure]) -> str:
        return " and ".join(
            f"{self.name(c.skill)} {c.from_level}→{c.to_level} ({c.because})" for c in closes
        )


def quoted(keys: Iterable[str]) -> str:
    return " and ".join(f"'{key}'" for key in keys)


def describe_planned(
    entries: Sequence[tuple[CandidateModule, tuple[GapClosure, ...], bool]],
    narrator: Narrator,
) -> tuple[PlannedModule, ...]:
    planned: list[PlannedModule] = []
    for order, (candidate, closes, ongoing) in enumerate(entries, start=1):
        later = entries[order:]
        unlocks = tuple(
            other.module.key
            for other, _, _ in later
            if other.curriculum_id == candidate.curriculum_id
            and candidate.module.key in other.module.prerequisites
        )
        parts = narrator.planned(closes)
        if unlocks:
            parts.append(("also " if parts else "") + f"prerequisite of {quoted(unlocks)}")
        if ongoing:
            parts.insert(0, "in progress")
        planned.append(
            PlannedModule(
                curriculum_id=candidate.curriculum_id,
                curriculum_version=candidate.curriculum_version,
                key=candidate.module.key,
                title=candidate.module.title,
                minutes=candidate.module.duration_minutes,
                order=order,
                reason="; ".join(parts),
                closes=closes,
                in_progress=ongoing,
                unlocks=unlocks,
            )
        )
    return tuple(planned)


def deferred_modules(
    search: Search,
    chosen: Sequence[int],
    levels: Mapping[str, int],
    narrator: Narrator,
    left: int,
) -> tuple[DeferredModule, ...]:
    """Modules that would still close a gap after the plan, at most one version each."""
    p = search.p
    taken = {p.ref_id[j] for j in chosen}
    offers: dict[int, tuple[tuple[int, int, bool, int], DeferredModule]] = {}
    for head in p.heads:
        if p.ref_id[head] in taken:
            continue
        members = [j for j in p.bundle[head] if p.ref_id[j] not in taken]
        trial = dict(levels)
        for j in members[:-1]:
            narrator.closures(p.candidates[j].module, trial)
        candidate = p.candidates[head]
        closes = narrator.closures(candidate.module, trial)
        if not closes:
            continue  # its prerequisites would close the gap, and they are listed themselves
        cost = sum(p.cost[j] for j in members)
        requires = tuple(p.candidates[j].module.key for j in members[:-1])
        over = cost - left
        with_prerequisites = (
            f" with its prerequisites {quoted(requires)} ({cost} min in all)" if requires else ""
        )
        reason = (
            f"would close {narrator.would_close(closes)}{with_prerequisites} "
            f"but needs {over} min beyond the budget"
        )
        gain = sum(c.to_level - c.from_level for c in closes)
        rank = (-gain, over, not candidate.preferred, head)
        deferred = DeferredModule(
            curriculum_id=candidate.curriculum_id,
            curriculum_version=candidate.curriculum_version,
            key=candidate.module.key,
            title=candidate.module.title,
            minutes=candidate.module.duration_minutes,
            closes=closes,
            requires=requires,
            minutes_over_budget=over,
            reason=reason,
        )
        ref = p.ref_id[head]
        if ref not in offers or rank < offers[ref][0]:
            offers[ref] = (rank, deferred)
    return tuple(deferred for _, deferred in sorted(offers.values(), key=lambda o: o[0]))
