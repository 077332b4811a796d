"""Commands of one process that write the same aggregate take turns.

Optimistic concurrency decides races between processes: the loser's save conflicts and it
runs again. Inside one process, a burst of commands on one aggregate (sixty enrolments into
one cohort) would otherwise keep colliding: every round, one wins and the others load the
new version and race again. A command that lost a race therefore asks for a turn on the
aggregates it writes, and holds it from loading them to saving them; while it holds it, the
others that lost on those aggregates wait, in the order they asked.

A turn is for a whole set of aggregates, granted all at once (nobody holds one while waiting
for another, so no two commands can wait for each other), and in arrival order: a turn is
granted only when no earlier waiter wants one of its aggregates, so a command needing two
busy aggregates is not overtaken forever by commands needing one. Commands on their first
attempt take no turn: most commands never meet a rival, and aggregates a command only reads
are never held.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID


class NoTurn(Exception):
    """The turn did not come within the time allowed."""


@dataclass(eq=False)
class _Ticket:
    aggregates: frozenset[UUID]


class AggregateTurns:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held: set[UUID] = set()
        self._waiting: list[_Ticket] = []

    @contextlib.contextmanager
    def turn(self, aggregates: frozenset[UUID], *, within: float) -> Iterator[None]:
        """Holds ``aggregates`` for the block; NoTurn when they are not free ``within``
        seconds."""
        if not aggregates:
            yield
            return
        ticket = _Ticket(aggregates)
        self._wait_for(ticket, within)
        try:
            yield
        finally:
            with self._changed:
                self._held -= ticket.aggregates
                self._changed.notify_all()

    def claimed(self, aggregates: frozenset[UUID]) -> bool:
        """Whether a command holds or waits for a turn on one of ``aggregates``."""
        with self._changed:
            return not self._held.isdisjoint(aggregates) or any(
                not ticket.aggregates.isdisjoint(aggregates) for ticket in self._waiting
            )

    def waiting(self) -> int:
        """How many commands wait for a turn (for tests)."""
        with self._changed:
            return len(self._waiting)

    def _wait_for(self, ticket: _Ticket, within: float) -> None:
        deadline = time.monotonic() + within
        with self._changed:
            self._waiting.append(ticket)
            while not self._may_go(ticket):
                left = deadline - time.monotonic()
                if left <= 0:
                    self._waiting.remove(ticket)
                    self._changed.notify_all()  # a later waiter may have queued behind it
                    msg = "the aggregates stayed busy"
                    raise NoTurn(msg)
                self._changed.wait(left)
            self._waiting.remove(ticket)
            self._held |= ticket.aggregates

    def _may_go(self, ticket: _Ticket) -> bool:
        if not self._held.isdisjoint(ticket.aggregates):
            return False
        for earlier in self._waiting:
            if earlier is ticket:
                return True
            if not earlier.aggregates.isdisjoint(ticket.aggregates):
                return False
        return True
