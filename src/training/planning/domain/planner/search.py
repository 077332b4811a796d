"""The search: which modules to plan, and in which order to take them.

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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from training.planning.domain.planner.problem import Problem

# Local search stops after this many improvements, or once it has looked at this many bundle
# members in all (a count, not a clock, so the plan stays deterministic). The benchmark's
# 60-module instances look at up to about 16,000, so neither limit binds there; they bound
# the time of pathological inputs, such as one prerequisite chain of 60 modules.
MAX_IMPROVEMENTS = 25
WORK_LIMIT = 100_000


# Not frozen: the search makes a few hundred offers per track, and a frozen dataclass sets
# each field through ``object.__setattr__``. Nothing changes an offer once made.
@dataclass(slots=True)
class Offer:
    """A bundle on offer to the greedy, with what decides between offers."""

    head: int
    members: tuple[int, ...]
    gain: int
    cost: int
    uncertainty: float
    preferred: bool

    def beats(self, other: Offer) -> bool:
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


class Search:
    def __init__(self, problem: Problem) -> None:
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
    ) -> Offer | None:
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
        return Offer(head, members, gain, cost, uncertainty, p.preferred[head])

    def fill(self, chosen: Sequence[int], banned: int = -1) -> list[int]:
        """Greedy by gain per minute over the bundles that fit, until none adds anything."""
        p = self.p
        result = list(chosen)
        taken = {p.ref_id[j] for j in result}
        levels = self.levels(result)
        left = p.budget - sum(p.cost[j] for j in result)
        while True:
            best: Offer | None = None
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


def order_bundles(search: Search, chosen: Sequence[int]) -> list[tuple[int, ...]]:
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
        best: Offer | None = None
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
            offer = Offer(
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
            best = Offer(left[0], (left[0],), 0, p.cost[left[0]], 0.0, p.preferred[left[0]])
        bundles.append(best.members)
        for j in best.members:
            done.add(j)
            done_refs.add(p.ref_id[j])
            for skill, level in p.reaches[j]:
                levels[skill] = max(levels[skill], level)
        left = [j for j in left if j not in done]
    return bundles
