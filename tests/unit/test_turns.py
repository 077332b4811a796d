"""Turns on aggregates: granted whole, in arrival order, never two holders of one aggregate."""

from __future__ import annotations

import threading
import uuid

import pytest

from training.core.turns import AggregateTurns, NoTurn

A, B = uuid.uuid4(), uuid.uuid4()
WAIT = 10.0  # a bound on waits that end as soon as the turn is given


def queue_up(
    turns: AggregateTurns, aggregates: frozenset[uuid.UUID], name: str, order: list[str]
) -> threading.Thread:
    """A thread that waits its turn on ``aggregates`` and notes ``name`` when it has it."""

    def take_turn() -> None:
        with turns.turn(aggregates, within=WAIT):
            order.append(name)

    waiting = turns.waiting()
    thread = threading.Thread(target=take_turn)
    thread.start()
    until_queued(turns, waiting + 1)
    return thread


def until_queued(turns: AggregateTurns, count: int) -> None:
    queued = threading.Event()
    for _ in range(100_000):
        if turns.waiting() >= count:
            queued.set()
            break
        queued.wait(0.0001)
    assert queued.is_set()


def test_turns_on_other_aggregates_do_not_wait() -> None:
    turns = AggregateTurns()
    order: list[str] = []
    with turns.turn(frozenset({A}), within=WAIT):
        other = threading.Thread(target=lambda: queue_free(turns, frozenset({B}), order))
        other.start()
        other.join(WAIT)
        assert order == ["B"]  # while A is held


def queue_free(turns: AggregateTurns, aggregates: frozenset[uuid.UUID], order: list[str]) -> None:
    with turns.turn(aggregates, within=0.0):
        order.append("B")


def test_waiters_on_one_aggregate_go_in_arrival_order() -> None:
    turns = AggregateTurns()
    order: list[str] = []
    with turns.turn(frozenset({A}), within=WAIT):
        threads = [queue_up(turns, frozenset({A}), name, order) for name in "123"]
        assert order == []
        assert turns.claimed(frozenset({A}))
    for thread in threads:
        thread.join(WAIT)
    assert order == ["1", "2", "3"]
    assert not turns.claimed(frozenset({A, B}))


def test_a_waiter_for_two_aggregates_is_not_overtaken() -> None:
    turns = AggregateTurns()
    order: list[str] = []
    with turns.turn(frozenset({A}), within=WAIT):
        both = queue_up(turns, frozenset({A, B}), "A+B", order)
        # B is free, but an earlier waiter wants it: this one waits behind.
        later = queue_up(turns, frozenset({B}), "B", order)
        assert order == []
    both.join(WAIT)
    later.join(WAIT)
    assert order == ["A+B", "B"]


def test_no_turn_when_the_aggregate_stays_busy() -> None:
    turns = AggregateTurns()
    with turns.turn(frozenset({A}), within=WAIT):
        with pytest.raises(NoTurn), turns.turn(frozenset({A, B}), within=0.01):
            pytest.fail("granted a turn on a held aggregate")
        assert turns.waiting() == 0
        # The one that gave up no longer holds B back.
        with turns.turn(frozenset({B}), within=0.0):
            pass


def test_a_failing_holder_gives_its_turn_back() -> None:
    turns = AggregateTurns()
    with pytest.raises(RuntimeError), turns.turn(frozenset({A}), within=WAIT):
        raise RuntimeError("the handler refused")
    assert not turns.claimed(frozenset({A}))
    with turns.turn(frozenset({A}), within=0.0):
        pass


def test_nothing_to_write_takes_no_turn() -> None:
    turns = AggregateTurns()
    with turns.turn(frozenset({A}), within=WAIT), turns.turn(frozenset(), within=0.0):
        assert turns.waiting() == 0
