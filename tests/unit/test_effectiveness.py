"""Cohen's d_av for paired pre/post measurements, its labels, and small-group suppression.

Expected values are worked by hand in the comments.
"""

from __future__ import annotations

import math

import pytest

from training.reports.domain.effectiveness import (
    NOT_COMPUTABLE,
    SkillChange,
    SuppressedGroup,
    cohens_d,
    interpret,
    summarise_changes,
)


def test_d_av_divides_the_mean_change_by_the_average_sd() -> None:
    # pre  2 4 6:  mean 4, SS 4+0+4 = 8,    var 8/2 = 4,   SD 2
    # post 2 6 10: mean 6, SS 16+0+16 = 32, var 32/2 = 16, SD 4
    # d_av = (6 - 4) / ((2 + 4) / 2) = 2 / 3
    # (d_z would be mean(diff) / SD(diff) = 2 / 2 = 1 with diffs 0 2 4: not what we report.)
    assert cohens_d([2, 4, 6], [2, 6, 10]) == pytest.approx(2 / 3)


def test_a_uniform_shift_has_a_d_av_although_d_z_is_undefined() -> None:
    # pre 1..5 and post 2..6: both SD √2.5, every diff is 1 so SD(diff) = 0 and d_z = ∞.
    # d_av = 1 / √2.5 = 0.6325
    assert cohens_d([1, 2, 3, 4, 5], [2, 3, 4, 5, 6]) == pytest.approx(1 / math.sqrt(2.5))
    assert cohens_d([1, 2, 3, 4, 5], [2, 3, 4, 5, 6]) == pytest.approx(0.6325, abs=1e-4)


def test_unequal_spreads() -> None:
    # pre  2 3 4 5 6: mean 4,   SS 10,   var 2.5, SD 1.58114
    # post 3 5 5 6 8: mean 5.4, SS 5.76+0.16+0.16+0.36+6.76 = 13.2, var 3.3, SD 1.81659
    # d_av = 1.4 / ((1.58114 + 1.81659) / 2) = 1.4 / 1.69886 = 0.82408
    assert cohens_d([2, 3, 4, 5, 6], [3, 5, 5, 6, 8]) == pytest.approx(0.82408, abs=1e-5)


def test_a_decrease_is_negative() -> None:
    assert cohens_d([2, 6, 10], [2, 4, 6]) == pytest.approx(-2 / 3)


def test_d_is_undefined_without_spread_or_with_one_pair() -> None:
    assert cohens_d([3, 3, 3], [4, 4, 4]) is None
    assert cohens_d([3], [4]) is None
    assert cohens_d([], []) is None


def test_pairs_must_match_and_be_finite() -> None:
    with pytest.raises(ValueError, match="pairs"):
        cohens_d([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        cohens_d([1, 2, math.nan], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        cohens_d([1, 2, 3], [1, 2, math.inf])


@pytest.mark.parametrize(
    ("d", "label"),
    [
        (0.0, "negligible"),
        (0.19, "negligible"),
        (0.2, "small"),
        (0.49, "small"),
        (0.5, "medium"),
        (0.79, "medium"),
        (0.8, "large"),
        (2.5, "large"),
        (-0.3, "small"),
        (-0.85, "large"),
        (None, NOT_COMPUTABLE),
    ],
)
def test_cohens_conventional_labels(d: float | None, label: str) -> None:
    assert interpret(d) == label


def test_summary_keeps_order_and_suppresses_groups_under_five() -> None:
    summary = summarise_changes(
        {
            "python": [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6)],
            "rust": [(1, 3), (2, 3), (3, 4), (4, 4)],
            "sql": [(2, 2), (4, 6), (6, 10), (2, 2), (4, 6), (6, 10)],
        }
    )
    assert [entry.skill for entry in summary] == ["python", "rust", "sql"]
    python, rust, sql = summary
    assert isinstance(python, SkillChange)
    assert (python.n, python.pre_mean, python.post_mean, python.mean_change) == (5, 3, 4, 1)
    assert python.effect_size == pytest.approx(1 / math.sqrt(2.5))
    assert python.interpretation == "medium"
    # Four people: only the reason is kept, not the size or the values.
    assert rust == SuppressedGroup("rust", "fewer than 5 people")
    # pre 2 4 6 2 4 6: mean 4, SS 16, var 3.2;  post 2 6 10 2 6 10: mean 6, SS 64, var 12.8
    # d_av = 2 / ((√3.2 + √12.8) / 2) = 2 / ((1.78885 + 3.57771) / 2) = 2 / 2.68328 = 0.74536
    assert isinstance(sql, SkillChange)
    assert sql.n == 6
    assert sql.mean_change == pytest.approx(2.0)
    assert sql.effect_size == pytest.approx(0.74536, abs=1e-5)
    assert sql.interpretation == "medium"


def test_a_group_without_spread_has_a_change_but_no_effect_size() -> None:
    (entry,) = summarise_changes({"go": [(3, 4)] * 5})
    assert isinstance(entry, SkillChange)
    assert entry.mean_change == 1.0
    assert entry.effect_size is None
    assert entry.interpretation == NOT_COMPUTABLE


def test_the_minimum_group_is_configurable_but_at_least_two() -> None:
    (entry,) = summarise_changes({"go": [(1, 2), (2, 3)]}, minimum_group=3)
    assert entry == SuppressedGroup("go", "fewer than 3 people")
    (entry,) = summarise_changes({"go": [(1, 2), (2, 4)]}, minimum_group=2)
    assert isinstance(entry, SkillChange)
    with pytest.raises(ValueError, match="at least 2"):
        summarise_changes({"go": [(1, 2)]}, minimum_group=1)


def test_an_empty_mapping_gives_an_empty_summary() -> None:
    assert summarise_changes({}) == ()
