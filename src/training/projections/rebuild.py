"""Rebuilds a read model from the events: empty its tables, replay, report progress."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.projection import ProjectionRunner
from psycopg import sql

from training.infra.database import Database
from training.projections.base import TenantScopedView
from training.projections.registry import by_name
from training.projections.runner import leader_lock_key

Progress = Callable[[int, int], None]


class ProjectionBusy(RuntimeError):
    pass


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
    spec = by_name(name)
    view_class = spec.view_class
    if view_class is None:
        msg = f"{name} owns its events (an event-sourced policy); it is not rebuilt from scratch"
        raise ProjectionBusy(msg)
    projection_class: Any = spec.projection_class
    topics = list(spec.info.topics)
    tracking = sql.SQL("training.{}").format(sql.Identifier(f"{name}_tracking"))
    with psycopg.connect(database.app_url, autocommit=True) as lock:
        held = lock.execute("SELECT pg_try_advisory_lock(%s)", (leader_lock_key(name),)).fetchone()
        if not (held and held[0]):
            msg = f"the {name} projection is running elsewhere (serve or worker); stop it first"
            raise ProjectionBusy(msg)
        with psycopg.connect(database.admin_url) as admin, admin.transaction():
            for table in view_class.tables:
                schema, _, bare = table.partition(".")
                admin.execute(
                    sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(schema), sql.Identifier(bare))
                )
            admin.execute(sql.SQL("DELETE FROM {}").format(tracking))
        total = _count(lock, spec.info.events_table, topics)
        progress(0, total)
        runner: ProjectionRunner[Any, TenantScopedView] = ProjectionRunner(
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
