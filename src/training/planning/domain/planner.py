"""Training tracks: which modules an engineer should take next, in which order, and why.

The planner turns plain values (targets, the skill profile, the modules available to the
tenant, what is done or under way, and the time the engineer has) into a ``Plan``: an ordered
list of modules, each with a reason a person can check, the modules that would help but do
not fit, and the gaps that stay open.

The model. A skill's gap is ``target - current`` levels. A module brings each skill it
targets up to ``min(module level, target level)``, so after a set of modules a skill stands at
the highest level any of them reaches (never above the target, never below where it was):
two modules teaching the same level do not add up. The value of a plan is the number of gap
levels it closes; the objective is the largest value within the budget, then the fewest
minutes, then the most modules of the cohort's pinned (preferred) curriculum versions.

The search. The problem is a budgeted maximum coverage problem with precedence constraints
(NP-hard), and a track is planned on every profile change, so the planner is a heuristic
with a measured quality (``scripts/bench/planner_quality.py`` compares it with the exact
optimum on small instances):

1. Greedy by gain per minute over *bundles*: a module together with its prerequisites that
   are not yet done, under way or planned. Pricing a module with its prerequisites keeps a
   cheap-looking module behind an expensive chain from being overrated, and lets a module
   without gain of its own enter the plan only as part of a bundle that needs it. Gains are
   re-evaluated after each pick, because a skill raised by one module makes the next module
   on that skill worth less.
2. Pruning: a module whose removal loses nothing (superseded by a later pick) and that no
   planned module requires is dropped; it would only cost minutes.
3. Local search: drop one planned module (with the planned modules that need it) and refill
   greedily without it, or force in a bundle the greedy skipped and make room by dropping the
   planned modules that lose least per minute freed; keep a change only when it strictly
   improves the objective, which guarantees termination.

Everything is deterministic: candidates are sorted by (curriculum id, key, version) before
anything else, every choice breaks ties explicitly, and ratios are compared exactly in
integers, so the same inputs in any order give the same plan.

Ties between bundles of equal gain per minute go to the one whose skills are *less
certain* (the larger standard error of the profile entry, an unknown skill counting as the
least certain): a level measured with a large SE may well be lower than reported, and a
module on that skill also produces the evidence that firms the profile up. Only then come
fewer minutes, the preferred curriculum version, and the order of (curriculum id, key).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from training.core.errors import RuleViolated
from training.curricula.domain import ModuleSpec
from training.skills.domain import check_level

ModuleRef = tuple[str, str]  # (curriculum id, module key): the same module across versions

UNKNOWN_SE = math.inf  # a skill missing from the profile: nothing is known about it
MINUTES_PER_HOUR = 60
DAYS_PER_WEEK = 7
# Local search stops after this many improvements, or once it has looked at this many bundle
# members in all (a count, not a clock, so the plan stays deterministic). The benchmark's
# 60-module instances look at up to about 16,000, so neither limit binds there; they bound
# the time of pathological inputs, such as one prerequisite chain of 60 modules.
MAX_IMPROVEMENTS = 25
WORK_LIMIT = 100_000


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


# --- preparing the problem ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    level: int
    sources: tuple[tuple[int, str], ...]  # (level asked, source), highest first


def _merge_targets(targets: Iterable[TargetLevel]) -> dict[str, _Target]:
    """One target per skill: the highest level asked, with every source kept for the reason."""
    asked: dict[str, set[tuple[int, str]]] = {}
    for index, target in enumerate(targets):
        check_level(target.level, f"targets[{index}].level")
        source = target.source.strip()
        if not source:
            raise RuleViolated("say who asks for the target", field=f"targets[{index}].source")
        asked.setdefault(target.skill, set()).add((target.level, source))
    return {
        skill: _Target(
            level=max(level for level, _ in pairs),
            sources=tuple(sorted(pairs, key=lambda pair: (-pair[0], pair[1]))),
        )
        for skill, pairs in sorted(asked.items())
    }


def _profile(current: Iterable[CurrentLevel]) -> dict[str, CurrentLevel]:
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


def _catalogue(modules: Iterable[CandidateModule]) -> list[CandidateModule]:
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


def _pick_version(candidates: Sequence[CandidateModule]) -> CandidateModule:
    """Of one module in several versions: the pinned one, else the newest."""
    return max(candidates, key=lambda c: (c.preferred, c.curriculum_version))


@dataclass(frozen=True, slots=True)
class _Problem:
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


def _prepare(
    catalogue: Sequence[CandidateModule],
    goals: Mapping[str, _Target],
    start_levels: Mapping[str, int],
    se: Mapping[str, float],
    excluded: frozenset[ModuleRef],
    satisfied: frozenset[ModuleRef],
    budget: int,
) -> _Problem:
    skills = sorted(s for s, t in goals.items() if t.level > start_levels.get(s, 0))
    index_of_skill = {skill: i for i, skill in enumerate(skills)}
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
        members = closure(i)
        if reaches_all[i] and members is not None:
            useful.update(members)
    kept = sorted(useful)
    renumber = {old: new for new, old in enumerate(kept)}
    ref_ids: dict[ModuleRef, int] = {}
    for i in kept:
        ref_ids.setdefault(pool[i].ref, len(ref_ids))
    bundles = []
    for i in kept:
        members = closure(i)
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
    return _Problem(
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


# --- the search -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Offer:
    """A bundle on offer to the greedy, with what decides between offers."""

    head: int
    members: tuple[int, ...]
    gain: int
    cost: int
    uncertainty: float
    preferred: bool

    def beats(self, other: _Offer) -> bool:
        # Gain per minute, compared exactly: gain / cost > other.gain / other.cost.
        mine, theirs = self.gain * other.cost, other.gain * self.cost
        if mine != theirs:
            return mine > theirs
        if self.uncertainty != other.uncertainty:
            return self.uncertainty > other.uncertainty
        if self.cost != other.cost:
            return self.cost < other.cost
        if self.preferred != other.preferred:
            return self.preferred
        return self.head < other.head  # candidates are sorted by (curriculum id, key, version)


class _Search:
    def __init__(self, problem: _Problem) -> None:
        self.p = problem
        self.work = 0  # bundle members looked at, to bound the local search

    # A solution is a list of candidate indices, prerequisites before dependants.

    def levels(self, chosen: Iterable[int]) -> list[int]:
        levels = list(self.p.base)
        for j in chosen:
            for skill, level in self.p.reaches[j]:
                if level > levels[skill]:
                    levels[skill] = level
        return levels

    def value(self, chosen: Iterable[int]) -> int:
        return sum(self.levels(chosen)) - sum(self.p.base)

    def score(self, chosen: Sequence[int]) -> tuple[int, int, int]:
        """The objective: most gap closed, then fewest minutes, then most preferred modules."""
        return (
            self.value(chosen),
            -sum(self.p.cost[j] for j in chosen),
            sum(self.p.preferred[j] for j in chosen),
        )

    def offer(
        self, head: int, taken: set[int], levels: Sequence[int], banned: int, left: int
    ) -> _Offer | None:
        """The head's bundle without the modules already planned, if it fits and gains."""
        p = self.p
        bundle = p.bundle[head]
        self.work += len(bundle)
        if taken.isdisjoint(p.bundle_refs[head]):  # the common case, without a loop
            members, cost = bundle, p.bundle_cost[head]
        else:
            members = tuple(j for j in bundle if p.ref_id[j] not in taken)
            cost = sum(p.cost[j] for j in members)
        if cost > left or banned in members:
            return None
        if p.plain[head]:
            reached = p.bundle_reach[head]
        else:
            highest: dict[int, int] = {}
            for j in members:
                for skill, level in p.reaches[j]:
                    highest[skill] = max(highest.get(skill, 0), level)
            reached = tuple(highest.items())
        gain = 0
        uncertainty = -1.0
        for skill, level in reached:
            if level > levels[skill]:
                gain += level - levels[skill]
                uncertainty = max(uncertainty, p.se[skill])
        if gain == 0:
            return None
        return _Offer(head, members, gain, cost, uncertainty, p.preferred[head])

    def fill(self, chosen: Sequence[int], banned: int = -1) -> list[int]:
        """Greedy by gain per minute over the bundles that fit, until none adds anything."""
        p = self.p
        result = list(chosen)
        taken = {p.ref_id[j] for j in result}
        levels = self.levels(result)
        left = p.budget - sum(p.cost[j] for j in result)
        while True:
            best: _Offer | None = None
            for head in p.heads:
                if p.ref_id[head] in taken:
                    continue
                offer = self.offer(head, taken, levels, banned, left)
                if offer is None:
                    continue
                if best is None or offer.beats(best):
                    best = offer
            if best is None:
                return result
            for j in best.members:
                result.append(j)
                taken.add(p.ref_id[j])
                for skill, level in p.reaches[j]:
                    levels[skill] = max(levels[skill], level)
            left -= best.cost

    def required(self, chosen: Iterable[int]) -> set[int]:
        return {ref for j in chosen for ref in self.p.requires[j]}

    def prune(self, chosen: Sequence[int]) -> list[int]:
        """Drop modules that add nothing and that nothing planned requires, latest first."""
        result = list(chosen)
        value = self.value(result)
        dropped = True
        while dropped:
            dropped = False
            required = self.required(result)
            for j in reversed(result):
                if self.p.ref_id[j] in required:
                    continue
                rest = [k for k in result if k != j]
                if self.value(rest) == value:
                    result = rest
                    dropped = True
                    break
        return result

    def without(self, chosen: Sequence[int], removed: int) -> list[int]:
        """The solution without ``removed`` and the planned modules that need it."""
        gone = {self.p.ref_id[removed]}
        result = [j for j in chosen if j != removed]
        changed = True
        while changed:
            changed = False
            for j in result:
                if self.p.requires[j] & gone:
                    gone.add(self.p.ref_id[j])
                    result = [k for k in result if k != j]
                    changed = True
                    break
        return result

    def drop_and_refill(self, chosen: list[int]) -> list[int] | None:
        best_score = self.score(chosen)
        for removed in sorted(chosen):
            if self.work > WORK_LIMIT:
                return None
            trial = self.prune(self.without(chosen, removed))
            trial = self.prune(self.fill(self.fill(trial, banned=removed)))
            if self.score(trial) > best_score:
                return trial
        return None

    def force_in(self, chosen: list[int]) -> list[int] | None:
        """Bring in a bundle the greedy left out, then make room at the least loss per minute."""
        p = self.p
        best_score = self.score(chosen)
        taken = {p.ref_id[j] for j in chosen}
        levels = self.levels(chosen)
        for head in p.heads:
            if p.ref_id[head] in taken:
                continue
            offer = self.offer(head, taken, levels, -1, p.budget)
            if offer is None:
                continue
            if self.work > WORK_LIMIT:
                return None
            trial = [*chosen, *offer.members]
            keep = set(offer.members)
            while sum(p.cost[j] for j in trial) > p.budget:
                required = self.required(trial)
                value = self.value(trial)
                victim: tuple[Fraction, int, int] | None = None
                for j in trial:
                    if j in keep or p.ref_id[j] in required:
                        continue
                    loss = Fraction(value - self.value(k for k in trial if k != j), p.cost[j])
                    # Least value lost per minute freed; then the larger module, then by index.
                    candidate = (loss, -p.cost[j], j)
                    if victim is None or candidate < victim:
                        victim = candidate
                if victim is None:
                    break
                trial = [k for k in trial if k != victim[2]]
            if sum(p.cost[j] for j in trial) > p.budget:
                continue
            trial = self.prune(self.fill(self.prune(trial)))
            if self.score(trial) > best_score:
                return trial
        return None

    def solve(self) -> list[int]:
        chosen = self.prune(self.fill([]))
        for _ in range(MAX_IMPROVEMENTS):
            better = self.drop_and_refill(chosen)
            if better is None:
                better = self.force_in(chosen)
            if better is None:
                break
            chosen = better
        return chosen


# --- explaining the plan ------------------------------------------------------------------------


class _Narrator:
    """Turns levels and sources into the sentences of reasons."""

    def __init__(
        self,
        goals: Mapping[str, _Target],
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


def _quoted(keys: Iterable[str]) -> str:
    return " and ".join(f"'{key}'" for key in keys)


def _order(search: _Search, chosen: Sequence[int]) -> list[tuple[int, ...]]:
    """The chosen modules as bundles in the order to take them: best gain per minute first.

    Taking the most valuable minutes first means an engineer who runs short of time has
    still closed as much as possible. Prerequisites always come with, and before, the
    module that needs them.
    """
    p = search.p
    left = list(chosen)
    planned = set(chosen)
    done: set[int] = set()
    done_refs: set[int] = set()
    levels = list(p.base)
    bundles: list[tuple[int, ...]] = []
    while left:
        best: _Offer | None = None
        for head in left:
            members = tuple(j for j in p.bundle[head] if j in planned and j not in done)
            # A prerequisite met by another version of the same module must come first.
            refs = done_refs | {p.ref_id[j] for j in members}
            if any(not p.requires[j] <= refs for j in members):
                continue
            reached: dict[int, int] = {}
            for j in members:
                for skill, level in p.reaches[j]:
                    if level > levels[skill] and level > reached.get(skill, 0):
                        reached[skill] = level
            offer = _Offer(
                head=head,
                members=members,
                gain=sum(level - levels[skill] for skill, level in reached.items()),
                cost=sum(p.cost[j] for j in members),
                uncertainty=max((p.se[skill] for skill in reached), default=0.0),
                preferred=p.preferred[head],
            )
            if best is None or offer.beats(best):
                best = offer
        if best is None:  # unreachable for a prerequisite-closed plan; never loop forever
            best = _Offer(left[0], (left[0],), 0, p.cost[left[0]], 0.0, p.preferred[left[0]])
        bundles.append(best.members)
        for j in best.members:
            done.add(j)
            done_refs.add(p.ref_id[j])
            for skill, level in p.reaches[j]:
                levels[skill] = max(levels[skill], level)
        left = [j for j in left if j not in done]
    return bundles


# --- the public functions ----------------------------------------------------------------------


def plan_track(
    targets: Sequence[TargetLevel],
    current: Sequence[CurrentLevel],
    modules: Sequence[CandidateModule],
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
    later module, and its reason says which.
    """
    goals = _merge_targets(targets)
    profile = _profile(current)
    in_progress = in_progress - done  # a module reported both ways is finished
    catalogue = _catalogue(modules)
    narrator = _Narrator(goals, profile, skill_names)
    budget = constraints.budget_minutes
    measured = {skill: entry.level for skill, entry in profile.items()}

    by_ref: dict[ModuleRef, list[CandidateModule]] = {}
    for candidate in catalogue:
        by_ref.setdefault(candidate.ref, []).append(candidate)
    ongoing = [_pick_version(by_ref[ref]) for ref in sorted(in_progress) if ref in by_ref]
    ongoing_keys = {c.ref: c for c in ongoing}
    # In progress first; among them prerequisites first, then by (curriculum id, key).
    ongoing_order = _in_progress_order(ongoing)

    levels = {skill: measured.get(skill, 0) for skill in goals}
    entries: list[tuple[CandidateModule, tuple[GapClosure, ...], bool]] = []
    for candidate in ongoing_order:
        entries.append((candidate, narrator.closures(candidate.module, levels), True))
    ongoing_minutes = sum(c.module.duration_minutes for c in ongoing)

    problem = _prepare(
        catalogue,
        goals,
        start_levels=levels,
        se={skill: entry.se for skill, entry in profile.items()},
        excluded=done | frozenset(ongoing_keys),
        satisfied=done | in_progress,
        budget=budget - ongoing_minutes,
    )
    search = _Search(problem)
    chosen = search.solve()
    for bundle in _order(search, chosen):
        for j in bundle:
            candidate = problem.candidates[j]
            entries.append((candidate, narrator.closures(candidate.module, levels), False))

    planned = _describe(entries, narrator)
    minutes_used = sum(m.minutes for m in planned)
    deferred = _deferred(search, chosen, levels, narrator, budget - minutes_used)
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


def _describe(
    entries: Sequence[tuple[CandidateModule, tuple[GapClosure, ...], bool]],
    narrator: _Narrator,
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
            parts.append(("also " if parts else "") + f"prerequisite of {_quoted(unlocks)}")
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


def _deferred(
    search: _Search,
    chosen: Sequence[int],
    levels: Mapping[str, int],
    narrator: _Narrator,
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
            f" with its prerequisites {_quoted(requires)} ({cost} min in all)" if requires else ""
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
        return f"superseded by {_quoted(successors)}"
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


def replan(
    previous: Plan | None,
    targets: Sequence[TargetLevel],
    current: Sequence[CurrentLevel],
    modules: Sequence[CandidateModule],
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
