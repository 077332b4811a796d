"""The one-time step that takes learning notes and cohort reasons out of stored events.

The events are stored here as the previous release stored them (version 1, the text inside:
a skip note in the learning record's and the track's events, a cohort's cancellation reason,
withdrawal reasons), then ``training migrate``'s step runs.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.integration.previous_release import PreviousReleaseStore
from training.cohorts.domain.cohorts import Cohort
from training.core.bus import CommandBus
from training.core.personal_data import MemberDataChange, PersonalData
from training.infra.database import Database
from training.people.domain.members import Member
from training.planning.domain.learning import LearningRecord
from training.planning.domain.tracks import TrainingTrack
from training.upgrades.event_rewrite import FREE_TEXT, move_personal_data_out_of_events

TENANT = uuid.uuid4()
KEPT_NOTE = "skipped: Bob Mentor covered it"
KEPT_WITHDRAWAL = "moved to Carol Lead's team"
KEPT_CANCELLATION = "trainer Dave Trainer is ill"
DROPPED = ("Gone's own secret note", "Gone's secret reason")
SECRETS = (KEPT_NOTE, KEPT_WITHDRAWAL, KEPT_CANCELLATION, *DROPPED)


class OldStore(PreviousReleaseStore):
    """Writes events the way the previous release stored them, in both events tables."""

    def __init__(self, bus: CommandBus, database: Database) -> None:
        super().__init__(bus, TENANT, "client:old")
        self.database = database

    def planning_event(self, aggregate_id: uuid.UUID, topic: str, fields: dict[str, Any]) -> None:
        stored = self.stored(aggregate_id, topic, fields)
        with psycopg.connect(self.database.admin_url) as conn:
            conn.execute(
                "INSERT INTO training.planning_events (originator_id, originator_version, "
                "topic, state) VALUES (%s, %s, %s, %s)",
                (stored.originator_id, stored.originator_version, stored.topic, stored.state),
            )

    def member(self, external_id: str, name: str) -> uuid.UUID:
        member_id = Member.create_id(TENANT, external_id)
        data = (MemberDataChange(member_id, TENANT, PersonalData(name, None)),)
        self.event(
            member_id,
            Member.Registered.TOPIC,
            {
                "originator_topic": Member.TOPIC,
                "external_id": external_id,
                "roles": ["engineer"],
                "manager_id": None,
                "team": None,
                "job_title": None,
            },
            data,
        )
        return member_id

    def skip(self, member_id: uuid.UUID, note: str) -> uuid.UUID:
        record = LearningRecord.create_id(TENANT, member_id)
        self.event(
            record,
            LearningRecord.Opened.TOPIC,
            {"originator_topic": LearningRecord.TOPIC, "member_id": str(member_id)},
        )
        progress = {"member_id": str(member_id), "curriculum_id": "c1", "key": "m1"}
        self.event(
            record,
            LearningRecord.ModuleProgressed.TOPIC,
            {**progress, "state": "skipped", "note": note},
        )
        track = TrainingTrack.create_id(TENANT, member_id)
        self.planning_event(
            track,
            TrainingTrack.Opened.TOPIC,
            {"originator_topic": TrainingTrack.TOPIC, "member_id": str(member_id)},
        )
        self.planning_event(
            track,
            TrainingTrack.ProgressNoted.TOPIC,
            {**progress, "state": "skipped", "note": note},
        )
        return record


@pytest.fixture(scope="module")
def old(bus: CommandBus, database: Database) -> dict[str, uuid.UUID]:
    store = OldStore(bus, database)
    eng = store.member("ENG-1", "Eng Kept")
    gone = store.member("GONE-1", "Gone Person")
    store.event(gone, Member.Erased.TOPIC, {})
    eng_record = store.skip(eng, KEPT_NOTE)
    store.skip(gone, DROPPED[0])
    stay = uuid.uuid4()
    cohort = uuid.uuid4()
    store.event(
        cohort,
        Cohort.Scheduled.TOPIC,
        {
            "originator_topic": Cohort.TOPIC,
            "name": "Old cohort",
            "curriculum_id": str(uuid.uuid4()),
            "curriculum_version": 1,
            "module_keys": ["m1"],
            "starts_on": "2026-11-02",
            "ends_on": "2026-12-02",
            "timezone": "Europe/Paris",
            "capacity": 5,
            "facilitators": [],
        },
    )
    store.event(cohort, Cohort.Enrolled.TOPIC, {"member_ids": [str(eng), str(gone), str(stay)]})
    store.event(cohort, Cohort.Withdrawn.TOPIC, {"member_id": str(eng), "reason": KEPT_WITHDRAWAL})
    store.event(cohort, Cohort.Withdrawn.TOPIC, {"member_id": str(gone), "reason": DROPPED[1]})
    store.event(
        cohort, Cohort.Cancelled.TOPIC, {"reason": KEPT_CANCELLATION, "withdrawn": [str(stay)]}
    )
    return {"eng": eng, "gone": gone, "stay": stay, "cohort": cohort, "record": eng_record}


def stored_states(database: Database, table: str) -> list[tuple[uuid.UUID, int, int, bytes]]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT originator_id, originator_version, notification_id, state "
                "FROM training.{} ORDER BY notification_id"
            ).format(sql.Identifier(table))
        ).fetchall()
    return [(r[0], int(r[1]), int(r[2]), bytes(r[3])) for r in rows]


def test_the_step_moves_the_text_beside_the_events_and_keeps_history(
    bus: CommandBus, database: Database, old: dict[str, uuid.UUID]
) -> None:
    tables = ("training_events", "planning_events")
    before = {table: stored_states(database, table) for table in tables}
    assert any(s.encode() in state for *_, state in before["planning_events"] for s in SECRETS)

    report = move_personal_data_out_of_events(database.admin_url, bus)

    assert report is not None
    assert (report.learning_notes_kept, report.cohort_reasons_kept) == (1, 2)
    assert report.texts_dropped_for_erased == 2
    for table in tables:
        after = stored_states(database, table)
        # The same events, versions and positions: only their states changed.
        assert [e[:3] for e in after[: len(before[table])]] == [e[:3] for e in before[table]]
        for originator_id, version, _, state in after:
            for secret in SECRETS:
                assert secret.encode() not in state, (table, originator_id, version, secret)
    with psycopg.connect(database.admin_url) as conn:
        notes = conn.execute(
            "SELECT record_id, version, member_id, curriculum_id, module_key, note "
            "FROM training.learning_notes WHERE tenant_id = %s",
            (TENANT,),
        ).fetchall()
        reasons = conn.execute(
            "SELECT version, member_id, withdrawn, reason FROM training.cohort_reasons "
            "WHERE cohort_id = %s ORDER BY version",
            (old["cohort"],),
        ).fetchall()
        triggers = conn.execute(
            "SELECT tgname, tgenabled FROM pg_trigger "
            "WHERE tgname IN ('training_events_immutable', 'planning_events_immutable') "
            "ORDER BY 1"
        ).fetchall()
        ledger = conn.execute(
            "SELECT report FROM public.training_data_migrations WHERE name = %s", (FREE_TEXT,)
        ).fetchone()
    # Keyed by the event that carried the text, as the recorder keys new ones.
    assert notes == [(old["record"], 2, old["eng"], "c1", "m1", KEPT_NOTE)]
    assert reasons == [
        (3, old["eng"], [old["eng"]], KEPT_WITHDRAWAL),
        (5, None, [old["stay"]], KEPT_CANCELLATION),
    ]
    assert triggers == [("planning_events_immutable", "O"), ("training_events_immutable", "O")]
    assert ledger is not None
    assert ledger[0]["cohort_reasons_kept"] == 2
    # Every event still reads, in its current shape.
    cohort = bus.app.repository.get(old["cohort"])
    assert isinstance(cohort, Cohort)
    assert (str(cohort.status), cohort.enrolled) == ("cancelled", [])
    record = bus.app.repository.get(old["record"])
    assert isinstance(record, LearningRecord)
    assert record.states == {("c1", "m1"): "skipped"}


def test_the_step_runs_once(bus: CommandBus, database: Database, old: dict[str, uuid.UUID]) -> None:
    move_personal_data_out_of_events(database.admin_url, bus)
    before = stored_states(database, "training_events")
    assert move_personal_data_out_of_events(database.admin_url, bus) is None
    assert stored_states(database, "training_events") == before
