"""The one-time data steps of ADR 0025, run by ``training migrate`` (and so by ``serve``).

Deployments that enrolled people before participation records were kept need two things
brought up to date, once (``migrations.run_once`` records each step when it is done):

* ``PARTICIPATION``: ``RecordParticipation`` for every cohort ever scheduled. An open cohort
  is listed on the record of everyone in it, and anyone deactivated meanwhile is withdrawn
  (the first person waiting is promoted), as a deactivation now does. A closed cohort
  changes nothing. Normal commands through the bus: the views, the planning process and the
  audit log follow them like any other.
* ``TRACK_COHORTS``: the cohorts on each training track (``training.track_cohorts``,
  migration 0021). The tracks view keeps them since then, but had already passed the
  planning process's earlier ``CohortJoined`` events. This step replays the view's own
  ``CohortJoined`` and ``CohortLeft`` events up to its position into the table, holding the
  view's tracking row meanwhile, so the view's next transaction waits and then goes on from
  there: no rebuild, and the view may run meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from training.cohorts.domain.cohorts import Cohort
from training.cohorts.handlers.enrolments import RecordParticipation
from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.context import CommandContext
from training.core.tenant_scope import scope_to
from training.infra.database import Database
from training.infra.migrations import DataReport
from training.planning.domain.tracks import TrainingTrack
from training.planning.process import Planning
from training.planning.views.tracks import TRACKS

PARTICIPATION = "0025-participation-records"
TRACK_COHORTS = "0025-track-cohorts"
PAGE = 500


def _notifications(app: Any, topics: list[str], stop: int | None = None) -> Iterator[Notification]:
    start = 1
    while True:
        page = app.recorder.select_notifications(start, PAGE, stop=stop, topics=topics)
        if not page:
            return
        yield from page
        start = page[-1].id + 1


def record_participation(bus: CommandBus) -> DataReport:
    """Lists every open cohort on its people's participation records (ADR 0025)."""
    app: TrainingApplication = bus.app
    cohorts = changed = 0
    for notification in _notifications(app, [get_topic(Cohort.Scheduled)]):
        scheduled = app.mapper.to_domain_event(notification)
        assert isinstance(scheduled, Cohort.Scheduled)
        if scheduled.tenant_id is None:
            continue
        context = CommandContext.system(
            "migrate", f"participation-{uuid.uuid4().hex[:8]}", scheduled.tenant_id
        )
        changed += int(bus.execute(context, RecordParticipation(scheduled.originator_id)).result)
        cohorts += 1
    return {"cohorts": cohorts, "records_changed": changed}


JOINED = get_topic(TrainingTrack.CohortJoined)
LEFT = get_topic(TrainingTrack.CohortLeft)
Joined = tuple[UUID, int, datetime]  # curriculum, version, when


def fill_track_cohorts(database: Database) -> DataReport:
    """Writes each track's cohorts as the tracks view's own events up to its position say."""
    planning = Planning(env=database.eventsourcing_env(pool_size=1, max_overflow=0))
    try:
        with psycopg.connect(database.app_url) as conn, conn.transaction():
            # Held until the commit: the view's next transaction updates this row, so it
            # waits, and then applies what comes after the position read here.
            row = conn.execute(
                "SELECT notification_id FROM training.tracks_tracking "
                "WHERE application_name = %s FOR UPDATE",
                (TRACKS.info.upstream,),
            ).fetchone()
            position = int(row[0]) if row and row[0] is not None else 0
            if not position:
                return {"tracks": 0, "cohorts": 0}
            held = _held_by_the_view(database)
            tracks = _cohorts_of_tracks(planning, position, held)
            for tenant_id, of_tenant in tracks.items():
                _write(conn, tenant_id, of_tenant)
    finally:
        planning.close()
    listed = [cohorts for of_tenant in tracks.values() for cohorts in of_tenant.values()]
    return {"tracks": sum(1 for c in listed if c), "cohorts": sum(len(c) for c in listed)}


def _held_by_the_view(database: Database) -> set[int]:
    """Events the tracks view set aside (ADR 0026): its retry applies them, not this step."""
    with psycopg.connect(database.worker_url) as worker:
        rows = worker.execute(
            "SELECT notification_id FROM training.projection_quarantine "
            "WHERE view_name = %s AND resolved_at IS NULL",
            (TRACKS.name,),
        ).fetchall()
    return {int(row[0]) for row in rows}


def _cohorts_of_tracks(
    planning: Planning, position: int, held: set[int]
) -> dict[UUID, dict[UUID, dict[UUID, Joined]]]:
    """tenant -> track -> cohort -> what was joined, after the events up to ``position``."""
    tracks: dict[UUID, dict[UUID, dict[UUID, Joined]]] = {}
    for notification in _notifications(planning, [JOINED, LEFT], stop=position):
        if notification.id in held:
            continue
        event: Any = planning.mapper.to_domain_event(notification)
        assert event.tenant_id is not None, "tracks always belong to a tenant"
        cohorts = tracks.setdefault(event.tenant_id, {}).setdefault(event.originator_id, {})
        if isinstance(event, TrainingTrack.CohortJoined):
            cohorts[event.cohort_id] = (event.curriculum_id, event.version, event.timestamp)
        elif isinstance(event, TrainingTrack.CohortLeft):
            cohorts.pop(event.cohort_id, None)
    return tracks


def _write(
    conn: psycopg.Connection[Any], tenant_id: UUID, tracks: dict[UUID, dict[UUID, Joined]]
) -> None:
    # Row-level security checks every row against the tenant the transaction is scoped to.
    scope_to(conn, tenant_id)
    conn.execute("DELETE FROM training.track_cohorts WHERE tenant_id = %s", (tenant_id,))
    rows = [
        (track_id, tenant_id, cohort_id, curriculum_id, version, joined_at)
        for track_id, cohorts in tracks.items()
        for cohort_id, (curriculum_id, version, joined_at) in cohorts.items()
    ]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO training.track_cohorts (track_id, tenant_id, cohort_id, curriculum_id, "
            "curriculum_version, joined_at) VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )
