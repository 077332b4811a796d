"""Points behind a plan: what was due by today and is not done, as a share of the plan."""

from __future__ import annotations

from datetime import date

from training.planning.domain.progress import PlannedModule, at_risk, points_behind

TODAY = date(2026, 12, 7)


def module(minutes: int, due: str, state: str = "planned") -> PlannedModule:
    return PlannedModule(minutes, date.fromisoformat(due), state)


def test_nothing_due_yet_is_on_schedule() -> None:
    assert points_behind([module(60, "2026-12-20")], TODAY) == 0


def test_due_and_not_done_counts_by_learning_time() -> None:
    plan = [module(30, "2026-12-01"), module(70, "2026-12-30")]
    assert points_behind(plan, TODAY) == 30
    assert at_risk(plan, TODAY, threshold=20)
    assert not at_risk(plan, TODAY, threshold=30)


def test_work_done_ahead_of_time_makes_up_for_what_is_late() -> None:
    plan = [
        module(30, "2026-12-01"),
        module(30, "2026-12-30", "completed"),
        module(40, "2027-01-10"),
    ]
    assert points_behind(plan, TODAY) == 0


def test_skipped_and_completed_modules_are_done() -> None:
    plan = [module(50, "2026-12-01", "skipped"), module(50, "2026-12-02", "completed")]
    assert points_behind(plan, TODAY) == 0


def test_an_empty_plan_is_never_behind() -> None:
    assert points_behind([], TODAY) == 0
    assert points_behind([module(0, "2026-01-01")], TODAY) == 0
