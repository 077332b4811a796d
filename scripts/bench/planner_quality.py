"""Planner quality: how close the training-track planner comes to the best possible plan.

Random small instances (8-14 candidate modules in 1-3 curricula, 3-6 skills, random
prerequisite DAGs within each curriculum, random targets, profiles and budgets of 20-80 %
of the total minutes) are planned with ``plan_track``, and the gap it closes is compared with
the exact optimum, found here by a depth-first branch and bound over prerequisite-closed
subsets within the budget, written independently of the planner (its own value function,
its own feasibility rules). Every plan is also checked: prerequisites before dependants,
minutes within the budget, and the gap the plan reports equal to the gap recomputed here.

The same instances are planned a second time with the local search switched off
(``MAX_IMPROVEMENTS = 0``), to show what the improvement step adds to the greedy. Planning
time (the thread's CPU time, and the elapsed time) is measured on these instances and on
larger ones (60 modules, 12 skills, 5 curricula) whose optimum is out of reach; the 50 ms
target is judged on CPU time, because on a shared machine the elapsed time also counts the
waits for a CPU that other processes hold.

It prints a Markdown report on stdout (progress goes to stderr). It is a measurement, not a
test: the target is marked PASS or NOT MET and the exit code is 0 either way. Usage::

    .venv/bin/python scripts/bench/planner_quality.py [--instances 300] [--seed 1]
        [--large 30] [--modules 8 14] [--budget 0.2 0.8]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from training.core.errors import DomainError
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.planning.domain.planner import (
    CandidateModule,
    Constraints,
    CurrentLevel,
    Plan,
    TargetLevel,
    plan_track,
    search,
)
from training.skills.domain import SkillTarget

TARGET_MEAN_RATIO = 0.98
TARGET_LARGE_MS = 50.0
DURATIONS = (30, 45, 60, 90, 120, 150, 180, 240)
START = date(2026, 1, 5)
WEEKS = 10


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- instances ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instance:
    targets: tuple[TargetLevel, ...]
    current: tuple[CurrentLevel, ...]
    modules: tuple[CandidateModule, ...]
    constraints: Constraints


def instance(
    rng: random.Random,
    modules: tuple[int, int],
    skills: tuple[int, int],
    curricula: tuple[int, int],
    budget_share: tuple[float, float] = (0.2, 0.8),
) -> Instance:
    codes = [f"skill-{n + 1}" for n in range(rng.randint(*skills))]
    targets: list[TargetLevel] = []
    current: list[CurrentLevel] = []
    for n, code in enumerate(codes):
        role = rng.randint(2, 6)
        targets.append(TargetLevel(code, role, "role profile Backend Engineer L3"))
        if rng.random() < 0.3:
            goal = min(7, role + rng.randint(0, 2))
            targets.append(TargetLevel(code, goal, f"goal G{n + 1}: {code} {goal} by 2027-03-01"))
        if rng.random() < 0.85:
            level = rng.randint(0, role)
            current.append(CurrentLevel(code, level, round(rng.uniform(0.2, 1.0), 2)))
    count = rng.randint(*modules)
    names = [f"curriculum-{n + 1}" for n in range(rng.randint(*curricula))]
    keys: dict[str, list[str]] = {name: [] for name in names}
    candidates: list[CandidateModule] = []
    preferred = {name: rng.random() < 0.5 for name in names}
    reached: dict[tuple[str, str], tuple[SkillTarget, ...]] = {}
    for n in range(count):
        curriculum = rng.choice(names)
        earlier = keys[curriculum]
        wanted = rng.choices((0, 1, 2), weights=(0.4, 0.4, 0.2))[0]
        prerequisites = tuple(sorted(rng.sample(earlier, min(wanted, len(earlier)))))
        # Curricula build up: a module teaches its prerequisites' skills one or two levels
        # further, and sometimes a skill of its own; a module without prerequisites starts
        # low. So prerequisites often bring no gain to a skilled engineer, only access.
        below: dict[str, int] = {}
        for prerequisite in prerequisites:
            for target in reached[(curriculum, prerequisite)]:
                below[target.skill] = max(below.get(target.skill, 0), target.level)
        skill_count = rng.choices((1, 2, 3), weights=(0.5, 0.35, 0.15))[0]
        chosen = set(rng.sample(sorted(below), min(len(below), skill_count)))
        while len(chosen) < skill_count:
            chosen.add(rng.choice(codes))
        module_targets = tuple(
            SkillTarget(code, min(7, below[code] + rng.randint(1, 2)))
            if code in below
            else SkillTarget(code, rng.randint(1, 4))
            for code in sorted(chosen)
        )
        key = f"m{n + 1:02d}"
        earlier.append(key)
        reached[(curriculum, key)] = module_targets
        spec = ModuleSpec(
            key=key,
            title=f"Module {n + 1}",
            description="",
            format=ModuleFormat.LAB,
            duration_minutes=rng.choice(DURATIONS),
            targets=module_targets,
            prerequisites=prerequisites,
        )
        candidates.append(CandidateModule(curriculum, 1, spec, preferred[curriculum]))
    total = sum(c.module.duration_minutes for c in candidates)
    budget = total * rng.uniform(*budget_share)
    weekly_hours = round(budget / 60 / WEEKS, 3)
    constraints = Constraints(weekly_hours, START, START + timedelta(weeks=WEEKS))
    rng.shuffle(candidates)  # the planner must not depend on the order it is given
    return Instance(tuple(targets), tuple(current), tuple(candidates), constraints)


# --- the exact optimum, independently of the planner ----------------------------------------


class Exact:
    """Depth-first branch and bound: each module in or out, in prerequisite order."""

    def __init__(self, problem: Instance, budget: int) -> None:
        goal: dict[str, int] = {}
        for target in problem.targets:
            goal[target.skill] = max(goal.get(target.skill, 0), target.level)
        have = {entry.skill: entry.level for entry in problem.current}
        self.start = {skill: have.get(skill, 0) for skill in goal}
        self.goal = goal
        self.budget = budget
        by_ref = {c.ref: c for c in problem.modules}
        order: list[CandidateModule] = []
        placed: set[tuple[str, str]] = set()
        pending = sorted(by_ref)
        while pending:
            ready = next(
                ref
                for ref in pending
                if all((ref[0], p) in placed for p in by_ref[ref].module.prerequisites)
            )
            order.append(by_ref[ready])
            placed.add(ready)
            pending.remove(ready)
        self.order = order
        self.best = 0

    def value(self, levels: dict[str, int]) -> int:
        return sum(min(g, levels[s]) - min(g, self.start[s]) for s, g in self.goal.items())

    def raised(self, levels: dict[str, int], module: ModuleSpec) -> dict[str, int]:
        result = dict(levels)
        for target in module.targets:
            if target.skill in result:
                result[target.skill] = max(result[target.skill], target.level)
        return result

    def solve(self) -> int:
        self.best = 0
        self.search(0, frozenset(), 0, dict(self.start))
        return self.best

    def search(
        self, index: int, chosen: frozenset[tuple[str, str]], minutes: int, levels: dict[str, int]
    ) -> None:
        value = self.value(levels)
        self.best = max(self.best, value)
        if index == len(self.order):
            return
        # Bound: every remaining module that fits on its own, all at once, ignoring
        # prerequisites and the budget they would share.
        optimistic = dict(levels)
        for module in self.order[index:]:
            if minutes + module.module.duration_minutes <= self.budget:
                optimistic = self.raised(optimistic, module.module)
        if self.value(optimistic) <= self.best:
            return
        candidate = self.order[index]
        cost = candidate.module.duration_minutes
        ready = all((candidate.curriculum_id, p) in chosen for p in candidate.module.prerequisites)
        if ready and minutes + cost <= self.budget:
            self.search(
                index + 1,
                chosen | {candidate.ref},
                minutes + cost,
                self.raised(levels, candidate.module),
            )
        self.search(index + 1, chosen, minutes, levels)


def checked_value(problem: Instance, plan: Plan, exact: Exact) -> int:
    """The gap the plan closes, recomputed here, after checking the plan is feasible."""
    by_ref = {c.ref: c for c in problem.modules}
    placed: set[tuple[str, str]] = set()
    levels = dict(exact.start)
    for planned in plan.modules:
        module = by_ref[planned.ref].module
        missing = [p for p in module.prerequisites if (planned.curriculum_id, p) not in placed]
        if missing:
            raise AssertionError(f"{planned.key} is planned before its prerequisites {missing}")
        placed.add(planned.ref)
        levels = exact.raised(levels, module)
    minutes = sum(by_ref[m.ref].module.duration_minutes for m in plan.modules)
    if minutes > plan.budget_minutes or minutes != plan.minutes_used:
        raise AssertionError(f"{minutes} minutes planned, budget {plan.budget_minutes}")
    value = exact.value(levels)
    if value != plan.gap_closed:
        raise AssertionError(f"the plan reports {plan.gap_closed} levels closed, it is {value}")
    return value


# --- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    cpu_ms: float  # this thread's CPU time: what the planner costs
    wall_ms: float  # elapsed time: what a caller waits, including for a busy CPU


def plan(problem: Instance) -> tuple[Plan, Timing]:
    wall, cpu = time.perf_counter(), time.thread_time()
    result = plan_track(problem.targets, problem.current, problem.modules, problem.constraints)
    timing = Timing((time.thread_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000)
    return result, timing


@dataclass(frozen=True, slots=True)
class Outcome:
    optimum: int
    planned: int
    greedy_only: int
    timing: Timing
    greedy_timing: Timing


def measure_small(
    count: int, seed: int, modules: tuple[int, int], budget_share: tuple[float, float]
) -> list[Outcome]:
    rng = random.Random(seed)
    outcomes = []
    improvements = search.MAX_IMPROVEMENTS
    for n in range(count):
        problem = instance(rng, modules, skills=(3, 6), curricula=(1, 3), budget_share=budget_share)
        result, timing = plan(problem)
        exact = Exact(problem, result.budget_minutes)
        optimum = exact.solve()
        search.MAX_IMPROVEMENTS = 0
        try:
            greedy, greedy_timing = plan(problem)
        finally:
            search.MAX_IMPROVEMENTS = improvements
        outcomes.append(
            Outcome(
                optimum=optimum,
                planned=checked_value(problem, result, exact),
                greedy_only=checked_value(problem, greedy, exact),
                timing=timing,
                greedy_timing=greedy_timing,
            )
        )
        if result.gap_closed > optimum:
            raise AssertionError(f"instance {n}: plan {result.gap_closed} > optimum {optimum}")
        if (n + 1) % 50 == 0:
            progress(f"{n + 1}/{count} small instances")
    return outcomes


def measure_large(count: int, seed: int) -> tuple[list[Timing], list[int]]:
    rng = random.Random(f"large-{seed}")
    timings: list[Timing] = []
    sizes: list[int] = []
    for _ in range(count):
        problem = instance(rng, modules=(60, 60), skills=(12, 12), curricula=(5, 5))
        result, timing = plan(problem)
        timings.append(timing)
        sizes.append(len(result.modules))
    return timings, sizes


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def time_rows(label: str, timings: Sequence[Timing]) -> list[str]:
    rows = []
    for kind, values in (
        ("CPU", [t.cpu_ms for t in timings]),
        ("wall", [t.wall_ms for t in timings]),
    ):
        rows.append(
            f"| {label} | {kind} | {statistics.fmean(values):.2f} | "
            f"{percentile(values, 0.95):.2f} | {max(values):.2f} |"
        )
    return rows


def run(args: argparse.Namespace, argv: Sequence[str]) -> str:
    started = time.perf_counter()
    load_before = os.getloadavg()
    plan(instance(random.Random(0), (8, 14), (3, 6), (1, 3)))  # warm up imports and caches
    modules = (args.modules[0], args.modules[1])
    share = (args.budget[0], args.budget[1])
    small = measure_small(args.instances, args.seed, modules, share)
    size = f"{modules[0]}-{modules[1]} modules"
    progress(f"{args.large} large instances")
    large, large_sizes = measure_large(args.large, args.seed)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    scored = [o for o in small if o.optimum > 0]
    ratios = [o.planned / o.optimum for o in scored]
    greedy_ratios = [o.greedy_only / o.optimum for o in scored]
    mean_ratio = statistics.fmean(ratios)
    large_cpu_p95 = percentile([t.cpu_ms for t in large], 0.95)
    large_wall_p95 = percentile([t.wall_ms for t in large], 0.95)

    def row(label: str, values: Sequence[float], timings: Sequence[Timing]) -> str:
        at_optimum = sum(v >= 1 for v in values) / len(values)
        return (
            f"| {label} | {statistics.fmean(values):.2%} | {min(values):.2%} | "
            f"{at_optimum:.1%} | {statistics.fmean(t.cpu_ms for t in timings):.2f} |"
        )

    verdict = "PASS" if mean_ratio >= TARGET_MEAN_RATIO else "NOT MET"
    large_verdict = "PASS" if large_cpu_p95 < TARGET_LARGE_MS else "NOT MET"
    lines = [
        "# Planner quality: plan_track against the exact optimum",
        "",
        f"- command: `{shlex.join([sys.executable, *argv])}`",
        f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {os.cpu_count()} x {cpu_model()}; Python {platform.python_version()} "
        f"on {platform.platform()}; load average (1/5/15 min) before "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + " ".join(f"{x:.2f}" for x in load_after),
        f"- small instances: {len(small)} (seed {args.seed}), {size} in 1-3 curricula, "
        f"3-6 skills, 0-2 prerequisites per module, budgets {share[0]:.0%}-{share[1]:.0%} of "
        "the total minutes; "
        f"{len(small) - len(scored)} with an optimum of 0 left out of the ratios, "
        f"mean optimum {statistics.fmean(o.optimum for o in scored):.2f} levels",
        f"- large instances: {len(large)}, 60 modules in 5 curricula, 12 skills "
        f"(mean {statistics.fmean(large_sizes):.1f} modules planned); no optimum",
        "- times: CPU is the planning thread's CPU time, wall the elapsed time; on a shared "
        "machine the difference is time spent waiting for a CPU",
        f"- run time: {elapsed:.1f} s",
        "",
        "| Planner | mean ratio to optimum | min ratio | at optimum | mean CPU ms |",
        "|---|---|---|---|---|",
        row("greedy + local search (plan_track)", ratios, [o.timing for o in small]),
        row(
            "greedy alone (MAX_IMPROVEMENTS = 0)",
            greedy_ratios,
            [o.greedy_timing for o in small],
        ),
        "",
        "| Size | time | mean ms | p95 ms | max ms |",
        "|---|---|---|---|---|",
        *time_rows(size, [o.timing for o in small]),
        *time_rows("60 modules", large),
        "",
        "| Target | Measured | Result |",
        "|---|---|---|",
        f"| ≥ {TARGET_MEAN_RATIO:.0%} of the optimum on average | {mean_ratio:.2%} | {verdict} |",
        f"| < {TARGET_LARGE_MS:g} ms for 60 modules (p95 CPU) | {large_cpu_p95:.2f} ms "
        f"(wall {large_wall_p95:.2f} ms) | {large_verdict} |",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--large", type=int, default=30, help="60-module instances to time")
    parser.add_argument(
        "--modules",
        type=int,
        nargs=2,
        default=(8, 14),
        metavar=("MIN", "MAX"),
        help="candidate modules per small instance (the exact search grows as 2^MAX)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        nargs=2,
        default=(0.2, 0.8),
        metavar=("LOW", "HIGH"),
        help="budget as a share of the instance's total minutes, drawn uniformly",
    )
    args = parser.parse_args(argv)
    if args.instances < 1 or args.large < 1:
        parser.error("--instances and --large are at least 1")
    if not 1 <= args.modules[0] <= args.modules[1] <= 20:
        parser.error("--modules is MIN MAX with 1 <= MIN <= MAX <= 20")
    if not 0 <= args.budget[0] <= args.budget[1]:
        parser.error("--budget is LOW HIGH with 0 <= LOW <= HIGH")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv if argv is None else [sys.argv[0], *argv])
    args = parse_args(arguments[1:])
    try:
        print(run(args, arguments))
    except (ValueError, DomainError) as error:
        progress(f"stopped: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
