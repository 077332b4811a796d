"""Why an engineer skipped a module, why a cohort was cancelled and why a person was withdrawn
are answered for keeping beside the events, never recorded in them; events stored with the
text (version 1) are read without it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from eventsourcing.persistence import StoredEvent

from training.cohorts.domain.cohorts import Cohort
from training.core.errors import RuleViolated
from training.core.mapper import MsgspecMapper, PassThroughTranscoder
from training.planning.domain.learning import LearningRecord, ModuleState
from training.planning.domain.tracks import TrainingTrack

TENANT = uuid.uuid4()
SECRET = "Ann Example told me to"


def mapper() -> MsgspecMapper:
    return MsgspecMapper(transcoder=PassThroughTranscoder())


def stored_v1(topic: str, version: int, fields: str) -> StoredEvent:
    """An event as the previous release stored it: no class_version, the text inside."""
    return StoredEvent(
        originator_id=uuid.uuid4(),
        originator_version=version,
        topic=topic,
        state=(
            '{"timestamp":"2026-11-01T09:00:00Z","actor":"member:x","request_id":"r",'
            f'"tenant_id":"{TENANT}",{fields}}}'
        ).encode(),
    )


def test_a_skip_note_is_answered_not_recorded() -> None:
    member_id = uuid.uuid4()
    record = LearningRecord.open(TENANT, member_id)
    record.collect_events()
    with pytest.raises(RuleViolated) as refused:
        record.progress("c1", "m1", ModuleState.SKIPPED, "   ")
    assert refused.value.field == "reason"
    assert record.progress("c1", "m1", ModuleState.SKIPPED, f"  {SECRET} ") == SECRET
    [progressed] = record.collect_events()
    assert isinstance(progressed, LearningRecord.ModuleProgressed)
    stored = mapper().to_stored_event(progressed)
    assert SECRET.encode() not in stored.state
    assert b'"class_version":2' in stored.state
    # Nothing recorded, nothing to keep; a report without a note keeps none.
    assert record.progress("c1", "m1", ModuleState.SKIPPED, "again") is None
    assert record.progress("c1", "m1", ModuleState.STARTED, "") is None
    assert len(record.collect_events()) == 1


def test_a_module_progress_stored_with_its_note_is_read_without_it() -> None:
    member_id = uuid.uuid4()
    stored = stored_v1(
        LearningRecord.ModuleProgressed.TOPIC,
        2,
        f'"member_id":"{member_id}","curriculum_id":"c1","key":"m1","state":"skipped",'
        f'"note":"{SECRET}"',
    )
    event = mapper().to_domain_event(stored)
    assert isinstance(event, LearningRecord.ModuleProgressed)
    assert (event.member_id, event.key, event.state) == (member_id, "m1", ModuleState.SKIPPED)
    assert "note" not in vars(event)
    assert SECRET.encode() not in mapper().to_stored_event(event).state


def test_a_track_progress_stored_with_the_note_is_read_without_it() -> None:
    member_id = uuid.uuid4()
    stored = stored_v1(
        TrainingTrack.ProgressNoted.TOPIC,
        3,
        f'"member_id":"{member_id}","curriculum_id":"c1","key":"m1","state":"skipped",'
        f'"note":"{SECRET}"',
    )
    event = mapper().to_domain_event(stored)
    assert isinstance(event, TrainingTrack.ProgressNoted)
    assert (event.member_id, event.state) == (member_id, "skipped")
    assert "note" not in vars(event)
    track = TrainingTrack.open(TENANT, member_id)
    track.note_progress("c1", "m1", "skipped")
    [_, noted] = track.collect_events()
    assert b'"class_version":2' in mapper().to_stored_event(noted).state


def test_cohort_events_stored_with_their_reasons_are_read_without_them() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    withdrawn = mapper().to_domain_event(
        stored_v1(Cohort.Withdrawn.TOPIC, 4, f'"member_id":"{a}","reason":"{SECRET}"')
    )
    assert isinstance(withdrawn, Cohort.Withdrawn)
    assert withdrawn.member_id == a
    assert "reason" not in vars(withdrawn)
    cancelled = mapper().to_domain_event(
        stored_v1(Cohort.Cancelled.TOPIC, 5, f'"reason":"{SECRET}","withdrawn":["{a}","{b}"]')
    )
    assert isinstance(cancelled, Cohort.Cancelled)
    assert cancelled.withdrawn == (a, b)
    assert "reason" not in vars(cancelled)
    for event in (withdrawn, cancelled):
        assert SECRET.encode() not in mapper().to_stored_event(event).state


def test_new_cohort_events_carry_no_reason() -> None:
    cohort = Cohort.schedule(
        tenant_id=TENANT,
        name="Spring",
        curriculum_id=uuid.uuid4(),
        curriculum_version=1,
        module_keys=("m1",),
        starts_on=dt.date(2030, 3, 1),
        ends_on=dt.date(2030, 4, 1),
        timezone="Europe/Paris",
        capacity=1,
        facilitators=(),
    )
    a, b = uuid.uuid4(), uuid.uuid4()
    cohort.enrol((a, b))
    assert cohort.withdraw(a, SECRET).reason == SECRET
    cohort.cancel(SECRET)
    for event in cohort.collect_events():
        assert SECRET.encode() not in mapper().to_stored_event(event).state
