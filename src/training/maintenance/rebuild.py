"""Rebuilds a read model from the events, reporting progress.

The rebuild replays every event the view follows into the view's own tables in one
transaction that first empties them: until it commits, every reader sees the view as it was,
never an empty or half-built one; when it commits, the rebuilt view replaces it at once.
The transaction logs in as the admin only to empty the tables (the service's role may not
delete from an append-only view such as the audit log) and then becomes the service's role,
so every row written is checked by row-level security as the runner's are.

An event the replay cannot apply rolls that transaction back, leaving the view as it was; the
rebuild then replays the way the runner does, batch by batch after emptying the tables, and
quarantines what it cannot apply (ADR 0026): it finishes, and ``projections retry`` applies
what it set aside once the cause is fixed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.utils import Environment
from psycopg import Cursor, sql

from training.core import held_events
from training.core.projection_runner import (
    LedByCaller,
    ProjectionBusy,
    ProjectionSupervisor,
    leader_lock_key,
    maintenance_lock_key,
    take_lock,
)
from training.core.quarantine import is_transient
from training.core.views import ProjectionSpec
from training.infra.database import APP_ROLE, Database
from training.registry import by_name

__all__ = ["Progress", "ProjectionBusy", "rebuild", "rebuild_spec"]

Progress = Callable[[int, int], None]
# Events read per query; the pipeline is synced after each page.
PAGE = 500
log = structlog.get_logger(__name__)


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
        total = _count(lock, spec.info.events_table, topics)
        progress(0, total)
        try:
            return _replace_in_one_transaction(database, spec, tracking, total, progress)
        except Exception as error:  # an event it cannot apply: the view is as it was
            if is_transient(error):
                raise
            log.warning(
                "projection.rebuild_quarantining", projection=name, error=type(error).__name__
            )
        with psycopg.connect(database.admin_url) as admin, admin.transaction():
            for table in view_class.tables:
                schema, _, bare = table.partition(".")
                admin.execute(
                    sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(schema), sql.Identifier(bare))
                )
            admin.execute(sql.SQL("DELETE FROM {}").format(tracking))
        # The runner's way, under the leader lock this session holds: batches, quarantine.
        runner = ProjectionSupervisor(
            [spec],
            database.eventsourcing_env(pool_size=2, max_overflow=2),
            database.app_url,
            leadership=LedByCaller(database.app_url),
        )
        runner.start()
        try:
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
                failed = runner.errors.get(name)
                if failed is not None:
                    raise failed
                time.sleep(0.2)
        finally:
            runner.stop()


def _replace_in_one_transaction(
    database: Database,
    spec: ProjectionSpec,
    tracking: sql.Composed,
    total: int,
    progress: Progress,
) -> int:
    """Empties the view and replays every event it follows, in one transaction."""
    view_class = spec.view_class
    assert view_class is not None
    env = database.eventsourcing_env(pool_size=1, max_overflow=0, as_admin=True)
    factory = InfrastructureFactory[Any].construct(env=Environment(spec.name, env))
    view = factory.tracking_recorder(view_class)
    projection_class: Any = spec.projection_class  # a read model's (rebuild_spec refuses policies)
    projection = projection_class(view=view)
    upstream = spec.upstream(env=database.eventsourcing_env(pool_size=1, max_overflow=0))

    def empty_then_become_the_service(cursor: Cursor[Any]) -> None:
        for table in view_class.tables:
            schema, _, bare = table.partition(".")
            cursor.execute(
                sql.SQL("DELETE FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(bare))
            )
        cursor.execute(sql.SQL("DELETE FROM {}").format(tracking))
        cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(APP_ROLE)))

    done = 0
    try:
        with view.batch(prologue=empty_then_become_the_service):
            start = 0
            while True:
                page = upstream.recorder.select_notifications(
                    start, PAGE, topics=list(spec.info.topics), inclusive_of_start=False
                )
                if not page:
                    break
                for notification in page:
                    event = upstream.mapper.to_domain_event(notification)
                    projection.process_event(event, Tracking(upstream.name, notification.id))
                view.sync_batch()
                done += len(page)
                start = page[-1].id
                progress(min(done, total), total)
    finally:
        upstream.close()
        view.datastore.close()
    progress(total, total)
    return done
