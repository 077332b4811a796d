"""Composes the service from its settings: the one place where the layers meet."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from eventsourcing.utils import get_topic
from litestar.concurrency import set_asyncio_executor

from training.assessments import handlers as assessments
from training.cohorts import handlers as cohorts
from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.idempotency_store import ExpiredRecordsPurge, IdempotencyStore
from training.core.projection_runner import ProjectionSupervisor
from training.core.rate_limit_store import SharedBucketStore, draw_pool
from training.core.read_store import ImportPace, ReadStore
from training.core.retry import RetryPolicy
from training.curricula import handlers as curricula
from training.identity.handlers import sso
from training.identity.keys import KeyRing
from training.infra.database import Database
from training.infra.recorder import TrainingProcessRecorder, TrainingRecorder
from training.infra.secretbox import SecretBox
from training.infra.settings import Settings
from training.people.handlers import carry_over, imports, teams
from training.people.handlers import members as people
from training.people.handlers.import_jobs import ImportJobStore, SqlPeopleDirectory
from training.people.handlers.import_runner import ImportRunner
from training.planning.handlers import learning
from training.registry import PROJECTIONS
from training.reports import handlers as reports
from training.reports.supervisor import ReportingSupervisor, report_worker
from training.reviews import handlers as reviews
from training.skills import handlers as skills
from training.tenancy import handlers as tenancy


@dataclass
class Services:
    """What the process wired: the application and its bus, the stores, the keys, and the
    background work. The app hands controllers what they need of it (``app.py``)."""

    settings: Settings
    database: Database
    app: TrainingApplication
    bus: CommandBus
    store: ReadStore
    idempotency: IdempotencyStore
    imports: ImportJobStore
    import_runner: ImportRunner
    keys: KeyRing
    # The OAuth2 token server (identity.http.oauth), imported with the web app only.
    token_server: Any
    # The rate limits' buckets, shared with every process on the database (ADR 0035).
    rate_limits: SharedBucketStore
    supervisor: ProjectionSupervisor | None = None


# The event store is synchronous: commands run in worker threads. The executor is never
# larger than the write pool, so a burst waits for a thread instead of timing out on a
# pooled connection (which the library retries for a long time).
WRITE_POOL_SIZE = 8
WRITE_POOL_OVERFLOW = 4
# A runner reads its upstream and writes its view from one thread: one pooled connection each
# (and one more on demand). With two, a serve process held 86 of PostgreSQL's 100 default
# connections; with one, 65.
RUNNER_POOL_SIZE = 1

HANDLERS = {
    **tenancy.HANDLERS,
    **people.HANDLERS,
    **imports.HANDLERS,
    **carry_over.HANDLERS,
    **skills.HANDLERS,
    **cohorts.HANDLERS,
    **assessments.HANDLERS,
    **reviews.HANDLERS,
    **learning.HANDLERS,
    **curricula.HANDLERS,
    **sso.HANDLERS,
    **reports.HANDLERS,
    **teams.HANDLERS,
}


def training_application(database: Database) -> TrainingApplication:
    env = database.eventsourcing_env(pool_size=WRITE_POOL_SIZE, max_overflow=WRITE_POOL_OVERFLOW)
    env["AGGREGATE_CACHE_MAXSIZE"] = "5000"
    env["APPLICATION_RECORDER_TOPIC"] = get_topic(TrainingRecorder)
    return TrainingApplication(env=env)


def command_bus(app: TrainingApplication, settings: Settings | None = None) -> CommandBus:
    budget = (settings or Settings()).command_retry_budget
    return CommandBus(app, HANDLERS, retry=RetryPolicy(budget=budget))


def projection_supervisor(database: Database) -> ProjectionSupervisor:
    env = database.eventsourcing_env(pool_size=RUNNER_POOL_SIZE, max_overflow=1)
    # The planning process writes a re-plan per track in one transaction.
    env["PROCESS_RECORDER_TOPIC"] = get_topic(TrainingProcessRecorder)
    return ProjectionSupervisor(PROJECTIONS, env, database.app_url)


class ServiceSupervisor(ReportingSupervisor):
    """The projections and the reports, plus the purge of expired idempotency records."""

    purge: ExpiredRecordsPurge | None = None

    def start(self) -> None:
        super().start()
        if self.purge is not None:
            self.purge.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.purge is not None:
            self.purge.stop(timeout)
        super().stop(timeout)


def reporting_supervisor(
    database: Database, bus: CommandBus, settings: Settings
) -> ProjectionSupervisor:
    """The projections, plus the report trigger, the report workers (one per render process)
    and the purge of expired idempotency records (started with them, so they run in `serve`
    and in `worker`)."""
    base = projection_supervisor(database)
    supervisor = ServiceSupervisor(
        base.specs,
        base.env,
        base.lock_conninfo,
        workers=[
            report_worker(
                bus, database.app_url, database.worker_url, render_delay=settings.test_render_delay
            )
            for _ in range(settings.render_processes)
        ],
    )
    supervisor.purge = ExpiredRecordsPurge(database.worker_url)
    return supervisor


def import_pace(database: Database) -> ImportPace:
    """An import waits, batch by batch, for every view of the training application's events
    to show it, so other tenants' writes never queue behind the whole import (ADR 0028)."""
    views = [spec.info for spec in PROJECTIONS if spec.upstream is TrainingApplication]
    return ImportPace(database.app_url, views)


def build_services(settings: Settings, database: Database, *, run_projections: bool) -> Services:
    from training.identity.http.oauth import TokenServer
    from training.infra.settings import allow_plain_http_for_development

    allow_plain_http_for_development(settings)
    set_asyncio_executor(ThreadPoolExecutor(max_workers=WRITE_POOL_SIZE + WRITE_POOL_OVERFLOW))
    app = training_application(database)
    box = SecretBox.from_settings(settings)
    keys = KeyRing(database.app_url, box)
    store = ReadStore(
        database.app_url,
        min_size=2,
        max_size=settings.db_pool_size,
        read_conninfo=database.read_url,
    )
    bus = command_bus(app, settings)
    import_store = ImportJobStore(database.app_url, worker_conninfo=database.worker_url)
    return Services(
        settings=settings,
        database=database,
        app=app,
        bus=bus,
        imports=import_store,
        import_runner=ImportRunner(
            bus, import_store, SqlPeopleDirectory(import_store), pace=import_pace(database)
        ),
        store=store,
        idempotency=IdempotencyStore(
            store.pool, box, store.liveness, ttl=timedelta(seconds=settings.idempotency_ttl)
        ),
        keys=keys,
        token_server=TokenServer(app, settings, keys),
        rate_limits=SharedBucketStore(draw_pool(database.app_url), box.derive("rate-limits")),
        supervisor=reporting_supervisor(database, bus, settings) if run_projections else None,
    )
