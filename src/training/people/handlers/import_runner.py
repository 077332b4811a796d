"""Runs import jobs one at a time in a background thread, resuming interrupted ones."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol
from uuid import UUID

import structlog

from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.people.handlers.imports import (
    BATCH_SIZE,
    ImportJobs,
    PeopleDirectory,
    Progress,
    run_import,
)

log = structlog.get_logger(__name__)


class PendingJobs(ImportJobs, Protocol):
    def pending(self) -> list[tuple[UUID, UUID]]: ...


def context_for(actor: str, request_id: str, tenant_id: UUID) -> CommandContext:
    """The context of the request that asked for the import: its events carry that actor."""
    kind, _, subject = actor.partition(":")
    return CommandContext(Actor(ActorKind(kind), subject), request_id, tenant_id)


class Pace(Protocol):
    """Holds an import after a batch of ``rows`` (written at ``position``) until the views
    show it; answers how many rows the next batch may hold."""

    first_batch: int

    def __call__(self, tenant_id: UUID, position: int | None, rows: int) -> int: ...


class ImportRunner:
    def __init__(
        self,
        bus: CommandBus,
        jobs: PendingJobs,
        directory: PeopleDirectory,
        pace: Pace | None = None,
    ) -> None:
        self.bus = bus
        self.jobs = jobs
        self.directory = directory
        self.pace = pace
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        # One job at a time: imports share the tenant's seat roster and the write lock.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imports")
        for tenant_id, import_id in self.jobs.pending():
            self.submit(tenant_id, import_id)

    def submit(self, tenant_id: UUID, import_id: UUID) -> Future[None]:
        assert self._executor is not None, "the runner is not started"
        return self._executor.submit(self._run, tenant_id, import_id)

    def stop(self) -> None:
        self._stopping.set()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _pace(self, tenant_id: UUID, position: int | None, rows: int) -> int:
        if self.pace is None:
            return BATCH_SIZE
        return self.pace(tenant_id, position, rows)

    def _run(self, tenant_id: UUID, import_id: UUID) -> None:
        structlog.contextvars.bind_contextvars(tenant_id=str(tenant_id), import_id=str(import_id))
        try:
            progress = run_import(
                self.bus,
                self.jobs,
                self.directory,
                context_for,
                tenant_id,
                import_id,
                should_stop=self._stopping.is_set,
                pace=lambda position, rows: self._pace(tenant_id, position, rows),
                first_batch=self.pace.first_batch if self.pace else BATCH_SIZE,
            )
            if progress is not None:
                log.info(
                    "import.finished",
                    created=progress.created,
                    updated=progress.updated,
                    unchanged=progress.unchanged,
                    failed=progress.failed,
                )
        except Exception as error:
            log.exception("import.failed")
            detail = f"the import stopped: {type(error).__name__}"
            self.jobs.finish(tenant_id, import_id, Progress(), detail)
