"""Adaptive attempts, item banks, calibration versions, evidence and the skill profile."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest

from training.assessments.domain.attempts import AssessmentAttempt, AttemptStatus
from training.assessments.domain.items import Item, ItemBank, ItemCalibration, ItemKind, Option
from training.assessments.domain.profile import EVIDENCE_SE, Measurement, combine, theta_for_level
from training.assessments.domain.scoring import (
    DEFAULT_CUT_SCORES,
    ItemParameters,
    StopRule,
    probability_correct,
)
from training.assessments.domain.slots import AssessmentSlot
from training.core.errors import InvalidTransition, LimitReached, RuleViolated

TENANT = uuid.uuid4()
NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
OPTIONS = (Option("a", "one"), Option("b", "two"), Option("c", "three"), Option("d", "four"))


def item(
    item_id: str, kind: ItemKind = ItemKind.SINGLE_CHOICE, answer: tuple[str, ...] = ("b",)
) -> Item:
    return Item(item_id, "python", kind, "Which one?", None, OPTIONS, answer, 60)


def bank(n: int = 30) -> dict[str, tuple[Item, ItemParameters]]:
    return {
        f"py-{i:03d}": (
            item(f"py-{i:03d}"),
            ItemParameters(f"py-{i:03d}", -2.5 + 5 * i / (n - 1), 1.2),
        )
        for i in range(n)
    }


def attempt(seed: int = 11) -> AssessmentAttempt:
    return AssessmentAttempt.start(
        tenant_id=TENANT, member_id=uuid.uuid4(), skill="python", parameter_version=0, seed=seed
    )


def test_keys_are_checked_by_kind() -> None:
    assert item("x").is_correct(("b",))
    assert not item("x").is_correct(("a",))
    multi = item("m", ItemKind.MULTIPLE_CHOICE, ("a", "c"))
    assert multi.is_correct(("c", "a"))
    assert not multi.is_correct(("a",))
    order = item("o", ItemKind.ORDERING, ("c", "a", "d", "b"))
    assert order.is_correct(("c", "a", "d", "b"))
    assert not order.is_correct(("a", "c", "d", "b"))


def test_an_attempt_runs_until_the_stop_rule_and_replays_the_same_items() -> None:
    items = bank()
    parameters = {k: p for k, (_, p) in items.items()}
    rule = StopRule(0.45, 8, 25)
    run = attempt(seed=3)
    examinee = random.Random(5)
    now = NOW
    run.administer_next(items, now)
    while True:
        current = run.current_item
        assert current is not None
        correct = examinee.random() < probability_correct(0.7, parameters[current])
        assert run.answer(current, correct, now + dt.timedelta(seconds=20))
        if run.should_stop(parameters, rule) or run.administer_next(items, now) is None:
            result = run.complete(parameters, rule, DEFAULT_CUT_SCORES)
            break
    assert 8 <= result.items <= 25
    assert run.status is AttemptStatus.COMPLETED
    assert 1 <= result.level <= 7
    administered = [i for i, _, _ in run.administered]
    assert len(set(administered)) == len(administered)
    # Rebuilt from its events, the attempt has the same items and result.
    copy = None
    for event in run.collect_events():
        copy = event.mutate(copy)
    assert isinstance(copy, AssessmentAttempt)
    assert [i for i, _, _ in copy.administered] == administered
    assert copy.result == result


def test_an_answer_twice_is_recorded_once_and_a_late_answer_is_wrong() -> None:
    items = bank()
    run = attempt()
    first = run.administer_next(items, NOW)
    assert first is not None
    assert run.answer(first, True, NOW + dt.timedelta(seconds=10))
    assert not run.answer(first, True, NOW + dt.timedelta(seconds=11))
    assert len(run.responses) == 1
    second = run.administer_next(items, NOW)
    assert second is not None
    with pytest.raises(RuleViolated):
        run.answer("py-999", True, NOW)
    run.answer(second, True, NOW + dt.timedelta(minutes=5))  # the limit is 60 s
    assert run.responses[-1] == (second, False)


def test_an_attempt_expires_after_its_deadline_and_grace() -> None:
    run = attempt()
    run.administer_next(bank(), NOW)
    assert not run.is_expired(NOW + dt.timedelta(minutes=5))
    assert run.is_expired(NOW + dt.timedelta(minutes=12))
    run.time_out()
    with pytest.raises(InvalidTransition):
        run.abandon("too late")


def test_a_rescore_keeps_the_original_result() -> None:
    items = bank(12)
    parameters = {k: p for k, (_, p) in items.items()}
    run = attempt()
    for _ in range(8):
        current = run.administer_next(items, NOW)
        assert current is not None
        run.answer(current, True, NOW)
    original = run.complete(parameters, StopRule(0.45, 8, 25), DEFAULT_CUT_SCORES)
    harder = {
        k: ItemParameters(k, p.difficulty + 1.0, p.discrimination) for k, p in parameters.items()
    }
    again = run.rescore(harder, DEFAULT_CUT_SCORES, 1)
    assert run.result == original
    assert again.parameter_version == 1
    assert again.theta > original.theta  # the same right answers to harder items mean more
    with pytest.raises(InvalidTransition):
        run.rescore(harder, DEFAULT_CUT_SCORES, 1)


def test_one_attempt_at_a_time_and_a_retake_cool_down() -> None:
    slot = AssessmentSlot.open(TENANT, uuid.uuid4(), "python")
    first, second = uuid.uuid4(), uuid.uuid4()
    slot.begin(first, NOW, cooldown_days=14)
    with pytest.raises(InvalidTransition):
        slot.begin(second, NOW, cooldown_days=14)
    slot.end(first, completed=True, now=NOW)
    with pytest.raises(LimitReached) as raised:
        slot.begin(second, NOW + dt.timedelta(days=13), cooldown_days=14)
    assert "2026-12-06" in raised.value.detail
    slot.begin(second, NOW + dt.timedelta(days=14), cooldown_days=14)
    slot.end(second, completed=False, now=NOW + dt.timedelta(days=14))
    slot.begin(
        uuid.uuid4(), NOW + dt.timedelta(days=14), cooldown_days=14
    )  # abandoning costs no wait


def test_private_items_are_checked_and_versioned() -> None:
    private = ItemBank.open(TENANT)
    private.add(item("acme-1"), 0.5, 1.0, taken={"py-001"})
    with pytest.raises(RuleViolated):
        private.add(item("py-001"), 0.5, 1.0, taken={"py-001"})
    with pytest.raises(RuleViolated) as raised:
        private.add(item("acme-2", ItemKind.SINGLE_CHOICE, ("a", "b")), 0.0, 1.0, taken=set())
    assert raised.value.field == "answer"
    revised = private.revise(
        Item(
            "acme-1", "python", ItemKind.SINGLE_CHOICE, "Which one now?", None, OPTIONS, ("c",), 60
        )
    )
    assert revised.version == 2
    assert private.revise(revised).version == 2  # unchanged content: no new version


def test_calibration_versions_count_up() -> None:
    versions = ItemCalibration.open(TENANT)
    assert versions.current_version == 0
    assert versions.publish((ItemParameters("py-001", 0.3, 1.0),), responses_used=400) == 1
    assert versions.publish((ItemParameters("py-001", 0.4, 1.0),), responses_used=800) == 2
    assert versions.versions[1]["py-001"].difficulty == 0.3


def test_evidence_weighs_less_than_an_assessment() -> None:
    assessed = Measurement("assessment", "a1", 1.5, 0.4, NOW)
    review = Measurement(
        "code_review", "e1", theta_for_level(2, DEFAULT_CUT_SCORES), EVIDENCE_SE, NOW
    )
    entry = combine("python", [assessed, review], NOW, DEFAULT_CUT_SCORES)
    assert entry is not None
    # Pulled towards the review, but much closer to the assessment.
    assert review.theta < entry.theta < assessed.theta
    assert abs(entry.theta - assessed.theta) < abs(entry.theta - review.theta)
    assert entry.se < assessed.se


def test_the_profile_as_of_a_date_ignores_later_sources() -> None:
    early = Measurement("assessment", "a1", -0.5, 0.45, NOW - dt.timedelta(days=60))
    later = Measurement("assessment", "a2", 1.2, 0.45, NOW)
    before = combine("python", [early, later], NOW - dt.timedelta(days=1), DEFAULT_CUT_SCORES)
    after = combine("python", [early, later], NOW, DEFAULT_CUT_SCORES)
    assert before is not None
    assert after is not None
    assert before.theta == -0.5
    assert after.theta == 1.2  # the latest assessment supersedes the earlier one
    assert combine("python", [later], NOW - dt.timedelta(days=1), DEFAULT_CUT_SCORES) is None


def test_level_midpoints_sit_inside_their_bands() -> None:
    for level in range(1, 8):
        assert DEFAULT_CUT_SCORES.level_for(theta_for_level(level, DEFAULT_CUT_SCORES)) == level


def test_an_estimate_carried_from_the_answer_chooses_and_scores_as_one_computed() -> None:
    items = bank()
    parameters = {k: p for k, (_, p) in items.items()}
    rule = StopRule(0.45, 8, 25)
    carried, computed = attempt(seed=9), attempt(seed=9)
    for run in (carried, computed):
        run.administer_next(items, NOW)
    while carried.status is AttemptStatus.IN_PROGRESS:
        current = carried.current_item
        assert current is not None
        assert current == computed.current_item
        for run in (carried, computed):
            run.answer(current, current < "py-015", NOW)
        estimate = carried.estimate_with(parameters)
        if rule.should_stop(estimate):
            assert computed.should_stop(parameters, rule)
            assert carried.complete(parameters, rule, DEFAULT_CUT_SCORES, None, estimate) == (
                computed.complete(parameters, rule, DEFAULT_CUT_SCORES)
            )
        else:
            carried.administer_next(items, NOW, estimate)
            computed.administer_next(items, NOW)
    assert carried.administered == computed.administered
    assert computed.status is AttemptStatus.COMPLETED


def test_an_estimate_that_misses_a_response_is_refused() -> None:
    items = bank()
    parameters = {k: p for k, (_, p) in items.items()}
    run = attempt()
    first = run.administer_next(items, NOW)
    assert first is not None
    before = run.estimate_with(parameters)
    run.answer(first, True, NOW)
    with pytest.raises(ValueError, match="every response"):
        run.administer_next(items, NOW, before)
