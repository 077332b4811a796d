"""Import jobs: one file's batches run to the end, its progress kept where it can be polled;
jobs run one at a time in a background thread, and interrupted ones are resumed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Protocol
from uuid import UUID

import structlog

from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.personal_data import PersonalData
from training.people.domain.members import Member
from training.people.handlers.import_files import (
    ImportFileError,
    RowError,
    read_records,
    validate,
)
from training.people.handlers.imports import BATCH_SIZE, ImportMembers, MemberRow, RowOutcome

log = structlog.get_logger(__name__)


# One job.


class ImportJobs(Protocol):
    """Where import jobs and their progress are kept (``import_jobs.ImportJobStore``)."""

    def start(self, tenant_id: UUID, import_id: UUID) -> tuple[str, bytes, str, str] | None: ...

    def progress(self, tenant_id: UUID, import_id: UUID, progress: Progress) -> None: ...

    def finish(
        self, tenant_id: UUID, import_id: UUID, progress: Progress, detail: str | None
    ) -> None: ...


class PeopleDirectory(Protocol):
    """Reads the stored personal data, so an unchanged row records no change."""

    def current(self, tenant_id: UUID, member_ids: Iterable[UUID]) -> dict[UUID, PersonalData]: ...


@dataclass
class Progress:
    total_rows: int = 0
    processed_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    # The position of the last batch that wrote something: reading at it shows the members.
    position: int | None = None

    def record(self, outcomes: Iterable[RowOutcome]) -> None:
        for outcome in outcomes:
            self.processed_rows += 1
            if outcome.result == "failed":
                self.failed += 1
                self.errors.append(RowError(outcome.row, outcome.field, outcome.message or ""))
            else:
                setattr(self, outcome.result, getattr(self, outcome.result) + 1)


def run_import(
    bus: CommandBus,
    jobs: ImportJobs,
    directory: PeopleDirectory,
    context_for: Callable[[str, str, UUID], CommandContext],
    tenant_id: UUID,
    import_id: UUID,
    should_stop: Callable[[], bool] = lambda: False,
    pace: Callable[[int | None, int], int] = lambda position, rows: BATCH_SIZE,
    first_batch: int = BATCH_SIZE,
) -> Progress | None:
    """Runs one job to the end (or until ``should_stop``); returns its final progress.

    ``pace`` gets each batch's position and size once it is written, may hold the job until
    the views show it, and answers how many rows the next batch may hold (ADR 0028).
    """
    claimed = jobs.start(tenant_id, import_id)
    if claimed is None:
        return None
    file_format, content, actor, request_id = claimed
    progress = Progress()
    try:
        validation = validate(read_records(content, file_format))
    except ImportFileError as error:
        jobs.finish(tenant_id, import_id, progress, str(error))
        return progress
    progress.total_rows = len(validation.rows) + len(validation.errors)
    progress.processed_rows = len(validation.errors)
    progress.failed = len(validation.errors)
    progress.errors = list(validation.errors)
    jobs.progress(tenant_id, import_id, progress)
    context = context_for(actor, request_id, tenant_id)
    start, size = 0, max(1, min(BATCH_SIZE, first_batch))
    while start < len(validation.rows):
        if should_stop():
            return progress  # stays "running"; resumed from the start next time
        rows = validation.rows[start : start + size]
        start += len(rows)
        batch = _with_personal_data_changes(rows, directory, tenant_id)
        outcome = bus.execute(context, ImportMembers(tuple(batch)))
        progress.record(outcome.result)
        if outcome.position is not None:
            progress.position = outcome.position
        jobs.progress(tenant_id, import_id, progress)
        size = max(1, min(BATCH_SIZE, pace(outcome.position, len(rows))))
    progress.errors.sort(key=lambda e: e.row)
    jobs.finish(tenant_id, import_id, progress, None)
    return progress


def _with_personal_data_changes(
    rows: Sequence[MemberRow], directory: PeopleDirectory, tenant_id: UUID
) -> list[MemberRow]:
    ids = {Member.create_id(tenant_id, r.external_id): r for r in rows}
    stored = directory.current(tenant_id, ids)
    marked = []
    for member_id, row in ids.items():
        known = stored.get(member_id)
        changed = None if known is None else known != PersonalData(row.display_name, row.email)
        marked.append(replace(row, personal_data_changed=changed))
    return marked


# The runner around the jobs.


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

    def close(self) -> None: ...


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
        if self.pace is not None:
            self.pace.close()

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
