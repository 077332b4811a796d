"""Scoring of adaptive skill assessments: the 2PL IRT model, EAP ability estimates and CAT rules.

An engineer answers items one at a time. Each answer updates the ability estimate ``theta``
(in logits, the population is roughly N(0, 1)) and its standard error; the next item is
the one that tells us most at the current estimate, with some randomness so that the same
few items are not shown to everybody; the test stops when the estimate is precise enough.
The reported result is a level on the 7-level scale, from cut scores on ``theta``, with the SE.

Everything here is a pure function of its arguments, so a past assessment can be re-scored
by replaying its responses against recalibrated item parameters.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from training.core.errors import RuleViolated
from training.skills.domain import LEVELS

# Item difficulties and abilities live on this range of logits. Beyond it a 7-level scale
# has nothing left to distinguish, and an item nobody (or everybody) answers correctly would
# otherwise drift towards infinity during calibration.
THETA_MIN = -4.0
THETA_MAX = 4.0

# The grid on which the EAP integrals are taken: 81 points, 0.1 logit apart, on [-4, 4].
# The posterior is the N(mean, sd) prior times a product of logistic curves: smooth and
# bell-shaped, so an equally weighted sum over an even grid (the trapezoid rule but for the
# end points, where the posterior is negligible) is all the integration EAP needs. Checked against
# a 20,001-point integration on [-8, 8]: once SE < 0.5 and theta_hat is within +-2.5, the
# grid moves theta_hat and SE by less than 1e-3 logit; a wide posterior after a few answers
# that were all right or all wrong reaches the ends of the range and moves by up to 0.02.
# Both are far below the SE of 0.3-0.45 we report. [-4, 4] holds all but 6e-5 of the
# N(0, 1) prior and is the range the calibration keeps difficulties in. Integers over 10
# keep the grid exactly symmetric about zero, so a right and a wrong answer at b = 0 give
# estimates of exactly opposite sign.
QUADRATURE: tuple[float, ...] = tuple((i - 40) / 10 for i in range(81))


@dataclass(frozen=True, slots=True)
class ItemParameters:
    """An item's 2PL parameters: difficulty ``b`` and discrimination ``a``, in logits."""

    item_id: str
    difficulty: float
    discrimination: float = 1.0

    def __post_init__(self) -> None:
        if not self.item_id:
            raise RuleViolated("an item has an id", field="item_id")
        if not math.isfinite(self.difficulty):
            raise RuleViolated("an item's difficulty is a finite number", field="difficulty")
        # A discrimination of zero or below would make the item useless or reward the
        # wrong answer; the calibration never produces one.
        if not (math.isfinite(self.discrimination) and self.discrimination > 0):
            raise RuleViolated("an item's discrimination is positive", field="discrimination")


@dataclass(frozen=True, slots=True)
class Response:
    """One answer: the item as calibrated when it was scored, and whether it was right."""

    item: ItemParameters
    correct: bool


@dataclass(frozen=True, slots=True)
class Estimate:
    """Ability ``theta`` in logits, its standard error, and how many answers it rests on."""

    theta: float
    se: float
    items: int


def _logistic(x: float) -> float:
    """1 / (1 + e^-x), without overflowing e^-x when x is very negative."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _softplus(x: float) -> float:
    """ln(1 + e^x) = max(x, 0) + ln(1 + e^-|x|), exact for every finite x."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def probability_correct(theta: float, item: ItemParameters) -> float:
    """P(correct | theta) = 1 / (1 + exp(-a (theta - b))), the 2PL item response function."""
    return _logistic(item.discrimination * (theta - item.difficulty))


def information(theta: float, item: ItemParameters) -> float:
    """Fisher information of the item at theta: I = a^2 P (1 - P), largest (a^2 / 4) at b."""
    x = item.discrimination * (theta - item.difficulty)
    # 1 - P is taken as P(-x), so that it does not round to zero before P does.
    return item.discrimination**2 * _logistic(x) * _logistic(-x)


def _log_likelihood(theta: float, response: Response) -> float:
    """ln P if correct, ln(1 - P) if not; ln P(x) = -ln(1 + e^-x), and 1 - P(x) = P(-x)."""
    x = response.item.discrimination * (theta - response.item.difficulty)
    return -_softplus(-x if response.correct else x)


def estimate(
    responses: Iterable[Response], prior_mean: float = 0.0, prior_sd: float = 1.0
) -> Estimate:
    """The expected a posteriori (EAP) estimate of theta and its posterior SD as the SE.

    posterior(theta) ~ N(theta; prior_mean, prior_sd) * prod_i P_i^u_i (1 - P_i)^(1 - u_i),
    with P_i = P_i(theta) the 2PL probability of answering item i correctly;
    theta_hat = E[theta | answers] and SE = sqrt(Var[theta | answers]), both as sums over
    ``QUADRATURE``. The product is summed as logarithms and the largest one is subtracted
    before exponentiating, so 25 unlikely answers do not underflow to a posterior of zero.

    Unlike maximum likelihood, EAP is finite after all-correct or all-wrong answers, which is
    every test after its first item. The prior centres the estimate on what we believe
    before the test (the population, or the engineer's declared level) and pulls it in when
    there is little evidence; the SE says how much that matters.
    """
    if not math.isfinite(prior_mean):
        raise RuleViolated("the prior mean is a finite number", field="prior_mean")
    if not (math.isfinite(prior_sd) and prior_sd > 0):
        raise RuleViolated("the prior standard deviation is positive", field="prior_sd")
    answered = tuple(responses)
    if not answered:
        return Estimate(prior_mean, prior_sd, 0)
    log_posterior = [
        -0.5 * ((theta - prior_mean) / prior_sd) ** 2
        + sum(_log_likelihood(theta, response) for response in answered)
        for theta in QUADRATURE
    ]
    peak = max(log_posterior)
    weights = [math.exp(value - peak) for value in log_posterior]
    total = math.fsum(weights)
    mean = math.fsum(w * theta for w, theta in zip(weights, QUADRATURE, strict=True)) / total
    variance = (
        math.fsum(w * (theta - mean) ** 2 for w, theta in zip(weights, QUADRATURE, strict=True))
        / total
    )
    return Estimate(mean, math.sqrt(variance), len(answered))


@dataclass(frozen=True, slots=True)
class StopRule:
    """When an adaptive test ends: an SE target, with a floor and a ceiling on its length.

    The defaults follow product-anchors §6: SE <= 0.45 logit is a reliability of about 0.8
    in a population of SD 1 (good for a starting point, not for high-stakes decisions), and
    about 20 well-targeted items reach it. The floor of 8 keeps a lucky streak from ending
    the test early; the ceiling bounds the engineer's time when the bank has nothing
    informative left near their ability.
    """

    se_target: float = 0.45
    min_items: int = 8
    max_items: int = 25

    def __post_init__(self) -> None:
        if not (math.isfinite(self.se_target) and self.se_target > 0):
            raise RuleViolated("the SE target is positive", field="se_target")
        if self.min_items < 0:
            raise RuleViolated("the minimum number of items is not negative", field="min_items")
        if self.max_items < max(self.min_items, 1):
            raise RuleViolated(
                "the maximum number of items is at least the minimum and at least 1",
                field="max_items",
            )

    def should_stop(self, estimate: Estimate) -> bool:
        """Stop when items >= max_items, or when items >= min_items and SE <= se_target."""
        if estimate.items >= self.max_items:
            return True
        return estimate.items >= self.min_items and estimate.se <= self.se_target

    def reason(self, estimate: Estimate) -> str:
        """Why the test stops or goes on, for the assessment record."""
        if estimate.items >= self.max_items:
            return f"stopped: the maximum of {self.max_items} items was reached"
        if estimate.items < self.min_items:
            return f"continue: {estimate.items} of at least {self.min_items} items answered"
        if estimate.se <= self.se_target:
            return (
                f"stopped: SE {estimate.se:.3f} reached the target {self.se_target:.3f}"
                f" after {estimate.items} items"
            )
        return f"continue: SE {estimate.se:.3f} is above the target {self.se_target:.3f}"


def select_item(
    estimate: Estimate,
    candidates: Sequence[ItemParameters],
    administered: Collection[str],
    rng: random.Random,
    randomesque: int = 5,
) -> ItemParameters | None:
    """The next item: one of the ``randomesque`` most informative at theta_hat, at random.

    Items not yet administered are ranked by I(theta_hat) = a^2 P (1 - P), highest first,
    ties by item_id so that the ranking does not depend on the order of ``candidates``; one
    of the top ``randomesque`` is drawn uniformly with ``rng``. Pure maximum information
    would show the same few items to everyone near the middle of the population and so leak
    them; the randomesque method (Kingsbury & Zara, 1989) spreads exposure at a small cost
    in precision. With randomesque = 1 it is maximum-information selection. None when every
    candidate has been administered.
    """
    if randomesque < 1:
        raise RuleViolated("randomesque draws from at least one item", field="randomesque")
    remaining = [item for item in candidates if item.item_id not in administered]
    if not remaining:
        return None
    ranked = sorted(remaining, key=lambda item: (-information(estimate.theta, item), item.item_id))
    return rng.choice(ranked[:randomesque])


@dataclass(frozen=True, slots=True)
class CutScores:
    """Six increasing theta thresholds; theta at or above the n-th one reaches level n + 1."""

    thresholds: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(LEVELS) - 1:
            raise RuleViolated(
                f"{len(LEVELS) - 1} cut scores split the scale into {len(LEVELS)} levels",
                field="thresholds",
            )
        if not all(math.isfinite(t) for t in self.thresholds):
            raise RuleViolated("cut scores are finite numbers", field="thresholds")
        steps = zip(self.thresholds, self.thresholds[1:], strict=False)
        if any(low >= high for low, high in steps):
            raise RuleViolated("cut scores are strictly increasing", field="thresholds")

    def level_for(self, theta: float) -> int:
        """1 + the number of thresholds at or below theta: reaching a cut score earns the level."""
        return LEVELS[0] + sum(1 for threshold in self.thresholds if theta >= threshold)


# Placeholders until a standard-setting panel (bookmark or Angoff on the calibrated bank) sets
# the cut scores per skill; like the item parameters they are shipped as data and versioned.
# In a N(0, 1) population they put 4, 12, 22, 27, 21, 11 and 3 % into levels 1..7, so
# levels 3-4 hold the middle half of engineers and the top and bottom levels stay rare.
DEFAULT_CUT_SCORES = CutScores((-1.8, -1.0, -0.3, 0.4, 1.1, 1.9))


def percentile_rank(theta: float, others: Sequence[float]) -> float:
    """100 * (number below + half the number equal) / n; 50.0 when there is nobody to compare.

    The mid-rank puts an engineer tied with the whole group at the 50th percentile rather
    than at the 0th or 100th. A percentile describes the group, not a level: levels come
    from the cut scores.
    """
    if not others:
        return 50.0
    below = sum(1 for other in others if other < theta)
    equal = sum(1 for other in others if other == theta)
    return 100.0 * (below + 0.5 * equal) / len(others)


def elo_update(difficulty: float, theta: float, correct: bool, k: float) -> float:
    """Online difficulty update after one answer: b' = b + k (P(theta, b) - u), Rasch P.

    A correct answer (u = 1) lowers b: the item looks easier; a wrong one raises it. The
    step is a stochastic gradient step on the item's log-likelihood, whose derivative in b
    is P - u. That gives the choice of k: a Newton step would be 1 / (n I) for an item seen
    n times, with I = P (1 - P) <= 1/4 per answer, so ``elo_k`` uses k = 4 / (n + 10).
    It starts at 0.4 logit, so a new item finds its place within a few dozen answers (the
    cold start), and then shrinks like 1/n, so a calibrated item settles instead of
    chasing noise. The periodic ``calibrate_difficulties`` batch then replaces these
    online values. Clamped to [-4, 4].
    """
    if not (math.isfinite(k) and k > 0):
        raise RuleViolated("the Elo step k is positive", field="k")
    updated = difficulty + k * (_logistic(theta - difficulty) - (1.0 if correct else 0.0))
    return min(max(updated, THETA_MIN), THETA_MAX)


ELO_PRIOR_ANSWERS = 10


def elo_k(answers_seen: int) -> float:
    """The Elo step for an item already answered ``answers_seen`` times: k = 4 / (n + 10).

    4 is 1 / max P (1 - P), the Robbins-Monro gain for the item's score equation; the 10
    answers of pseudo-evidence keep the first steps at 0.4 logit and below.
    """
    if answers_seen < 0:
        raise RuleViolated("an item has been answered zero or more times", field="answers_seen")
    return 4.0 / (answers_seen + ELO_PRIOR_ANSWERS)


# Newton-Raphson on one item's difficulty: the log-likelihood is concave in b, so a damped
# Newton step converges from any start; the damping only matters for an item almost
# everybody gets right (or wrong), whose likelihood is nearly flat and whose MLE lies
# beyond the clamp.
MAX_NEWTON_STEP = 1.0
NEWTON_TOLERANCE = 1e-9


def calibrate_difficulties(
    responses: Sequence[tuple[str, float, bool]],
    current: Mapping[str, ItemParameters],
    iterations: int = 25,
    min_responses: int = 20,
) -> dict[str, ItemParameters]:
    """Re-estimate each item's difficulty by maximum likelihood, with abilities held fixed.

    ``responses`` are (item_id, theta of the examinee, correct). For an item with
    discrimination a the log-likelihood in b is sum_j u_j ln P_j + (1 - u_j) ln(1 - P_j),
    P_j = 1 / (1 + exp(-a (theta_j - b))); its gradient is a sum_j (P_j - u_j) and its
    second derivative -a^2 sum_j P_j (1 - P_j), so the Newton step is
    b <- b + sum_j (P_j - u_j) / (a sum_j P_j (1 - P_j)), damped to at most 1 logit and kept
    in [-4, 4]. It starts from the current difficulty and runs at most ``iterations`` steps.

    The discrimination is kept: a few hundred answers pin down b far better than a. Items
    with fewer than ``min_responses`` answers keep their difficulty. The result holds every
    item of ``current``, in its order; an answer to an item not in ``current`` is an error,
    because there would be no discrimination to calibrate with.
    """
    if iterations < 1:
        raise RuleViolated("calibration runs at least one iteration", field="iterations")
    if min_responses < 1:
        raise RuleViolated("calibration needs at least one response", field="min_responses")
    answers: dict[str, list[tuple[float, bool]]] = {item_id: [] for item_id in current}
    for index, (item_id, theta, correct) in enumerate(responses):
        if item_id not in answers:
            raise RuleViolated(f"unknown item {item_id!r}", field=f"responses[{index}]")
        answers[item_id].append((theta, correct))
    calibrated: dict[str, ItemParameters] = {}
    for item_id, item in current.items():
        seen = answers[item_id]
        if len(seen) < min_responses:
            calibrated[item_id] = item
            continue
        difficulty = _maximum_likelihood_difficulty(item, seen, iterations)
        calibrated[item_id] = replace(item, difficulty=difficulty)
    return calibrated


def _maximum_likelihood_difficulty(
    item: ItemParameters, seen: Sequence[tuple[float, bool]], iterations: int
) -> float:
    a = item.discrimination
    b = min(max(item.difficulty, THETA_MIN), THETA_MAX)
    for _ in range(iterations):
        surprise = 0.0  # sum of P - u: positive when the item was answered worse than expected
        curvature = 0.0  # sum of P (1 - P)
        for theta, correct in seen:
            x = a * (theta - b)
            p, q = _logistic(x), _logistic(-x)
            surprise += p - (1.0 if correct else 0.0)
            curvature += p * q
        if curvature > 0:
            step = surprise / (a * curvature)
        else:
            step = math.copysign(MAX_NEWTON_STEP, surprise)
        step = min(max(step, -MAX_NEWTON_STEP), MAX_NEWTON_STEP)
        b_next = min(max(b + step, THETA_MIN), THETA_MAX)
        if abs(b_next - b) < NEWTON_TOLERANCE:
            return b_next
        b = b_next
    return b
