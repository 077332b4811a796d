"""Snapshots come back typed, and an aggregate whose attributes drift from its declared
snapshot state is refused when the snapshot is taken, not when it is read."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypedDict
from uuid import UUID

import pytest

from training.core.aggregate import TrainingAggregate
from training.core.mapper import MsgspecMapper, PassThroughTranscoder
from training.core.snapshots import TrainingSnapshot, due
from training.people.domain.seats import SeatRoster


def roster_with(seats: int) -> SeatRoster:
    roster = SeatRoster.open(uuid.uuid4())
    for _ in range(seats):
        roster.take((uuid.uuid4(),), seat_limit=1_000)
    roster.collect_events()
    return roster


def test_a_roster_comes_back_from_its_stored_snapshot_with_its_types() -> None:
    roster = roster_with(5)
    mapper = MsgspecMapper(PassThroughTranscoder())
    stored = mapper.to_stored_event(TrainingSnapshot.take(roster))
    assert stored.topic == "training.core:Snapshot"
    read = mapper.to_domain_event(stored)
    assert isinstance(read, TrainingSnapshot)
    restored = read.mutate(None)
    assert isinstance(restored, SeatRoster)
    assert vars(restored) == vars(roster)
    assert isinstance(restored.tenant_id, UUID)
    assert isinstance(restored.created_on, datetime)
    assert (restored.id, restored.version, restored.taken) == (roster.id, 6, 5)
    restored.take((uuid.uuid4(),), seat_limit=1_000)  # and it goes on from there
    assert restored.version == 7


class Drifted(TrainingAggregate):
    TOPIC = "tests.snapshots:Drifted"
    snapshot_interval = 2

    class Created(TrainingAggregate.Created):
        TOPIC = "tests.snapshots:Drifted.Created"

    class SnapshotState(TypedDict):
        _created_on: datetime
        _modified_on: datetime
        tenant_id: UUID | None

    def __init__(self, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.added_later = 1  # not declared in SnapshotState


def test_an_undeclared_attribute_is_refused_when_the_snapshot_is_taken() -> None:
    with pytest.raises(TypeError, match="missing \\['added_later'\\]"):
        TrainingSnapshot.take(Drifted(tenant_id=uuid.uuid4()))


def test_a_snapshot_is_due_when_an_event_reaches_a_multiple_of_the_interval() -> None:
    roster = SeatRoster.open(uuid.uuid4())
    for _ in range(SeatRoster.snapshot_interval - 2):
        roster.take((uuid.uuid4(),), seat_limit=10_000)
    before = roster.collect_events()
    assert due([roster], before) == []
    roster.take((uuid.uuid4(),), seat_limit=10_000)
    roster.take((uuid.uuid4(),), seat_limit=10_000)  # version 200, then 201, in one save
    assert due([roster], roster.collect_events()) == [roster]
