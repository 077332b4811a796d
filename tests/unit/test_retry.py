"""The back-off of a command that keeps losing races: jittered, doubling, within a budget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.fake_time import FakeTime


def draws(*values: float) -> Iterator[float]:
    yield from values


def test_delays_double_up_to_the_ceiling_and_are_drawn_below_it() -> None:
    time = FakeTime(now=100.0)
    policy = time.retry_policy(budget=10.0, first_delay=0.01, max_delay=0.05, draw=lambda: 0.5)
    attempts = policy.start()
    for _ in range(5):
        assert attempts.back_off()
    assert time.slept == pytest.approx([0.005, 0.01, 0.02, 0.025, 0.025])


def test_the_jitter_is_a_uniform_draw_below_the_ceiling() -> None:
    time = FakeTime(now=100.0)
    drawn = draws(0.0, 0.999, 0.25)
    policy = time.retry_policy(
        budget=10.0, first_delay=0.1, max_delay=1.0, draw=lambda: next(drawn)
    )
    attempts = policy.start()
    for _ in range(3):
        assert attempts.back_off()
    assert time.slept == pytest.approx([0.0, 0.1998, 0.1])


def test_no_wait_ends_past_the_deadline() -> None:
    time = FakeTime(now=100.0)
    policy = time.retry_policy(budget=0.1, first_delay=0.02, max_delay=1.0, draw=lambda: 0.999)
    attempts = policy.start()
    while attempts.back_off():
        pass
    # 0.02 + 0.04 slept; the next wait (0.08) would end after the 0.1 s budget.
    assert time.slept == pytest.approx([0.01998, 0.03996])
    assert sum(time.slept) < 0.1
    assert attempts.remaining() == pytest.approx(0.1 - sum(time.slept))


def test_time_spent_elsewhere_counts_against_the_budget() -> None:
    time = FakeTime(now=100.0)
    policy = time.retry_policy(budget=1.0, draw=lambda: 0.5)
    attempts = policy.start()
    time.now += 0.999  # the attempts themselves took that long
    assert not attempts.back_off()
    assert time.slept == []
    time.now += 1.0
    assert attempts.remaining() == 0.0
