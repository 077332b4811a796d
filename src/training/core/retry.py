"""How long a command keeps trying when other writers keep moving its aggregates.

A command that lost a race runs again on fresh state. Commands of this process take turns on
the aggregates they write (``turns``), so they do not keep colliding with each other; a
writer in another process, or one that had not queued yet, can still win. Then the command
waits a random delay that doubles with each loss (full jitter: a uniform draw below the
ceiling, so contenders spread out instead of colliding again in step) and runs again, until
its time budget is spent. Only then is it a conflict the caller sees.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A burst of a few hundred commands on one aggregate clears within it on a two-core machine
# (docs/performance.md), and it stays well below what an HTTP client waits for an answer.
DEFAULT_BUDGET = 2.5
FIRST_DELAY = 0.005
MAX_DELAY = 0.2


@dataclass(frozen=True)
class RetryPolicy:
    budget: float = DEFAULT_BUDGET  # seconds from a command's first attempt
    first_delay: float = FIRST_DELAY
    max_delay: float = MAX_DELAY
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    # A draw in [0, 1): the jitter.
    draw: Callable[[], float] = field(default=random.random, compare=False)

    def start(self) -> Attempts:
        return Attempts(self, self.clock() + self.budget)


class Attempts:
    """One command's attempts: its deadline, and the delays after the races it lost."""

    def __init__(self, policy: RetryPolicy, deadline: float) -> None:
        self._policy = policy
        self.deadline = deadline
        self.delays = 0

    def remaining(self) -> float:
        return max(0.0, self.deadline - self._policy.clock())

    def back_off(self) -> bool:
        """Waits before the next attempt; False, at once, when the wait would end past the
        deadline (the command gives up)."""
        policy = self._policy
        ceiling = min(policy.max_delay, policy.first_delay * 2**self.delays)
        delay = ceiling * policy.draw()
        if delay >= self.remaining():
            return False
        self.delays += 1
        policy.sleep(delay)
        return True
