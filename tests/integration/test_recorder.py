"""Large transactions reach the event store: a release re-plans thousands of tracks at once.

A pipelined transaction of more than about 600 KB never returned (see ``infra/recorder.py``);
these store more than twice that in one transaction, through both recorders the service uses.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import psycopg
from eventsourcing.persistence import InfrastructureFactory, ProcessRecorder, StoredEvent, Tracking
from eventsourcing.utils import Environment, get_topic

from training.bootstrap import training_application
from training.infra.database import Database
from training.infra.recorder import TrainingProcessRecorder

EVENTS = 300
EVENT_BYTES = 5_000  # a curriculum release's Replanned event is about 4.9 KB
TIMEOUT_S = 120.0


def large_batch(topic: str) -> list[StoredEvent]:
    return [
        StoredEvent(
            originator_id=uuid.uuid4(),
            originator_version=1,
            topic=topic,
            state=b'{"padding":"' + b"x" * EVENT_BYTES + b'"}',
        )
        for _ in range(EVENTS)
    ]


def within_timeout(call: Callable[[], Any]) -> Any:
    # A regression hangs rather than fails: a daemon thread lets the suite report it and exit.
    outcome: Future[Any] = Future()

    def run() -> None:
        try:
            outcome.set_result(call())
        except BaseException as error:
            outcome.set_exception(error)

    threading.Thread(target=run, daemon=True).start()
    return outcome.result(timeout=TIMEOUT_S)


def count(database: Database, table: str, topic: str) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM training.{table} WHERE topic = %s",
            (topic,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_application_stores_a_transaction_of_1_5_mb(database: Database) -> None:
    app = training_application(database)
    topic = f"tests.recorder:Large{uuid.uuid4().hex}"
    try:
        ids = within_timeout(lambda: app.recorder.insert_events(large_batch(topic)))
    finally:
        app.close()
    assert ids is not None
    assert len(ids) == EVENTS
    assert ids == sorted(ids)
    assert count(database, "training_events", topic) == EVENTS


def test_the_planning_process_stores_a_large_batch_with_its_position(
    database: Database,
) -> None:
    env = Environment("planning", database.eventsourcing_env(pool_size=1, max_overflow=0))
    env["PROCESS_RECORDER_TOPIC"] = get_topic(TrainingProcessRecorder)
    factory = InfrastructureFactory[Any].construct(env=env)
    recorder = factory.process_recorder()
    assert isinstance(recorder, TrainingProcessRecorder)
    assert isinstance(recorder, ProcessRecorder)
    topic = f"tests.recorder:Large{uuid.uuid4().hex}"
    position = 10_000_000 + uuid.uuid4().int % 1_000_000
    try:
        within_timeout(
            lambda: recorder.insert_events(
                large_batch(topic), tracking=Tracking("training", position)
            )
        )
        assert recorder.max_tracking_id("training") == position
    finally:
        factory.close()
    assert count(database, "planning_events", topic) == EVENTS
