"""Preparing the problem: the inputs checked, merged into one target per skill, and numbered
for the search (candidates, skills and levels as integers; every module with the bundle of
prerequisites it needs).

The candidates are sorted by (curriculum id, key, version) before anything else, so the
same inputs in any order give the same plan.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from training.core.errors import RuleViolated
from training.planning.domain.planner.model import (
    CandidateModule,
    CurrentLevel,
    ModuleRef,
    TargetLevel,
)
from training.skills.domain import check_level

UNKNOWN_SE = math.inf  # a skill missing from the profile: nothing is known about it


@dataclass(frozen=True, slots=True)
class MergedTarget:
    level: int
    sources: tuple[tuple[int, str], ...]  # (level asked, source), highest first


def merge_targets(targets: Iterable[TargetLevel]) -> dict[str, MergedTarget]:
    """One target per skill: the highest level asked, with every source kept for the reason."""
    asked: dict[str, set[tuple[int, str]]] = {}
    for index, target in enumerate(targets):
        check_level(target.level, f"targets[{index}].level")
        source = target.source.strip()
        if not source:
            raise RuleViolated("say who asks for the target", field=f"targets[{index}].source")
        asked.setdefault(target.skill, set()).add((target.level, source))
    return {
        skill: MergedTarget(
            level=max(level for level, _ in pairs),
            sources=tuple(sorted(pairs, key=lambda pair: (-pair[0], pair[1]))),
        )
        for skill, pairs in sorted(asked.items())
    }


def index_profile(current: Iterable[CurrentLevel]) -> dict[str, CurrentLevel]:
    known: dict[str, CurrentLevel] = {}
    for index, entry in enumerate(current):
        if entry.skill in known:
            raise RuleViolated(
                f"the skill {entry.skill!r} appears twice", field=f"current[{index}].skill"
            )
        if entry.level != 0:
            check_level(entry.level, f"current[{index}].level")
        if not (math.isfinite(entry.se) and entry.se >= 0):
            raise RuleViolated("an SE is a number of 0 or more", field=f"current[{index}].se")
        known[entry.skill] = entry
    return known


def sorted_catalogue(modules: Iterable[CandidateModule]) -> list[CandidateModule]:
    """The candidates sorted by (curriculum id, key, version), each once.

    Sorting first is what makes the plan independent of the order of the input.
    """
    unique: dict[tuple[str, str, int], CandidateModule] = {}
    for candidate in modules:
        identity = (candidate.curriculum_id, candidate.module.key, candidate.curriculum_version)
        if candidate.module.duration_minutes <= 0:
            raise RuleViolated(
                f"module {candidate.module.key!r} takes a positive number of minutes",
                field="modules",
            )
        seen = unique.setdefault(identity, candidate)
        if seen != candidate:
            raise RuleViolated(
                f"module {candidate.module.key!r} of version {candidate.curriculum_version} "
                f"of {candidate.curriculum_id!r} is given twice, with different contents",
                field="modules",
            )
    return [unique[identity] for identity in sorted(unique)]


@dataclass(frozen=True)
class Offered:
    """The candidates sorted and checked once (``sorted_catalogue``), for every track planned
    from the same ones: a curriculum release re-plans every track of a tenant from one set.

    It also keeps, per set of modules excluded and satisfied (most tracks have none done or
    under way), the prerequisites each candidate needs: they depend on the catalogue alone,
    not on the engineer's targets or levels.
    """

    catalogue: tuple[CandidateModule, ...]
    _prerequisites: dict[tuple[frozenset[ModuleRef], frozenset[ModuleRef]], Prerequisites] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, modules: Iterable[CandidateModule]) -> Offered:
        return cls(tuple(sorted_catalogue(modules)))

    def prerequisites(
        self, excluded: frozenset[ModuleRef], satisfied: frozenset[ModuleRef]
    ) -> Prerequisites:
        key = (excluded, satisfied)
        found = self._prerequisites.get(key)
        if found is None:
            found = self._prerequisites[key] = resolve_prerequisites(
                self.catalogue, excluded, satisfied
            )
        return found


def pick_version(candidates: Sequence[CandidateModule]) -> CandidateModule:
    """Of one module in several versions: the pinned one, else the newest."""
    return max(candidates, key=lambda c: (c.preferred, c.curriculum_version))


@dataclass(frozen=True, slots=True)
class Problem:
    """What the search works on: candidates numbered, skills numbered, levels as integers."""

    candidates: tuple[CandidateModule, ...]
    ref_id: tuple[int, ...]  # candidates of one module in several versions share it
    cost: tuple[int, ...]
    preferred: tuple[bool, ...]
    # (skill index, level the module reaches, capped at the target) where that is above
    # the base level; a module with none has no gain of its own.
    reaches: tuple[tuple[tuple[int, int], ...], ...]
    # The candidate with the prerequisites it needs, recursively, prerequisites first.
    bundle: tuple[tuple[int, ...], ...]
    bundle_refs: tuple[frozenset[int], ...]
    bundle_cost: tuple[int, ...]
    # The highest level each skill reaches in the whole bundle, for a fast gain: the members
    # already planned have raised the levels at least that far, so only the others count.
    bundle_reach: tuple[tuple[tuple[int, int], ...], ...]
    # False when a member is offered in another version too: then "already planned" may
    # mean the other version, with other levels, and the gain is worked out member by member.
    plain: tuple[bool, ...]
    requires: tuple[frozenset[int], ...]  # ref ids of direct prerequisites still to plan
    # Candidates with a gain of their own. A module without one would only add its minutes to
    # the bundle of its prerequisites, which are offered themselves.
    heads: tuple[int, ...]
    base: tuple[int, ...]  # skill levels once the modules in progress are completed
    se: tuple[float, ...]
    budget: int  # minutes left after the modules in progress


@dataclass(frozen=True, slots=True)
class Prerequisites:
    """The candidates left once ``excluded`` are taken out, and for each the bundle of
    prerequisites it needs (itself last), or None when it cannot be reached."""

    pool: tuple[CandidateModule, ...]
    direct: tuple[tuple[int, ...] | None, ...]
    closures: tuple[tuple[int, ...] | None, ...]


def resolve_prerequisites(
    catalogue: Sequence[CandidateModule],
    excluded: frozenset[ModuleRef],
    satisfied: frozenset[ModuleRef],
) -> Prerequisites:
    pool = [c for c in catalogue if c.ref not in excluded]
    position = {
        (c.curriculum_id, c.curriculum_version, c.module.key): i for i, c in enumerate(pool)
    }

    # Prerequisites resolve within the same published version: a version's modules are a
    # consistent snapshot. A prerequisite that is neither satisfied nor available makes the
    # module unreachable.
    direct: list[list[int] | None] = []
    for candidate in pool:
        needed: list[int] | None = []
        for key in candidate.module.prerequisites:
            if (candidate.curriculum_id, key) in satisfied:
                continue
            found = position.get((candidate.curriculum_id, candidate.curriculum_version, key))
            if found is None:
                needed = None
                break
            assert needed is not None
            needed.append(found)
        direct.append(needed)

    closures: dict[int, tuple[int, ...] | None] = {}

    def closure(root: int) -> tuple[int, ...] | None:
        # Iterative depth-first post-order: prerequisites come before their dependants.
        # A cycle (impossible within a published version) makes the module unreachable.
        if root in closures:
            return closures[root]
        order: list[int] = []
        state: dict[int, int] = {}  # 1 = on the path, 2 = finished
        stack: list[tuple[int, int]] = [(root, 0)]
        reachable = True
        while stack and reachable:
            node, next_child = stack.pop()
            children = direct[node]
            if children is None:
                reachable = False
                break
            if next_child == 0:
                state[node] = 1
            if next_child < len(children):
                stack.append((node, next_child + 1))
                child = children[next_child]
                if state.get(child) == 1:
                    reachable = False
                elif child not in state:
                    stack.append((child, 0))
                continue
            state[node] = 2
            order.append(node)
        closures[root] = tuple(order) if reachable else None
        return closures[root]

    return Prerequisites(
        pool=tuple(pool),
        direct=tuple(None if d is None else tuple(d) for d in direct),
        closures=tuple(closure(i) for i in range(len(pool))),
    )


def prepare(
    catalogue: Sequence[CandidateModule] | Offered,
    goals: Mapping[str, MergedTarget],
    start_levels: Mapping[str, int],
    se: Mapping[str, float],
    excluded: frozenset[ModuleRef],
    satisfied: frozenset[ModuleRef],
    budget: int,
) -> Problem:
    skills = sorted(s for s, t in goals.items() if t.level > start_levels.get(s, 0))
    index_of_skill = {skill: i for i, skill in enumerate(skills)}
    if isinstance(catalogue, Offered):
        prerequisites = catalogue.prerequisites(excluded, satisfied)
    else:
        prerequisites = resolve_prerequisites(catalogue, excluded, satisfied)
    pool, direct, closures = prerequisites.pool, prerequisites.direct, prerequisites.closures

    reaches_all: list[tuple[tuple[int, int], ...]] = []
    for candidate in pool:
        gains: list[tuple[int, int]] = []
        for target in candidate.module.targets:
            skill = index_of_skill.get(target.skill)
            if skill is None:
                continue
            level = min(target.level, goals[target.skill].level)
            if level > start_levels.get(target.skill, 0):
                gains.append((skill, level))
        reaches_all.append(tuple(sorted(gains)))

    # Keep the reachable modules with a gain of their own and their prerequisites; nothing
    # else can ever enter a plan.
    useful: set[int] = set()
    for i in range(len(pool)):
        members = closures[i]
        if reaches_all[i] and members is not None:
            useful.update(members)
    kept = sorted(useful)
    renumber = {old: new for new, old in enumerate(kept)}
    ref_ids: dict[ModuleRef, int] = {}
    for i in kept:
        ref_ids.setdefault(pool[i].ref, len(ref_ids))
    bundles = []
    for i in kept:
        members = closures[i]
        assert members is not None  # every kept module is in a reachable closure
        bundles.append(tuple(renumber[j] for j in members))
    versions = Counter(pool[i].ref for i in kept)
    bundle_reach = []
    for bundle in bundles:
        highest: dict[int, int] = {}
        for j in bundle:
            for skill, level in reaches_all[kept[j]]:
                highest[skill] = max(highest.get(skill, 0), level)
        bundle_reach.append(tuple(sorted(highest.items())))
    return Problem(
        candidates=tuple(pool[i] for i in kept),
        ref_id=tuple(ref_ids[pool[i].ref] for i in kept),
        cost=tuple(pool[i].module.duration_minutes for i in kept),
        preferred=tuple(pool[i].preferred for i in kept),
        reaches=tuple(reaches_all[i] for i in kept),
        bundle=tuple(bundles),
        bundle_refs=tuple(frozenset(ref_ids[pool[kept[j]].ref] for j in b) for b in bundles),
        bundle_cost=tuple(sum(pool[kept[j]].module.duration_minutes for j in b) for b in bundles),
        bundle_reach=tuple(bundle_reach),
        plain=tuple(all(versions[pool[kept[j]].ref] == 1 for j in b) for b in bundles),
        requires=tuple(frozenset(ref_ids[pool[j].ref] for j in direct[i] or ()) for i in kept),
        heads=tuple(renumber[i] for i in kept if reaches_all[i]),
        base=tuple(start_levels.get(skill, 0) for skill in skills),
        se=tuple(se.get(skill, UNKNOWN_SE) for skill in skills),
        budget=budget,
    )
