"""Assessment scoring: the 2PL model, EAP estimates, stopping, item selection and calibration.

Expected values are worked out by hand in the comments, or by an integration written here
independently of the module (its own logistic, its own normal density, a much finer grid).
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from training.assessments.domain.scoring import (
    DEFAULT_CUT_SCORES,
    QUADRATURE,
    CutScores,
    Estimate,
    ItemParameters,
    Response,
    StopRule,
    calibrate_difficulties,
    elo_k,
    elo_update,
    estimate,
    information,
    percentile_rank,
    probability_correct,
    select_item,
)
from training.core.errors import RuleViolated

MIDDLE = ItemParameters("middle", difficulty=0.0)


def item(item_id: str, difficulty: float, discrimination: float = 1.0) -> ItemParameters:
    return ItemParameters(item_id, difficulty, discrimination)


def fine_posterior(correct: bool, points: int = 10_001) -> tuple[float, float]:
    """Posterior mean and SD after one answer to a=1, b=0 with a N(0, 1) prior.

    Trapezoid rule on [-8, 8] with 10,001 points (step 0.0016): the N(0, 1) density is
    below 1e-14 at the ends, so the cut-off and the step both cost far less than 1e-6.
    """
    lo, hi = -8.0, 8.0
    step = (hi - lo) / (points - 1)
    mass = first = second = 0.0
    for i in range(points):
        theta = lo + i * step
        weight = 0.5 if i in (0, points - 1) else 1.0
        p = 1.0 / (1.0 + math.exp(-theta))
        density = math.exp(-0.5 * theta * theta) * (p if correct else 1.0 - p) * weight
        mass += density
        first += density * theta
        second += density * theta * theta
    mean = first / mass
    return mean, math.sqrt(second / mass - mean * mean)


# --- the 2PL model ---------------------------------------------------------------------------


def test_an_item_at_the_examinees_ability_is_a_coin_flip_and_most_informative() -> None:
    # P(0) = 1 / (1 + e^0) = 0.5; I = a^2 P (1 - P) = 1 * 0.5 * 0.5 = 0.25.
    assert probability_correct(0.0, MIDDLE) == 0.5
    assert information(0.0, MIDDLE) == 0.25
    # One logit above b: P = 1 / (1 + e^-1) = 0.7310585786; I = 0.7310586 * 0.2689414.
    assert probability_correct(1.0, MIDDLE) == pytest.approx(0.7310585786, abs=1e-10)
    assert information(1.0, MIDDLE) == pytest.approx(0.1966119332, abs=1e-10)
    # a = 2, b = 0.5 at theta = 1: a (theta - b) = 1, the same P; I = 4 * 0.1966119 = 0.7864477.
    sharp = item("sharp", 0.5, 2.0)
    assert probability_correct(1.0, sharp) == pytest.approx(0.7310585786, abs=1e-10)
    assert information(1.0, sharp) == pytest.approx(0.7864477329, abs=1e-10)
    # The most an item can tell is a^2 / 4, at theta = b.
    assert information(0.5, sharp) == 1.0


def test_the_model_is_safe_far_from_the_item() -> None:
    assert probability_correct(1000.0, MIDDLE) == 1.0
    assert probability_correct(-1000.0, MIDDLE) == 0.0
    assert information(1000.0, MIDDLE) == 0.0
    assert information(-1000.0, MIDDLE) == 0.0
    # 1 - P is not lost to rounding where P is close to 1: e^-30 = 9.36e-14.
    assert 1.0 - probability_correct(30.0, MIDDLE) == pytest.approx(9.357622968839e-14, rel=1e-3)
    assert information(30.0, MIDDLE) == pytest.approx(9.357622968839e-14, rel=1e-6)


def test_item_parameters_are_checked() -> None:
    with pytest.raises(RuleViolated) as raised:
        item("x", 0.0, 0.0)
    assert raised.value.field == "discrimination"
    with pytest.raises(RuleViolated) as raised:
        item("x", math.nan)
    assert raised.value.field == "difficulty"
    with pytest.raises(RuleViolated) as raised:
        item("", 0.0)
    assert raised.value.field == "item_id"


# --- EAP -------------------------------------------------------------------------------------


def test_the_quadrature_is_81_points_evenly_spread_on_minus_4_to_4() -> None:
    assert len(QUADRATURE) == 81
    assert (QUADRATURE[0], QUADRATURE[40], QUADRATURE[-1]) == (-4.0, 0.0, 4.0)
    assert all(abs(b - a - 0.1) < 1e-12 for a, b in itertools.pairwise(QUADRATURE))
    assert all(x == -y for x, y in zip(QUADRATURE, reversed(QUADRATURE), strict=True))


def test_without_answers_the_estimate_is_the_prior() -> None:
    assert estimate([]) == Estimate(0.0, 1.0, 0)
    assert estimate([], prior_mean=1.2, prior_sd=0.8) == Estimate(1.2, 0.8, 0)


def test_one_correct_answer_matches_an_independent_integration() -> None:
    expected_mean, expected_sd = fine_posterior(correct=True)
    # Cross-check of the integration by Stein's lemma: with theta ~ N(0, 1) and P the
    # logistic, E[theta | correct] = E[theta P] / E[P] = E[P'] / (1/2) = 2 E[P (1 - P)],
    # which is about 0.41 (2 x 0.2066), well short of a full logit: one answer says little.
    stein = 2 * fine_expectation_of_information()
    assert expected_mean == pytest.approx(stein, abs=1e-9)
    assert 0.40 < expected_mean < 0.42
    result = estimate([Response(MIDDLE, correct=True)])
    assert result.items == 1
    assert result.theta == pytest.approx(expected_mean, abs=1e-3)
    assert result.se == pytest.approx(expected_sd, abs=1e-3)
    # One answer leaves the SE just below the prior's 1.
    assert 0.85 < result.se < 1.0


def fine_expectation_of_information(points: int = 10_001) -> float:
    """E[P (1 - P)] for theta ~ N(0, 1), trapezoid rule on [-8, 8]."""
    step = 16.0 / (points - 1)
    total = 0.0
    for i in range(points):
        theta = -8.0 + i * step
        p = 1.0 / (1.0 + math.exp(-theta))
        weight = 0.5 if i in (0, points - 1) else 1.0
        total += weight * p * (1 - p) * math.exp(-0.5 * theta * theta)
    return total * step / math.sqrt(2 * math.pi)


def test_a_right_and_a_wrong_answer_are_mirror_images() -> None:
    right = estimate([Response(MIDDLE, correct=True)])
    wrong = estimate([Response(MIDDLE, correct=False)])
    assert right.theta > 0
    assert wrong.theta == pytest.approx(-right.theta, abs=1e-12)
    assert wrong.se == pytest.approx(right.se, abs=1e-12)
    assert fine_posterior(correct=False)[0] == pytest.approx(wrong.theta, abs=1e-3)


def test_the_se_shrinks_as_informative_items_accumulate() -> None:
    # Alternating right and wrong answers near b = 0 keep theta_hat near 0, where every
    # item is informative; the posterior SD must fall with each answer.
    responses = [
        Response(item(f"i{n}", (-1) ** n * 0.1 * (n % 3)), correct=n % 2 == 0) for n in range(30)
    ]
    ses = [estimate(responses[:n]).se for n in range(31)]
    assert all(later < earlier for earlier, later in itertools.pairwise(ses))
    # Fisher information adds up: 1 (prior) + about 30 x 0.25, so SE ~ 1 / sqrt(8.5) = 0.34.
    assert ses[-1] == pytest.approx(1 / math.sqrt(8.5), abs=0.02)


def test_more_correct_answers_raise_the_estimate() -> None:
    items = [item(f"i{n}", -2.0 + 0.4 * n, 0.8 + 0.1 * n) for n in range(10)]
    thetas = [
        estimate([Response(it, correct=n < right) for n, it in enumerate(items)]).theta
        for right in range(11)
    ]
    assert all(later > earlier for earlier, later in itertools.pairwise(thetas))
    assert thetas[0] < -1.5
    assert thetas[-1] > 1.5


def test_a_long_run_of_unlikely_answers_does_not_underflow() -> None:
    # 200 wrong answers to items 4 logits below the prior mean: the likelihood at theta = 4
    # is about (e^-8)^200 = e^-1600, far below the smallest double.
    easy = [Response(item(f"e{n}", -4.0, 2.0), correct=False) for n in range(200)]
    result = estimate(easy)
    assert math.isfinite(result.theta)
    assert math.isfinite(result.se)
    assert result.theta < -3.9


def test_the_prior_pulls_the_estimate_and_must_be_sensible() -> None:
    answers = [Response(MIDDLE, correct=True)]
    assert estimate(answers, prior_mean=1.0).theta > estimate(answers).theta
    assert estimate(answers, prior_sd=0.5).se < estimate(answers).se
    with pytest.raises(RuleViolated) as raised:
        estimate(answers, prior_sd=0.0)
    assert raised.value.field == "prior_sd"
    with pytest.raises(RuleViolated) as raised:
        estimate(answers, prior_mean=math.inf)
    assert raised.value.field == "prior_mean"


# --- stopping --------------------------------------------------------------------------------


def test_the_stop_rule_needs_the_floor_and_the_se_or_the_ceiling() -> None:
    rule = StopRule(se_target=0.45, min_items=8, max_items=25)
    assert not rule.should_stop(Estimate(0.0, 0.30, 7))  # precise, but below the floor
    assert rule.should_stop(Estimate(0.0, 0.45, 8))  # at the floor and exactly on target
    assert not rule.should_stop(Estimate(0.0, 0.46, 8))
    assert not rule.should_stop(Estimate(0.0, 0.60, 24))
    assert rule.should_stop(Estimate(0.0, 0.60, 25))  # the ceiling, however imprecise
    assert rule.reason(Estimate(0.0, 0.30, 7)).startswith("continue")
    assert "target" in rule.reason(Estimate(0.0, 0.44, 12))
    assert "maximum of 25" in rule.reason(Estimate(0.0, 0.60, 25))
    assert rule.reason(Estimate(0.0, 0.60, 12)).startswith("continue")
    assert StopRule() == rule


def test_the_stop_rule_is_checked() -> None:
    with pytest.raises(RuleViolated) as raised:
        StopRule(se_target=0.0)
    assert raised.value.field == "se_target"
    with pytest.raises(RuleViolated) as raised:
        StopRule(min_items=10, max_items=9)
    assert raised.value.field == "max_items"


# --- item selection --------------------------------------------------------------------------

BANK = tuple(item(f"q{n:02d}", -2.5 + 0.25 * n) for n in range(21))  # b = -2.5 .. 2.5


def test_selection_picks_an_informative_item_near_theta() -> None:
    at = Estimate(0.6, 0.5, 3)
    # With equal discriminations information falls with |theta - b|: the best is b = 0.5.
    best = select_item(at, BANK, set(), random.Random(1), randomesque=1)
    assert best is not None
    assert best.difficulty == 0.5
    # Randomesque 5 draws among the five closest: b in 0.0 .. 1.0.
    for seed in range(50):
        chosen = select_item(at, BANK, set(), random.Random(seed), randomesque=5)
        assert chosen is not None
        assert 0.0 <= chosen.difficulty <= 1.0


def test_selection_prefers_a_discriminating_item() -> None:
    # At theta = 0: the a = 1 item at b = 0 gives 0.25; the a = 2 item at b = 0.5 gives
    # 4 x P(-1) (1 - P(-1)) = 0.786, so it tells more even though it is off-target.
    sharp = item("sharp", 0.5, 2.0)
    assert select_item(Estimate(0.0, 1.0, 0), [MIDDLE, sharp], (), random.Random(0), 1) == sharp


def test_selection_never_repeats_an_item_and_ends_when_the_bank_does() -> None:
    rng = random.Random(3)
    given: list[str] = []
    at = Estimate(0.0, 1.0, 0)
    while (chosen := select_item(at, BANK, given, rng)) is not None:
        assert chosen.item_id not in given
        given.append(chosen.item_id)
    assert sorted(given) == sorted(it.item_id for it in BANK)
    assert select_item(at, BANK, given, rng) is None
    assert select_item(at, [], (), rng) is None


def test_selection_is_deterministic_per_seed_and_ignores_candidate_order() -> None:
    at = Estimate(0.0, 1.0, 0)
    first = [select_item(at, BANK, {"q10"}, random.Random(seed)) for seed in range(20)]
    again = [select_item(at, BANK[::-1], {"q10"}, random.Random(seed)) for seed in range(20)]
    assert first == again
    # Equal information is broken by item id: twins at the same b, either order.
    twins = [item("b-twin", 0.0), item("a-twin", 0.0)]
    assert select_item(at, twins, (), random.Random(0), 1) == twins[1]
    assert select_item(at, twins[::-1], (), random.Random(0), 1) == twins[1]


def test_randomesque_spreads_exposure() -> None:
    at = Estimate(0.0, 0.7, 4)
    chosen = {select_item(at, BANK, (), random.Random(seed), randomesque=5) for seed in range(200)}
    assert len(chosen) >= 3
    assert len(chosen) <= 5
    with pytest.raises(RuleViolated) as raised:
        select_item(at, BANK, (), random.Random(0), randomesque=0)
    assert raised.value.field == "randomesque"


# --- cut scores and percentiles --------------------------------------------------------------


def test_cut_scores_map_boundaries_to_the_upper_level() -> None:
    levels = DEFAULT_CUT_SCORES
    assert levels.thresholds == (-1.8, -1.0, -0.3, 0.4, 1.1, 1.9)
    assert levels.level_for(-10.0) == 1
    assert levels.level_for(math.nextafter(-1.8, -math.inf)) == 1
    assert levels.level_for(-1.8) == 2  # reaching the cut score earns the level
    assert levels.level_for(0.0) == 4
    assert levels.level_for(1.9) == 7
    assert levels.level_for(10.0) == 7
    assert [levels.level_for(t) for t in (-1.5, -0.5, 0.2, 0.9, 1.5)] == [2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "thresholds",
    [
        (-1.0, 0.0, 1.0),
        (-1.8, -1.0, -0.3, 0.4, 1.1, 1.9, 2.5),
        (-1.8, -1.0, -0.3, 0.4, 0.4, 1.9),
        (-1.8, -1.0, 0.5, 0.4, 1.1, 1.9),
        (-1.8, -1.0, -0.3, 0.4, 1.1, math.nan),
    ],
)
def test_bad_cut_scores_are_rejected(thresholds: tuple[float, ...]) -> None:
    with pytest.raises(RuleViolated) as raised:
        CutScores(thresholds)
    assert raised.value.field == "thresholds"


def test_percentile_ranks_use_mid_ranks() -> None:
    group = [1.0, 2.0, 2.0, 3.0]
    assert percentile_rank(0.0, group) == 0.0
    assert percentile_rank(4.0, group) == 100.0
    assert percentile_rank(2.0, group) == 50.0  # (1 below + 2 equal / 2) / 4
    assert percentile_rank(2.5, group) == 75.0  # 3 below of 4
    assert percentile_rank(1.0, group) == 12.5  # (0 + 1 / 2) / 4
    assert percentile_rank(0.3, []) == 50.0


# --- calibration -----------------------------------------------------------------------------


def test_a_correct_answer_makes_an_item_look_easier() -> None:
    # At theta = b the model expected P = 0.5: the step is k / 2 either way.
    assert elo_update(0.0, 0.0, correct=True, k=0.4) == pytest.approx(-0.2)
    assert elo_update(0.0, 0.0, correct=False, k=0.4) == pytest.approx(0.2)
    # Expected answers teach little: a strong examinee (P = 0.982) getting it right.
    assert elo_update(0.0, 4.0, correct=True, k=0.4) == pytest.approx(-0.4 / (1 + math.e**4))
    assert elo_update(-3.9, -3.9, correct=True, k=1.0) == -4.0  # -4.4, kept on the scale
    with pytest.raises(RuleViolated):
        elo_update(0.0, 0.0, correct=True, k=0.0)
    # The step shrinks as the item collects answers: 4 / (n + 10).
    assert (elo_k(0), elo_k(10), elo_k(390)) == (0.4, 0.2, 0.01)


def test_calibration_recovers_known_difficulties() -> None:
    rng = random.Random(20260101)
    truth = {
        f"q{n:02d}": item(f"q{n:02d}", rng.uniform(-2.0, 2.0), rng.uniform(0.8, 1.6))
        for n in range(20)
    }
    responses = []
    for _ in range(2000):
        theta = rng.gauss(0.0, 1.0)
        for it in truth.values():
            responses.append((it.item_id, theta, rng.random() < probability_correct(theta, it)))
    # Everyone starts at b = 0, as new items would.
    current = {item_id: item(item_id, 0.0, it.discrimination) for item_id, it in truth.items()}
    calibrated = calibrate_difficulties(responses, current)
    assert list(calibrated) == list(current)
    errors = [abs(calibrated[i].difficulty - truth[i].difficulty) for i in truth]
    assert sum(errors) / len(errors) < 0.15
    assert all(calibrated[i].discrimination == truth[i].discrimination for i in truth)
    # Deterministic: the same input gives the same output.
    assert calibrate_difficulties(responses, current) == calibrated


def test_calibration_leaves_thin_items_alone_and_clamps_extremes() -> None:
    current = {"thin": item("thin", 0.7), "easy": item("easy", 0.0), "hard": item("hard", 0.0)}
    thetas = [(-2.0 + 0.1 * n) for n in range(40)]
    responses = [("thin", t, True) for t in thetas[:19]]
    responses += [("easy", t, True) for t in thetas]  # nobody missed it: b -> -inf
    responses += [("hard", t, False) for t in thetas]  # nobody solved it: b -> +inf
    calibrated = calibrate_difficulties(responses, current, min_responses=20)
    assert calibrated["thin"] == current["thin"]
    assert calibrated["easy"].difficulty == -4.0
    assert calibrated["hard"].difficulty == 4.0


def test_calibration_one_item_matches_a_hand_solution() -> None:
    # Four examinees at theta = 0, a = 1, three right: the MLE solves P(0 - b) = 3/4,
    # b = -ln 3 = -1.0986.
    responses = [("q", 0.0, True)] * 3 + [("q", 0.0, False)]
    calibrated = calibrate_difficulties(responses, {"q": item("q", 0.0)}, min_responses=4)
    assert calibrated["q"].difficulty == pytest.approx(-math.log(3), abs=1e-9)


def test_calibration_rejects_answers_to_unknown_items() -> None:
    with pytest.raises(RuleViolated) as raised:
        calibrate_difficulties([("ghost", 0.0, True)], {"q": item("q", 0.0)})
    assert raised.value.field == "responses[0]"
