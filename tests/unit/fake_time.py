"""A clock for the tests of back-off: it moves only when someone sleeps, and keeps each sleep."""

from __future__ import annotations

import random
from collections.abc import Callable

from training.core.retry import DEFAULT_BUDGET, FIRST_DELAY, MAX_DELAY, RetryPolicy


class FakeTime:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def retry_policy(
        self,
        *,
        budget: float = DEFAULT_BUDGET,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        draw: Callable[[], float] = random.random,
    ) -> RetryPolicy:
        """A retry policy that waits in this time."""
        return RetryPolicy(budget, first_delay, max_delay, self.clock, self.sleep, draw)
