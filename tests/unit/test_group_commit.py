"""Group commit: concurrent saves share a transaction, never an aggregate, never an error."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from training.core.group_commit import GroupCommit
from training.core.personal_data import PersonalDataChange


@dataclass(frozen=True)
class Event:
    originator_id: uuid.UUID


class RecordingStore:
    """Stands in for the event store: numbers events and remembers each transaction."""

    def __init__(self, refuse: Callable[[Sequence[Any]], bool] = lambda _: False) -> None:
        self.transactions: list[list[Any]] = []
        self.position = 0
        self.refuse = refuse
        self.first_write_may_finish = threading.Event()
        self._lock = threading.Lock()

    def __call__(
        self, events: Sequence[Any], personal_data: Sequence[PersonalDataChange]
    ) -> list[int]:
        if not self.transactions:
            # Hold the first write until the other saves queue behind it, as they would
            # behind a commit waiting for its log flush.
            assert self.first_write_may_finish.wait(10)
        with self._lock:
            self.transactions.append(list(events))
            if self.refuse(events):
                raise ValueError("refused")
            positions = list(range(self.position + 1, self.position + 1 + len(events)))
            self.position += len(events)
        return positions


def run_concurrently(
    commit: GroupCommit, store: RecordingStore, saves: list[list[Event]]
) -> list[int | BaseException]:
    outcomes: list[int | BaseException] = [0] * len(saves)

    def save(index: int) -> None:
        try:
            outcomes[index] = commit.save(saves[index], ())
        except BaseException as error:  # the test looks at it
            outcomes[index] = error

    first = threading.Thread(target=save, args=(0,))
    first.start()
    while not store.transactions and commit.saves == 0:
        time.sleep(0.001)
    others = [threading.Thread(target=save, args=(i,)) for i in range(1, len(saves))]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 10
    while len(commit._waiting) < len(others) and time.monotonic() < deadline:
        time.sleep(0.001)
    store.first_write_may_finish.set()
    for thread in [first, *others]:
        thread.join(10)
    return outcomes


def test_saves_that_arrive_during_a_write_share_the_next_transaction() -> None:
    store = RecordingStore()
    commit = GroupCommit(store)
    saves = [[Event(uuid.uuid4()), Event(uuid.uuid4())] for _ in range(9)]
    outcomes = run_concurrently(commit, store, saves)
    assert [len(t) for t in store.transactions] == [2, 16]
    assert commit.transactions == 2
    assert commit.saves == 9
    # Each save answers the position of its own last event.
    written = [event for transaction in store.transactions for event in transaction]
    for events, outcome in zip(saves, outcomes, strict=True):
        assert outcome == written.index(events[-1]) + 1


def test_saves_of_the_same_aggregate_never_share_a_transaction() -> None:
    store = RecordingStore()
    commit = GroupCommit(store)
    shared = uuid.uuid4()
    saves = [[Event(uuid.uuid4())], [Event(shared)], [Event(shared)], [Event(uuid.uuid4())]]
    outcomes = run_concurrently(commit, store, saves)
    assert all(isinstance(outcome, int) for outcome in outcomes)
    for transaction in store.transactions:
        ids = [event.originator_id for event in transaction]
        assert len(ids) == len(set(ids))
    assert sum(len(t) for t in store.transactions) == 4


def test_a_failed_group_is_written_save_by_save_and_only_the_culprit_fails() -> None:
    culprit = uuid.uuid4()
    store = RecordingStore(refuse=lambda events: any(e.originator_id == culprit for e in events))
    commit = GroupCommit(store)
    saves = [[Event(uuid.uuid4())], [Event(uuid.uuid4())], [Event(culprit)], [Event(uuid.uuid4())]]
    outcomes = run_concurrently(commit, store, saves)
    assert isinstance(outcomes[2], ValueError)
    assert all(isinstance(outcomes[i], int) for i in (0, 1, 3))
    # The refused group of three, then each of its saves alone.
    assert [len(t) for t in store.transactions] == [1, 3, 1, 1, 1]


def test_a_lone_save_is_written_at_once() -> None:
    store = RecordingStore()
    store.first_write_may_finish.set()
    commit = GroupCommit(store)
    assert commit.save([Event(uuid.uuid4()), Event(uuid.uuid4())], ()) == 2
    assert commit.save([Event(uuid.uuid4())], ()) == 3
    assert commit.transactions == 2
