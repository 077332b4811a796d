"""Loading many small aggregates with one query.

A bulk enrolment places up to 5,000 people and writes each one's participation record.
Loading those records through the repository costs a query each (two for a record that may
not exist yet); here the events of all of them come back from one query on the events table
and each aggregate is rebuilt from its events as the repository rebuilds one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from training.core.aggregate import TrainingAggregate
from training.core.application import TrainingApplication


def _select_events(
    recorder: PostgresApplicationRecorder, aggregate_ids: Sequence[UUID]
) -> list[StoredEvent]:
    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
        "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, (list(aggregate_ids),))
        return [
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in curs.fetchall()
        ]


def load_many(
    app: TrainingApplication, aggregate_ids: Sequence[UUID]
) -> dict[UUID, TrainingAggregate]:
    """The aggregates among ``aggregate_ids`` that exist, each rebuilt from all its events."""
    ids = list(dict.fromkeys(aggregate_ids))
    if not ids:
        return {}
    recorder = app.recorder
    events: dict[UUID, list[Any]] = {}
    if isinstance(recorder, PostgresApplicationRecorder):
        for stored in _select_events(recorder, ids):
            domain_event = app.mapper.to_domain_event(stored)
            events.setdefault(domain_event.originator_id, []).append(domain_event)
    else:  # the in-memory store of the unit tests
        for aggregate_id in ids:
            found = [app.mapper.to_domain_event(s) for s in recorder.select_events(aggregate_id)]
            if found:
                events[aggregate_id] = found
    aggregates: dict[UUID, TrainingAggregate] = {}
    for aggregate_id, aggregate_events in events.items():
        aggregate = project_aggregate(None, aggregate_events)
        assert isinstance(aggregate, TrainingAggregate)
        aggregates[aggregate_id] = aggregate
    return aggregates
