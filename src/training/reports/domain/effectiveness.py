"""Training effectiveness: how much a group's measured skill changed from before to after.

Each person contributes one pair of measurements of a skill on the same calibrated scale (a
"pre" before the training and a "post" after it). Per skill the group's change is summarised
by the mean change and a standardised effect size, Cohen's d.

Which d
-------
Paired (within-subjects) data admit several standardisers (Lakens 2013, "Calculating and
reporting effect sizes to facilitate cumulative science", Frontiers in Psychology 4:863):

* d_z = mean(post - pre) / SD(post - pre). It is the paired t statistic divided by √n, the
  right input for a power analysis, but it grows with the pre/post correlation r: on a stable
  scale where r = 0.8 the same shift gives d_z ≈ 1.6 times d_av. Cohen's benchmarks were set on
  the spread of the scores themselves, so d_z read against them overstates the effect.
* d_av = mean(post - pre) / ((SD(pre) + SD(post)) / 2). It standardises by the average spread
  of the scores, ignores r, and so stays comparable with between-groups d and with the
  0.2/0.5/0.8 conventions. Lakens recommends d_av (or its small-sample correction g_av) for
  reporting within-subjects effects.

We report to managers, next to Cohen's labels, so ``cohens_d`` computes **d_av**, without the
Hedges correction (for n = 5 g_av = 0.80·d_av, for n = 20 0.96·d_av). SDs are sample SDs
(n - 1 denominators).

The labels are Cohen's (1988) conventions for when nothing better is known: |d| ≥ 0.2
"small", ≥ 0.5 "medium", ≥ 0.8 "large", otherwise "negligible". They are rules of thumb,
not truths about what a change means for the work.

Small groups
------------
A group of fewer than ``MIN_GROUP`` people is shown only as suppressed ("fewer than 5
people"), never with its means, as the group views elsewhere in the service do.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

MIN_GROUP: Final = 5
SMALL: Final = 0.2
MEDIUM: Final = 0.5
LARGE: Final = 0.8
NOT_COMPUTABLE: Final = "not computable"


def suppressed_reason(minimum_group: int = MIN_GROUP) -> str:
    return f"fewer than {minimum_group} people"


@dataclass(frozen=True, slots=True)
class SkillChange:
    """A skill's change over a group of ``n`` people with both measurements."""

    skill: str
    n: int
    pre_mean: float
    post_mean: float
    mean_change: float  # post_mean - pre_mean
    effect_size: float | None  # Cohen's d_av; None when the spread is zero
    interpretation: str  # "negligible", "small", "medium", "large" or "not computable"


@dataclass(frozen=True, slots=True)
class SuppressedGroup:
    """A group too small to show; neither its size nor its values are kept."""

    skill: str
    reason: str = suppressed_reason()


def cohens_d(pre: Sequence[float], post: Sequence[float]) -> float | None:
    """Cohen's d_av for paired measurements: mean(post - pre) / mean(SD(pre), SD(post)).

    ``pre[i]`` and ``post[i]`` are the same person's measurements. Positive d is an increase.
    None when there are fewer than two pairs or both SDs are zero (d is undefined then).
    Raises ValueError when the sequences differ in length or hold a non-finite value.
    """
    if len(pre) != len(post):
        raise ValueError(f"pre has {len(pre)} values and post {len(post)}; pairs are needed")
    if not all(math.isfinite(x) for x in (*pre, *post)):
        raise ValueError("measurements must be finite numbers")
    if len(pre) < 2:
        return None
    mean_change = statistics.fmean(post) - statistics.fmean(pre)
    average_sd = (statistics.stdev(pre) + statistics.stdev(post)) / 2
    if average_sd == 0:
        return None
    return mean_change / average_sd


def interpret(effect_size: float | None) -> str:
    """Cohen's conventional label for |d| (0.2 small, 0.5 medium, 0.8 large)."""
    if effect_size is None:
        return NOT_COMPUTABLE
    size = abs(effect_size)
    if size >= LARGE:
        return "large"
    if size >= MEDIUM:
        return "medium"
    if size >= SMALL:
        return "small"
    return "negligible"


def summarise_changes(
    pairs_by_skill: Mapping[str, Sequence[tuple[float, float]]],
    minimum_group: int = MIN_GROUP,
) -> tuple[SkillChange | SuppressedGroup, ...]:
    """One entry per skill, in the mapping's order; groups under ``minimum_group`` suppressed.

    Each pair is one person's (pre, post). ``minimum_group`` must be at least 2, the fewest
    pairs an effect size can be computed from.
    """
    if minimum_group < 2:
        raise ValueError("minimum_group must be at least 2")
    summary: list[SkillChange | SuppressedGroup] = []
    for skill, pairs in pairs_by_skill.items():
        if len(pairs) < minimum_group:
            summary.append(SuppressedGroup(skill, suppressed_reason(minimum_group)))
            continue
        pre = [p for p, _ in pairs]
        post = [q for _, q in pairs]
        d = cohens_d(pre, post)
        pre_mean = statistics.fmean(pre)
        post_mean = statistics.fmean(post)
        summary.append(
            SkillChange(
                skill=skill,
                n=len(pairs),
                pre_mean=pre_mean,
                post_mean=post_mean,
                mean_change=post_mean - pre_mean,
                effect_size=d,
                interpretation=interpret(d),
            )
        )
    return tuple(summary)
