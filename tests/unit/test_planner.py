"""The training-track planner: what it plans, in which order, why, and what changed.

Budgets are given in hours over one week (``hours(2)`` is 120 minutes), so the minutes in
the expected texts can be checked by hand.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from training.core.errors import RuleViolated
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.planning.domain.planner import (
    CandidateModule,
    Constraints,
    CurrentLevel,
    DeferredModule,
    GapClosure,
    Offered,
    Plan,
    PlanDiff,
    SkillGap,
    TargetLevel,
    diff_plans,
    plan_track,
    replan,
)
from training.skills.domain import SkillTarget

START = date(2026, 1, 5)
ROLE = "role profile Backend Engineer L3"
GOAL = "goal G2: Kubernetes 4 by 2027-03-01"
NAMES = {"k8s": "Kubernetes", "sql": "SQL", "go": "Go"}


def hours(per_week: float, weeks: float = 1) -> Constraints:
    return Constraints(per_week, START, START + timedelta(days=round(7 * weeks)))


def offer(
    key: str,
    *prerequisites: str,
    minutes: int = 60,
    teaches: dict[str, int] | None = None,
    curriculum: str = "backend",
    version: int = 1,
    preferred: bool = False,
) -> CandidateModule:
    spec = ModuleSpec(
        key=key,
        title=key.replace("-", " ").title(),
        description="",
        format=ModuleFormat.LAB,
        duration_minutes=minutes,
        targets=tuple(
            SkillTarget(skill, level) for skill, level in sorted((teaches or {}).items())
        ),
        prerequisites=tuple(sorted(prerequisites)),
    )
    return CandidateModule(curriculum, version, spec, preferred)


def keys(plan: Plan) -> list[str]:
    return [m.key for m in plan.modules]


def test_the_budget_is_weekly_hours_over_fractional_weeks_rounded_down() -> None:
    assert hours(2).budget_minutes == 120
    # 2.5 h x 60 x 24/7 weeks = 514.3 minutes
    assert Constraints(2.5, START, START + timedelta(days=24)).budget_minutes == 514
    # 0.7 h is 42 minutes, although the float 0.7 is a hair below 7/10.
    assert hours(0.7).budget_minutes == 42
    assert Constraints(5, START, START).budget_minutes == 0


def test_constraints_reject_a_deadline_before_the_start_and_negative_hours() -> None:
    with pytest.raises(RuleViolated) as deadline:
        Constraints(2, START, START - timedelta(days=1))
    assert deadline.value.field == "deadline"
    with pytest.raises(RuleViolated) as weekly:
        Constraints(-1, START, START + timedelta(days=7))
    assert weekly.value.field == "weekly_hours"


def test_prerequisites_come_before_the_modules_that_need_them() -> None:
    modules = (
        offer("k8s-operators", "k8s-workloads", teaches={"k8s": 4}),
        offer("k8s-workloads", "k8s-basics", teaches={"k8s": 3}),
        offer("k8s-basics", teaches={"k8s": 2}),
    )
    plan = plan_track(
        (TargetLevel("k8s", 4, GOAL),), (CurrentLevel("k8s", 1, 0.4),), modules, hours(5)
    )
    assert keys(plan) == ["k8s-basics", "k8s-workloads", "k8s-operators"]
    assert [m.order for m in plan.modules] == [1, 2, 3]
    assert [(c.from_level, c.to_level) for m in plan.modules for c in m.closes] == [
        (1, 2),
        (2, 3),
        (3, 4),
    ]
    assert plan.modules[0].unlocks == ("k8s-workloads",)
    assert plan.remaining_gaps == ()
    assert (plan.minutes_used, plan.budget_minutes, plan.gap_closed) == (180, 300, 3)


def test_the_budget_is_respected_and_what_does_not_fit_is_deferred_with_its_gap() -> None:
    modules = (
        offer("sql-indexes", minutes=90, teaches={"sql": 4}),
        offer("go-testing", minutes=60, teaches={"go": 3}),
    )
    plan = plan_track(
        (TargetLevel("sql", 4, ROLE), TargetLevel("go", 3, ROLE)),
        (CurrentLevel("sql", 3, 0.3), CurrentLevel("go", 1, 0.3)),
        modules,
        hours(2),
        skill_names=NAMES,
    )
    # go-testing closes 2 levels in 60 minutes; sql-indexes then needs 90 of the 60 left.
    assert keys(plan) == ["go-testing"]
    assert plan.minutes_used == 60 <= plan.budget_minutes == 120
    assert plan.deferred == (
        DeferredModule(
            curriculum_id="backend",
            curriculum_version=1,
            key="sql-indexes",
            title="Sql Indexes",
            minutes=90,
            closes=(GapClosure("sql", 3, 4, ROLE),),
            requires=(),
            minutes_over_budget=30,
            reason=f"would close SQL 3→4 ({ROLE}) but needs 30 min beyond the budget",
        ),
    )
    assert plan.remaining_gaps == (SkillGap("sql", 3, 4, (ROLE,)),)


def test_a_deferred_module_says_which_prerequisites_it_would_bring() -> None:
    modules = (
        offer("sql-intro", minutes=60),
        offer("sql-tuning", "sql-intro", minutes=240, teaches={"sql": 5}),
    )
    plan = plan_track(
        (TargetLevel("sql", 5, ROLE),), (CurrentLevel("sql", 3, 0.3),), modules, hours(2)
    )
    # The introduction closes nothing by itself, so it is not planned for nothing.
    assert plan.modules == ()
    (deferred,) = plan.deferred
    assert deferred.key == "sql-tuning"
    assert deferred.requires == ("sql-intro",)
    assert deferred.minutes_over_budget == 180
    assert deferred.reason == (
        f"would close sql 3→5 ({ROLE}) with its prerequisites 'sql-intro' (300 min in all) "
        "but needs 180 min beyond the budget"
    )


def test_a_prerequisite_without_gain_is_planned_only_to_unlock_a_module() -> None:
    modules = (
        offer("platform-onboarding", minutes=30, teaches={"go": 1}),
        offer("k8s-operators", "platform-onboarding", minutes=60, teaches={"k8s": 4}),
        offer("cluster-tour", minutes=30),  # required by nothing planned: never planned
    )
    plan = plan_track(
        (TargetLevel("k8s", 4, GOAL), TargetLevel("go", 1, ROLE)),
        (CurrentLevel("k8s", 2, 0.5), CurrentLevel("go", 3, 0.2)),
        modules,
        hours(2),
        skill_names=NAMES,
    )
    assert keys(plan) == ["platform-onboarding", "k8s-operators"]
    onboarding = plan.modules[0]
    assert onboarding.closes == ()
    assert onboarding.reason == "prerequisite of 'k8s-operators'"
    assert onboarding.unlocks == ("k8s-operators",)


def test_a_prerequisite_that_also_closes_a_gap_says_both() -> None:
    modules = (
        offer("go-basics", minutes=30, teaches={"go": 2}),
        offer("go-services", "go-basics", minutes=60, teaches={"go": 4}),
    )
    plan = plan_track((TargetLevel("go", 4, ROLE),), (), modules, hours(2), skill_names=NAMES)
    assert [m.reason for m in plan.modules] == [
        f"closes Go 0→2, required by {ROLE} (no evidence of this skill yet); "
        "also prerequisite of 'go-services'",
        f"closes Go 2→4, required by {ROLE}",
    ]


def test_reasons_name_the_skill_the_levels_the_source_and_the_measurement() -> None:
    plan = plan_track(
        (TargetLevel("k8s", 4, GOAL),),
        (CurrentLevel("k8s", 2, 0.41),),
        (offer("k8s-operators", teaches={"k8s": 5}),),
        hours(2),
        skill_names=NAMES,
    )
    (module,) = plan.modules
    assert (
        module.reason
        == f"closes Kubernetes 2→4, required by {GOAL} (level 2 measured with SE 0.41)"
    )
    assert module.closes == (GapClosure("k8s", 2, 4, GOAL),)
    # Without names the skill code is used.
    plain = plan_track(
        (TargetLevel("k8s", 4, GOAL),),
        (CurrentLevel("k8s", 2, 0.41),),
        (offer("k8s-operators", teaches={"k8s": 5}),),
        hours(2),
    )
    assert plain.modules[0].reason.startswith("closes k8s 2→4, required by goal G2")


def test_a_goal_above_the_role_profile_raises_the_target_and_both_are_cited() -> None:
    targets = (TargetLevel("k8s", 3, ROLE), TargetLevel("k8s", 4, GOAL))
    modules = (
        offer("k8s-workloads", minutes=60, teaches={"k8s": 3}),
        offer("k8s-operators", "k8s-workloads", minutes=60, teaches={"k8s": 4}),
    )
    plan = plan_track(targets, (CurrentLevel("k8s", 2, 0.3),), modules, hours(2))
    assert plan.targets == (SkillGap("k8s", 2, 4, (GOAL, ROLE)),)
    assert [m.closes for m in plan.modules] == [
        (GapClosure("k8s", 2, 3, f"{GOAL} and {ROLE}"),),
        (GapClosure("k8s", 3, 4, GOAL),),  # the role profile asks for no more than 3
    ]
    # A goal below the role profile changes nothing: the higher level wins.
    lower = plan_track(
        (TargetLevel("k8s", 3, ROLE), TargetLevel("k8s", 2, "goal G1: Kubernetes 2")),
        (CurrentLevel("k8s", 2, 0.3),),
        modules,
        hours(2),
    )
    assert keys(lower) == ["k8s-workloads"]
    assert lower.targets == (SkillGap("k8s", 2, 3, (ROLE, "goal G1: Kubernetes 2")),)


def test_modules_in_progress_are_kept_first_even_without_gain_or_budget() -> None:
    modules = (
        offer("go-testing", minutes=60, teaches={"go": 3}),
        offer("sql-basics", minutes=120, teaches={"sql": 2}),
        offer("team-rituals", minutes=90),
    )
    plan = plan_track(
        (TargetLevel("go", 3, ROLE), TargetLevel("sql", 2, ROLE)),
        (CurrentLevel("go", 1, 0.3),),
        modules,
        hours(5),
        in_progress=frozenset({("backend", "team-rituals"), ("backend", "sql-basics")}),
    )
    assert keys(plan) == ["sql-basics", "team-rituals", "go-testing"]
    assert [m.in_progress for m in plan.modules] == [True, True, False]
    assert plan.modules[0].reason == (
        f"in progress; closes sql 0→2, required by {ROLE} (no evidence of this skill yet)"
    )
    assert plan.modules[1].reason == "in progress"
    # In-progress modules use up 210 of the 180 minutes: nothing else fits.
    squeezed = plan_track(
        (TargetLevel("go", 3, ROLE),),
        (CurrentLevel("go", 1, 0.3),),
        modules,
        hours(3),
        in_progress=frozenset({("backend", "team-rituals"), ("backend", "sql-basics")}),
    )
    assert keys(squeezed) == ["sql-basics", "team-rituals"]
    assert squeezed.minutes_used == 210
    assert squeezed.deferred[0].minutes_over_budget == 90


def test_completed_modules_are_never_planned_and_count_as_prerequisites() -> None:
    modules = (
        offer("k8s-basics", minutes=60, teaches={"k8s": 2}),
        offer("k8s-operators", "k8s-basics", minutes=60, teaches={"k8s": 4}),
    )
    plan = plan_track(
        (TargetLevel("k8s", 4, GOAL),),
        # The profile already reflects the completed module; nothing is counted twice.
        (CurrentLevel("k8s", 1, 0.6),),
        modules,
        hours(1),
        done=frozenset({("backend", "k8s-basics")}),
    )
    assert keys(plan) == ["k8s-operators"]
    assert plan.modules[0].closes == (GapClosure("k8s", 1, 4, GOAL),)


def test_the_pinned_version_wins_when_versions_are_equally_good() -> None:
    pinned = offer("go-testing", teaches={"go": 3}, version=2, preferred=True)
    newer = offer("go-testing", teaches={"go": 3}, version=3)
    for modules in ((pinned, newer), (newer, pinned)):
        plan = plan_track((TargetLevel("go", 3, ROLE),), (), modules, hours(5))
        assert [(m.key, m.curriculum_version) for m in plan.modules] == [("go-testing", 2)]
        assert plan.deferred == ()  # the other version is the same module, not an option
    # The preferred curriculum wins over another one with an equal module, whatever its name.
    other = offer("go-testing", teaches={"go": 3}, curriculum="aaa-catalogue")
    cohort = offer("go-testing", teaches={"go": 3}, curriculum="zzz-cohort", preferred=True)
    plan = plan_track((TargetLevel("go", 3, ROLE),), (), (other, cohort), hours(5))
    assert [m.curriculum_id for m in plan.modules] == ["zzz-cohort"]
    # Equally good otherwise, the order of (curriculum id, key) decides.
    plain = replace(cohort, preferred=False)
    plan = plan_track((TargetLevel("go", 3, ROLE),), (), (plain, other), hours(5))
    assert [m.curriculum_id for m in plan.modules] == ["aaa-catalogue"]


def test_a_better_version_beats_the_pinned_one() -> None:
    pinned = offer("go-testing", minutes=120, teaches={"go": 3}, version=2, preferred=True)
    newer = offer("go-testing", minutes=60, teaches={"go": 3}, version=3)
    plan = plan_track((TargetLevel("go", 3, ROLE),), (), (pinned, newer), hours(5))
    assert [(m.key, m.curriculum_version) for m in plan.modules] == [("go-testing", 3)]


def test_the_less_certain_skill_goes_first_when_modules_are_equally_good() -> None:
    modules = (
        offer("go-testing", teaches={"go": 3}),
        offer("sql-indexes", teaches={"sql": 3}),
    )
    targets = (TargetLevel("go", 3, ROLE), TargetLevel("sql", 3, ROLE))
    sure_of_go = plan_track(
        targets, (CurrentLevel("go", 2, 0.2), CurrentLevel("sql", 2, 0.7)), modules, hours(1)
    )
    assert keys(sure_of_go) == ["sql-indexes"]
    sure_of_sql = plan_track(
        targets, (CurrentLevel("go", 2, 0.7), CurrentLevel("sql", 2, 0.2)), modules, hours(1)
    )
    assert keys(sure_of_sql) == ["go-testing"]
    # A skill missing from the profile is the least certain of all.
    unknown_sql = plan_track(targets, (CurrentLevel("go", 2, 0.9),), modules, hours(1))
    assert [m.closes[0] for m in unknown_sql.modules] == [GapClosure("sql", 0, 3, ROLE)]


def test_nothing_to_close_gives_an_empty_plan_without_gaps() -> None:
    modules = (offer("go-testing", teaches={"go": 3}), offer("sql-basics", teaches={"sql": 2}))
    plan = plan_track(
        (TargetLevel("go", 3, ROLE),), (CurrentLevel("go", 5, 0.3),), modules, hours(5)
    )
    assert plan.modules == ()
    assert plan.deferred == ()
    assert plan.remaining_gaps == ()
    assert plan.minutes_used == 0
    assert plan.targets == (SkillGap("go", 5, 3, (ROLE,)),)


def test_an_open_gap_no_module_closes_stays_a_remaining_gap() -> None:
    plan = plan_track(
        (TargetLevel("go", 5, ROLE), TargetLevel("k8s", 4, GOAL)),
        (CurrentLevel("go", 1, 0.3),),
        (offer("go-testing", teaches={"go": 3}),),
        hours(5),
    )
    # The level is the one the plan reaches, not today's.
    assert plan.remaining_gaps == (
        SkillGap("go", 3, 5, (ROLE,)),
        SkillGap("k8s", 0, 4, (GOAL,)),
    )


def test_a_module_whose_prerequisite_is_unavailable_is_not_planned() -> None:
    modules = (offer("k8s-operators", "k8s-basics", teaches={"k8s": 4}),)
    plan = plan_track((TargetLevel("k8s", 4, GOAL),), (), modules, hours(5))
    assert plan.modules == ()
    assert plan.deferred == ()
    assert plan.remaining_gaps == (SkillGap("k8s", 0, 4, (GOAL,)),)


def test_a_module_made_redundant_by_a_later_one_is_dropped() -> None:
    # Greedy by gain per minute takes the cheap basics first (2 levels in 25 minutes), then
    # the deep dive (2 more in 60); the deep dive alone closes all 4, so basics only costs.
    modules = (
        offer("sql-basics", minutes=25, teaches={"sql": 2}),
        offer("sql-deep-dive", minutes=60, teaches={"sql": 4}),
    )
    plan = plan_track((TargetLevel("sql", 4, ROLE),), (), modules, hours(2))
    assert keys(plan) == ["sql-deep-dive"]
    assert plan.minutes_used == 60
    assert plan.deferred == ()


def test_local_search_finds_the_big_module_the_greedy_would_miss() -> None:
    # Per minute the small module is best (2 levels in 20 minutes against 5 in 100), but
    # once it is taken the big one no longer fits: taking the big one alone closes more.
    modules = (
        offer("go-quick-tips", minutes=20, teaches={"go": 2}),
        offer("k8s-bootcamp", minutes=100, teaches={"k8s": 5}),
    )
    plan = plan_track(
        (TargetLevel("go", 2, ROLE), TargetLevel("k8s", 5, GOAL)),
        (),
        modules,
        Constraints(1, START, START + timedelta(days=7)),  # 60 minutes a week...
    )
    assert plan.budget_minutes == 60
    assert keys(plan) == ["go-quick-tips"]
    roomier = plan_track(
        (TargetLevel("go", 2, ROLE), TargetLevel("k8s", 5, GOAL)),
        (),
        modules,
        Constraints(1.75, START, START + timedelta(days=7)),  # ...or 105
    )
    assert keys(roomier) == ["k8s-bootcamp"]
    assert roomier.deferred[0].key == "go-quick-tips"


def random_catalogue(rng: random.Random) -> tuple[CandidateModule, ...]:
    modules = []
    for curriculum in ("backend", "platform", "data"):
        for version in (1, 2):
            for n in range(6):
                earlier = [f"{curriculum}-{k}" for k in range(n)]
                modules.append(
                    offer(
                        f"{curriculum}-{n}",
                        *rng.sample(earlier, min(len(earlier), rng.randint(0, 2))),
                        minutes=rng.choice((30, 60, 90, 120)),
                        teaches={s: rng.randint(1, 7) for s in rng.sample(["go", "sql", "k8s"], 2)},
                        curriculum=curriculum,
                        version=version,
                        preferred=version == 1 and curriculum != "data",
                    )
                )
    return tuple(modules)


def test_the_same_inputs_in_any_order_give_the_same_plan() -> None:
    rng = random.Random(7)
    for _ in range(10):
        modules = random_catalogue(rng)
        targets = (
            TargetLevel("go", rng.randint(3, 7), ROLE),
            TargetLevel("sql", rng.randint(3, 7), ROLE),
            TargetLevel("k8s", rng.randint(3, 7), GOAL),
            TargetLevel("k8s", 4, ROLE),
        )
        current = (CurrentLevel("go", rng.randint(0, 3), 0.4), CurrentLevel("sql", 1, 0.3))
        constraints = hours(rng.choice((1, 2, 4)), weeks=3)
        done = frozenset({("backend", "backend-0")})
        first = plan_track(targets, current, modules, constraints, done=done)
        assert plan_track(targets, current, modules, constraints, done=done) == first
        for _ in range(5):
            shuffled = list(modules)
            rng.shuffle(shuffled)
            again = plan_track(
                tuple(reversed(targets)),
                tuple(reversed(current)),
                tuple(shuffled),
                constraints,
                done=done,
            )
            assert again == first
        assert first.minutes_used <= first.budget_minutes
        planned = {m.ref for m in first.modules} | done
        for module in first.modules:
            spec = next(
                c.module
                for c in modules
                if (c.ref, c.curriculum_version) == (module.ref, module.curriculum_version)
            )
            earlier = {m.ref for m in first.modules if m.order < module.order} | done
            assert {(module.curriculum_id, p) for p in spec.prerequisites} <= earlier
        assert len(planned) == len(first.modules) + len(done)  # one version of each module


def test_candidates_offered_once_to_many_tracks_plan_each_as_alone() -> None:
    """A release plans every track from one ``Offered``: each plan is the one its inputs
    give alone, whatever the tracks before it had done, under way or targeted."""
    rng = random.Random(11)
    modules = random_catalogue(rng)
    offered = Offered.of(modules)
    for _ in range(30):
        targets = (
            TargetLevel("go", rng.randint(1, 7), ROLE),
            TargetLevel("k8s", rng.randint(1, 7), GOAL),
        )
        current = (CurrentLevel("go", rng.randint(0, 3), 0.4), CurrentLevel("sql", 1, 0.3))
        refs = sorted({c.ref for c in modules})
        done = frozenset(rng.sample(refs, rng.randint(0, 2)))
        in_progress = frozenset(rng.sample(refs, rng.randint(0, 1)))
        constraints = hours(rng.choice((1, 2, 4)), weeks=3)
        alone = plan_track(
            targets, current, modules, constraints, done=done, in_progress=in_progress
        )
        shared = plan_track(
            targets, current, offered, constraints, done=done, in_progress=in_progress
        )
        assert shared == alone


def test_invalid_inputs_are_rule_violations() -> None:
    module = offer("go-testing", teaches={"go": 3})
    with pytest.raises(RuleViolated):
        plan_track((TargetLevel("go", 9, ROLE),), (), (module,), hours(1))
    with pytest.raises(RuleViolated):
        plan_track((TargetLevel("go", 3, " "),), (), (module,), hours(1))
    with pytest.raises(RuleViolated):
        plan_track(
            (TargetLevel("go", 3, ROLE),),
            (CurrentLevel("go", 1, 0.3), CurrentLevel("go", 2, 0.3)),
            (module,),
            hours(1),
        )
    with pytest.raises(RuleViolated):
        plan_track(
            (TargetLevel("go", 3, ROLE),),
            (),
            (module, offer("go-testing", minutes=90, teaches={"go": 3})),
            hours(1),
        )


# --- diff_plans ---------------------------------------------------------------------------------

TARGETS = (TargetLevel("go", 3, ROLE), TargetLevel("sql", 4, ROLE), TargetLevel("k8s", 4, GOAL))
CATALOGUE = (
    offer("go-testing", minutes=60, teaches={"go": 3}),
    offer("sql-indexes", minutes=60, teaches={"sql": 4}),
    offer("k8s-operators", minutes=120, teaches={"k8s": 4}),
)
PROFILE = (CurrentLevel("go", 1, 0.3), CurrentLevel("sql", 2, 0.3), CurrentLevel("k8s", 2, 0.3))


def test_a_first_plan_is_all_additions() -> None:
    plan = plan_track(TARGETS, PROFILE, CATALOGUE, hours(4))
    diff = diff_plans(None, plan)
    assert diff == PlanDiff(
        added=tuple((m.ref, m.reason) for m in plan.modules), removed=(), reordered=()
    )
    assert diff_plans(plan, plan) == PlanDiff((), (), ())


def test_removed_modules_say_why() -> None:
    old = plan_track(TARGETS, PROFILE, CATALOGUE, hours(4))
    assert keys(old) == ["go-testing", "sql-indexes", "k8s-operators"]

    completed = plan_track(
        TARGETS, PROFILE, CATALOGUE, hours(4), done=frozenset({("backend", "go-testing")})
    )
    assert diff_plans(old, completed, done=frozenset({("backend", "go-testing")})).removed == (
        (("backend", "go-testing"), "completed"),
    )

    tighter = plan_track(TARGETS, PROFILE, CATALOGUE, hours(2))
    assert diff_plans(old, tighter).removed == (
        (("backend", "k8s-operators"), "no longer fits the budget"),
    )

    untargeted = plan_track(TARGETS[:2], PROFILE, CATALOGUE, hours(4))
    assert diff_plans(old, untargeted).removed == (
        (("backend", "k8s-operators"), "target removed"),
    )

    assessed = (PROFILE[0], CurrentLevel("sql", 4, 0.3), PROFILE[2])
    closed = plan_track(TARGETS, assessed, CATALOGUE, hours(4))
    assert diff_plans(old, closed).removed == (
        (("backend", "sql-indexes"), "gap already closed by other evidence"),
    )

    better = (*CATALOGUE, offer("sql-cookbook", minutes=30, teaches={"sql": 4}))
    superseded = plan_track(TARGETS, PROFILE, better, hours(4))
    diff = diff_plans(old, superseded)
    assert diff.removed == ((("backend", "sql-indexes"), "superseded by 'sql-cookbook'"),)
    assert [ref for ref, _ in diff.added] == [("backend", "sql-cookbook")]
    assert diff.added[0][1].startswith("closes sql 2→4")

    gone = plan_track(TARGETS, PROFILE, CATALOGUE[:2], hours(4))
    assert diff_plans(old, gone).removed == ((("backend", "k8s-operators"), "no longer available"),)


def test_reordered_lists_only_the_modules_that_moved() -> None:
    old = plan_track(TARGETS, PROFILE, CATALOGUE, hours(4))
    assert keys(old) == ["go-testing", "sql-indexes", "k8s-operators"]
    # A new module first shifts every number, but nothing moved relative to the rest.
    onboarding = frozenset({("backend", "onboarding")})
    more = (*CATALOGUE, offer("onboarding", minutes=30))
    shifted = plan_track(TARGETS, PROFILE, more, hours(5), in_progress=onboarding)
    assert keys(shifted) == ["onboarding", "go-testing", "sql-indexes", "k8s-operators"]
    assert diff_plans(old, shifted) == PlanDiff(
        added=((("backend", "onboarding"), "in progress"),), removed=(), reordered=()
    )
    # k8s-operators in progress jumps to the front: only it moved.
    moved = plan_track(
        TARGETS, PROFILE, CATALOGUE, hours(4), in_progress=frozenset({("backend", "k8s-operators")})
    )
    assert keys(moved) == ["k8s-operators", "go-testing", "sql-indexes"]
    assert diff_plans(old, moved).reordered == ((("backend", "k8s-operators"), 3, 1),)


def test_replan_plans_afresh_and_reports_the_difference() -> None:
    old = plan_track(TARGETS, PROFILE, CATALOGUE, hours(4))
    done = frozenset({("backend", "go-testing")})
    plan, diff = replan(
        old, TARGETS, (CurrentLevel("go", 3, 0.3), *PROFILE[1:]), CATALOGUE, hours(4), done=done
    )
    assert plan == plan_track(
        TARGETS, (CurrentLevel("go", 3, 0.3), *PROFILE[1:]), CATALOGUE, hours(4), done=done
    )
    assert diff.removed == ((("backend", "go-testing"), "completed"),)
    assert diff.added == ()
    assert diff.reordered == ()


def test_a_long_prerequisite_chain_is_planned_in_order() -> None:
    # 60 modules in one chain: the local search runs into its work limit, and the plan must
    # still be complete, ordered and within the budget.
    rng = random.Random(3)
    modules = tuple(
        offer(
            f"step-{n:02d}",
            *([f"step-{n - 1:02d}"] if n else []),
            minutes=rng.choice((30, 60, 90)),
            teaches={s: rng.randint(1, 7) for s in rng.sample(["go", "sql", "k8s"], 2)},
        )
        for n in range(60)
    )
    targets = (TargetLevel("go", 7, ROLE), TargetLevel("sql", 7, ROLE), TargetLevel("k8s", 7, GOAL))
    for weekly in (2, 10, 60):
        plan = plan_track(targets, (), modules, hours(weekly))
        assert plan.minutes_used <= plan.budget_minutes
        steps = keys(plan)
        assert steps == sorted(steps)  # each step needs the one before it
        assert steps == [f"step-{n:02d}" for n in range(len(steps))]
        assert plan_track(targets, (), tuple(reversed(modules)), hours(weekly)) == plan
