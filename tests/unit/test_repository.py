"""Cached aggregates shared by threads: a fast-forward never races a copy (a 500 otherwise)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application, Repository
from eventsourcing.domain import Aggregate, event

from training.core.application import TrainingApplication

READERS = 3
WRITES = 150


class Ledger(Aggregate):
    TOPIC = "tests.unit.test_repository:Ledger"

    class Event(Aggregate.Event):
        TOPIC = "tests.unit.test_repository:Ledger.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "tests.unit.test_repository:Ledger.Created"

    class Added(Event):
        TOPIC = "tests.unit.test_repository:Ledger.Added"
        first: int
        count: int

    @event(Created)
    def __init__(self) -> None:
        self.entries: dict[int, int] = {}

    def add(self, count: int) -> None:
        self._added(first=len(self.entries), count=count)

    @event(Added)
    def _added(self, first: int, count: int) -> None:
        for key in range(first, first + count):
            self.entries[key] = key


def in_memory(app_class: type[Application[UUID]]) -> Application[UUID]:
    return app_class(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo", "AGGREGATE_CACHE_MAXSIZE": "10"}
    )


@pytest.fixture
def switching_often() -> Iterator[None]:
    # Threads change hands every few microseconds, so a copy and a fast-forward interleave.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def readers_and_a_writer(app: Application[UUID]) -> list[BaseException]:
    """One thread appends to a large aggregate while others read it through the cache."""
    ledger = Ledger()
    ledger.add(20_000)
    app.save(ledger)
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for _ in range(WRITES):
                mine: Any = app.repository.get(ledger.id)
                mine.add(50)
                app.save(mine)
        except BaseException as error:  # a failed thread must fail the test
            errors.append(error)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                copy: Any = app.repository.get(ledger.id)
                assert len(copy.entries) == 20_000 + 50 * (copy.version - 2)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write)] + [
        threading.Thread(target=read) for _ in range(READERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    final: Any = app.repository.get(ledger.id)
    assert len(final.entries) == 20_000 + 50 * WRITES
    return errors


def test_the_training_application_shares_cached_aggregates_between_threads_safely(
    switching_often: None,
) -> None:
    app = in_memory(TrainingApplication)
    try:
        assert readers_and_a_writer(app) == []
    finally:
        app.close()


def test_the_librarys_repository_is_what_needed_it() -> None:
    # What TrainingApplication replaces: the library's repository copies after releasing its
    # fast-forward lock (see training/core/repository.py).
    assert type(Application().repository) is Repository
    assert type(in_memory(TrainingApplication).repository) is not Repository
