"""Group commit: the saves of concurrent commands share one transaction.

Every append takes the events table's ``EXCLUSIVE`` lock and holds it until its commit has
flushed the write-ahead log, so concurrent commands queue behind each other one transaction
at a time (an adaptive test's answers are many small commands). Here the first command to
arrive writes; the commands that arrive while it writes wait, and the next of them writes
all of them in one transaction: one lock, one notification, one log flush for the group.

Commands in one group touch different aggregates (a command that touches an aggregate
already in the group waits for the next one), so a group cannot conflict with itself. When
a group fails (another process wrote one of its aggregates first, or the database
answered an error), each command of the group is saved alone, so only the command that lost
the race sees the error, which the bus handles as before (it runs the command again).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from training.core.idempotency import CommandMarker
from training.core.personal_data import PersonalDataChange

# Large enough to absorb a burst; small enough to keep one transaction short.
MAX_GROUP = 32

# What a command stores beside its events, in their transaction: personal data, and the
# outcome of a command of an idempotent request.
SideChange = PersonalDataChange | CommandMarker
# Stores the events with the side changes in one transaction; answers each event's position
# (its notification id), in the order of the events.
Store = Callable[[Sequence[Any], Sequence[SideChange]], Sequence[int]]


@dataclass(eq=False)
class _Save:
    events: Sequence[Any]
    personal_data: Sequence[SideChange]
    aggregates: frozenset[UUID] = field(init=False)
    position: int | None = None
    error: BaseException | None = None
    done: bool = False

    def __post_init__(self) -> None:
        self.aggregates = frozenset(event.originator_id for event in self.events)

    def outcome(self) -> int:
        if self.error is not None:
            raise self.error
        assert self.position is not None
        return self.position


class GroupCommit:
    def __init__(self, store: Store, max_group: int = MAX_GROUP) -> None:
        self._store = store
        self._max_group = max_group
        self._changed = threading.Condition()
        self._waiting: list[_Save] = []
        self._writing = False
        # For benchmarks and tests: transactions written, and the saves they carried.
        self.transactions = 0
        self.saves = 0

    def save(self, events: Sequence[Any], personal_data: Sequence[SideChange]) -> int:
        """Stores the events (and personal data) of one command; answers its last position."""
        mine = _Save(events, personal_data)
        with self._changed:
            self._waiting.append(mine)
        while True:
            with self._changed:
                while self._writing and not mine.done:
                    self._changed.wait()
                if mine.done:
                    return mine.outcome()
                self._writing = True
                group = self._take_group()
            try:
                self._write(group)
            finally:
                with self._changed:
                    for save in group:
                        if not save.done:  # the write was interrupted (KeyboardInterrupt)
                            save.error = RuntimeError("the write was interrupted")
                            save.done = True
                    self._writing = False
                    self._changed.notify_all()

    def _take_group(self) -> list[_Save]:
        """The longest run of waiting saves, in arrival order, on different aggregates.

        The first waiting save always joins, so every round writes at least one."""
        group: list[_Save] = []
        touched: set[UUID] = set()
        for waiting in self._waiting:
            if len(group) == self._max_group:
                break
            if touched.isdisjoint(waiting.aggregates):
                group.append(waiting)
                touched |= waiting.aggregates
        taken = set(map(id, group))
        self._waiting = [save for save in self._waiting if id(save) not in taken]
        return group

    def _write(self, group: list[_Save]) -> None:
        if len(group) > 1 and self._write_together(group):
            return
        for save in group:
            self._write_alone(save)

    def _write_together(self, group: list[_Save]) -> bool:
        self._count(len(group))
        try:
            positions = self._store(
                [event for save in group for event in save.events],
                [change for save in group for change in save.personal_data],
            )
        except Exception:  # each save is then written alone and reports its own error
            return False
        end = 0
        for save in group:
            end += len(save.events)
            save.position = positions[end - 1]
            save.done = True
        return True

    def _write_alone(self, save: _Save) -> None:
        self._count(1)
        try:
            save.position = self._store(save.events, save.personal_data)[-1]
        except BaseException as error:  # raised in the command that caused it
            save.error = error
        save.done = True

    def _count(self, saves: int) -> None:
        self.transactions += 1
        self.saves += saves
