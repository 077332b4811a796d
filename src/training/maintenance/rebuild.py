"""Rebuilds a read model from the events: empty its tables, replay, report progress.

An event the replay cannot apply is quarantined, as the runner would (ADR 0026): the rebuild
finishes, and ``projections retry`` applies what it set aside once the cause is fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from training.core import held_events
from training.core.projection_runner import (
    BatchingProjectionRunner,
    ProjectionBusy,
    leader_lock_key,
    maintenance_lock_key,
    take_lock,
)
from training.core.views import ProjectionSpec
from training.infra.database import Database
from training.registry import by_name

__all__ = ["Progress", "ProjectionBusy", "rebuild", "rebuild_spec"]

Progress = Callable[[int, int], None]


def _count(
    conn: psycopg.Connection, events: sql.Composed, topics: list[str], upto: int | None = None
) -> int:
    row = conn.execute(
        sql.SQL(
            "SELECT count(*) FROM {} WHERE topic = ANY(%s) "
            "AND (%s::bigint IS NULL OR notification_id <= %s)"
        ).format(events),
        (topics, upto, upto),
    ).fetchone()
    return int(row[0]) if row else 0


def rebuild(database: Database, name: str, progress: Progress) -> int:
    """Replays every event of projection ``name``; returns how many it processed."""
    return rebuild_spec(database, by_name(name), progress)


def rebuild_spec(database: Database, spec: ProjectionSpec, progress: Progress) -> int:
    name = spec.name
    view_class = spec.view_class
    if view_class is None:
        msg = f"{name} owns its events (an event-sourced policy); it is not rebuilt from scratch"
        raise ProjectionBusy(msg)
    projection_class: Any = spec.runnable_class
    topics = list(spec.info.topics)
    tracking = sql.SQL("training.{}").format(sql.Identifier(f"{name}_tracking"))
    with psycopg.connect(database.app_url, autocommit=True) as lock:
        take_lock(
            lock,
            leader_lock_key(name),
            f"the {name} projection is running elsewhere (serve or worker); stop it first",
        )
        take_lock(
            lock,
            maintenance_lock_key(name),
            f"a retry or rebuild of the {name} projection is running; wait for it to finish",
        )
        # Before the tables are emptied: a crash in between leaves rows quarantined for a
        # view that still holds their tenants' older rows, which a second rebuild sorts out.
        with psycopg.connect(database.worker_url) as worker:
            held_events.resolve_for_rebuild(lock, worker, name)
        with psycopg.connect(database.admin_url) as admin, admin.transaction():
            for table in view_class.tables:
                schema, _, bare = table.partition(".")
                admin.execute(
                    sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(schema), sql.Identifier(bare))
                )
            admin.execute(sql.SQL("DELETE FROM {}").format(tracking))
        total = _count(lock, spec.info.events_table, topics)
        progress(0, total)
        runner = BatchingProjectionRunner(
            application_class=spec.upstream,
            projection_class=projection_class,
            view_class=view_class,
            env=database.eventsourcing_env(pool_size=2, max_overflow=2),
        )
        with runner:
            while True:
                row = lock.execute(
                    sql.SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(
                        tracking
                    ),
                    (spec.info.upstream,),
                ).fetchone()
                position = int(row[0]) if row and row[0] is not None else 0
                done = _count(lock, spec.info.events_table, topics, position) if position else 0
                progress(done, total)
                if done >= total:
                    return total
                runner.run_forever(timeout=0.2)
