"""The planner's entry points: ``plan_track`` plans a track, ``replan`` also says what changed
since the previous plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from training.planning.domain.planner.diff import diff_plans
from training.planning.domain.planner.explanation import (
    Narrator,
    deferred_modules,
    describe_planned,
)
from training.planning.domain.planner.model import (
    CandidateModule,
    Constraints,
    CurrentLevel,
    GapClosure,
    ModuleRef,
    Plan,
    PlanDiff,
    SkillGap,
    TargetLevel,
)
from training.planning.domain.planner.problem import (
    Offered,
    index_profile,
    merge_targets,
    pick_version,
    prepare,
)
from training.planning.domain.planner.search import Search, order_bundles


def plan_track(
    targets: Sequence[TargetLevel],
    current: Sequence[CurrentLevel],
    modules: Sequence[CandidateModule] | Offered,
    constraints: Constraints,
    *,
    done: frozenset[ModuleRef] = frozenset(),
    in_progress: frozenset[ModuleRef] = frozenset(),
    skill_names: Mapping[str, str] | None = None,
) -> Plan:
    """The training track that closes the most gap levels within the time budget.

    Completed modules are never planned again; their effect is already in the profile's
    levels, so they are not counted twice. Modules in progress are always kept, first, and
    their full duration counts against the budget (the time left in them is unknown, so the
    plan errs on the side of fitting); one missing from ``modules`` cannot be described
    and is left out. Prerequisites (in the same curriculum version) are done, in progress
    or planned earlier; a prerequisite with no gain of its own is planned only to unlock a
    later module, and its reason says which. ``modules`` may come ``Offered`` (sorted and
    checked once for every track planned from them).
    """
    goals = merge_targets(targets)
    profile = index_profile(current)
    in_progress = in_progress - done  # a module reported both ways is finished
    offered = modules if isinstance(modules, Offered) else Offered.of(modules)
    catalogue = offered.catalogue
    narrator = Narrator(goals, profile, skill_names)
    budget = constraints.budget_minutes
    measured = {skill: entry.level for skill, entry in profile.items()}

    by_ref: dict[ModuleRef, list[CandidateModule]] = {}
    for candidate in catalogue:
        by_ref.setdefault(candidate.ref, []).append(candidate)
    ongoing = [pick_version(by_ref[ref]) for ref in sorted(in_progress) if ref in by_ref]
    ongoing_keys = {c.ref: c for c in ongoing}
    # In progress first; among them prerequisites first, then by (curriculum id, key).
    ongoing_order = _in_progress_order(ongoing)

    levels = {skill: measured.get(skill, 0) for skill in goals}
    entries: list[tuple[CandidateModule, tuple[GapClosure, ...], bool]] = []
    for candidate in ongoing_order:
        entries.append((candidate, narrator.closures(candidate.module, levels), True))
    ongoing_minutes = sum(c.module.duration_minutes for c in ongoing)

    problem = prepare(
        offered,
        goals,
        start_levels=levels,
        se={skill: entry.se for skill, entry in profile.items()},
        excluded=done | frozenset(ongoing_keys),
        satisfied=done | in_progress,
        budget=budget - ongoing_minutes,
    )
    search = Search(problem)
    chosen = search.solve()
    for bundle in order_bundles(search, chosen):
        for j in bundle:
            candidate = problem.candidates[j]
            entries.append((candidate, narrator.closures(candidate.module, levels), False))

    planned = describe_planned(entries, narrator)
    minutes_used = sum(m.minutes for m in planned)
    deferred = deferred_modules(search, chosen, levels, narrator, budget - minutes_used)
    return Plan(
        modules=planned,
        deferred=deferred,
        remaining_gaps=tuple(
            SkillGap(skill, levels[skill], goal.level, tuple(s for _, s in goal.sources))
            for skill, goal in goals.items()
            if levels[skill] < goal.level
        ),
        minutes_used=minutes_used,
        budget_minutes=budget,
        targets=tuple(
            SkillGap(skill, measured.get(skill, 0), goal.level, tuple(s for _, s in goal.sources))
            for skill, goal in goals.items()
        ),
    )


def _in_progress_order(ongoing: Sequence[CandidateModule]) -> list[CandidateModule]:
    """Prerequisites among the modules in progress first, otherwise by (curriculum id, key)."""
    left = sorted(ongoing, key=lambda c: c.ref)
    keys = {c.ref for c in left}
    placed: set[ModuleRef] = set()
    order: list[CandidateModule] = []
    while left:
        ready = next(
            (
                c
                for c in left
                if all(
                    (c.curriculum_id, key) in placed or (c.curriculum_id, key) not in keys
                    for key in c.module.prerequisites
                )
            ),
            left[0],  # a cycle cannot happen within a version; never loop forever on one
        )
        order.append(ready)
        placed.add(ready.ref)
        left.remove(ready)
    return order


def replan(
    previous: Plan | None,
    targets: Sequence[TargetLevel],
    current: Sequence[CurrentLevel],
    modules: Sequence[CandidateModule] | Offered,
    constraints: Constraints,
    *,
    done: frozenset[ModuleRef] = frozenset(),
    in_progress: frozenset[ModuleRef] = frozenset(),
    skill_names: Mapping[str, str] | None = None,
) -> tuple[Plan, PlanDiff]:
    """A fresh plan for the new inputs and how it differs from ``previous``.

    The new plan does not depend on the previous one: the same inputs always give the same
    plan, whatever was planned before, so a plan can be recomputed from events at any time.
    """
    plan = plan_track(
        targets,
        current,
        modules,
        constraints,
        done=done,
        in_progress=in_progress,
        skill_names=skill_names,
    )
    return plan, diff_plans(previous, plan, done=done)
