"""What changed between two plans of the same engineer, and why modules left."""

from __future__ import annotations

from collections.abc import Sequence

from training.planning.domain.planner.explanation import quoted
from training.planning.domain.planner.model import ModuleRef, Plan, PlanDiff, PlannedModule


def diff_plans(
    old: Plan | None, new: Plan, *, done: frozenset[ModuleRef] = frozenset()
) -> PlanDiff:
    """What changed between two plans of the same engineer, and why modules left.

    A removed module's reason comes from comparing what it closed in the old plan with the
    new plan: "completed" when it is in ``done``; "no longer fits the budget" when the new
    plan defers it; "target removed" when none of its skills is targeted any more; "gap
    already closed by other evidence" when the new profile already reaches what it would
    have; otherwise "superseded by" the new modules that close its skills, or "no longer
    available" when none does (it left the tenant's curricula or lost a prerequisite).
    "reordered" lists only the modules that moved relative to the others both plans keep
    (those outside a longest run kept in the same order), not every module whose number
    shifted because another one came or went.
    """
    if old is None:
        return PlanDiff(
            added=tuple((m.ref, m.reason) for m in new.modules), removed=(), reordered=()
        )
    old_refs = {m.ref: m for m in old.modules}
    new_refs = {m.ref: m for m in new.modules}
    added = tuple((m.ref, m.reason) for m in new.modules if m.ref not in old_refs)
    removed = tuple(
        (m.ref, _why_removed(m, new, done)) for m in old.modules if m.ref not in new_refs
    )
    kept = [m for m in new.modules if m.ref in old_refs]
    old_positions = [old_refs[m.ref].order for m in kept]
    staying = _longest_increasing(old_positions)
    reordered = tuple(
        (m.ref, old_refs[m.ref].order, m.order)
        for index, m in enumerate(kept)
        if index not in staying
    )
    return PlanDiff(added=added, removed=removed, reordered=reordered)


def _why_removed(module: PlannedModule, new: Plan, done: frozenset[ModuleRef]) -> str:
    if module.ref in done:
        return "completed"
    if any(d.ref == module.ref for d in new.deferred):
        return "no longer fits the budget"
    if not module.closes:
        return "no longer needed as a prerequisite"
    targeted = {gap.skill: gap for gap in new.targets}
    still_open = [
        c
        for c in module.closes
        if c.skill in targeted
        and targeted[c.skill].current < min(c.to_level, targeted[c.skill].target)
    ]
    if not still_open:
        if all(c.skill not in targeted for c in module.closes):
            return "target removed"
        return "gap already closed by other evidence"
    skills = {c.skill for c in still_open}
    successors = [
        m.key
        for m in new.modules
        if m.ref != module.ref and any(c.skill in skills for c in m.closes)
    ]
    if successors:
        return f"superseded by {quoted(successors)}"
    return "no longer available"


def _longest_increasing(values: Sequence[int]) -> set[int]:
    """Indices of one longest strictly increasing subsequence (the earliest one on ties)."""
    if not values:
        return set()
    length = [1] * len(values)
    previous = [-1] * len(values)
    for i in range(len(values)):
        for j in range(i):
            if values[j] < values[i] and length[j] + 1 > length[i]:
                length[i] = length[j] + 1
                previous[i] = j
    end = max(range(len(values)), key=lambda i: (length[i], -i))
    chain: set[int] = set()
    while end != -1:
        chain.add(end)
        end = previous[end]
    return chain
