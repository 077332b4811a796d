"""PDF reports: the worker that renders them.

``ReportWorker`` takes queued reports one at a time from a ``ReportQueue`` (the ``reports``
table; a claimed report is leased to the worker's database session, so several processes
share the queue and a report whose worker died is taken up again as soon as its session
ends, see ``training.reports.queue``), builds the report's data from the read models
(``ReportSources``), renders the PDF and stores it. It runs in its own thread: rendering is
CPU-bound (0.3-0.6 s of WeasyPrint per report) and must never run on the event loop. Renders
in one process take turns anyway (the renderer holds a lock around WeasyPrint), so one thread
per process is all a process can use.

What an attempt that does not end in a file does to the report:

* a stop of the worker interrupts the render in hand (``RenderInterrupted``): the report goes
  back to the queue at once and the attempt does not count;
* a render that fails (``RenderFailed``: an error in the layout engine, a rendering process
  that died, a render that took too long) goes back to the queue after a pause, and the
  report is ``failed`` with the reason once ``MAX_ATTEMPTS`` attempts failed;
* a worker that dies mid-render (killed, crashed, its database session lost) leaves its
  attempt counted: a report that kills its worker every time must not stop the queue, so it
  is ``failed`` when it is claimed after ``MAX_ATTEMPTS`` such attempts.

Order of the writes for one report: the ``Rendered`` event first, then the file and the
status in the table. A crash between the two leaves the report queued; the retry renders
again and records the new file with another ``Rendered``, so the latest ``Rendered`` always
names the stored file and no stored file is missing from the event history.

The automatic report of a re-plan is queued by the ``report_triggers`` projection (see
``training.reports.trigger``); the worker records its ``Requested`` event through the
bus before rendering, idempotently. ``training.reports.supervisor`` wires the worker and
starts it with the projections.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

import structlog

from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.errors import DomainError
from training.infra.rendering import LAYOUT_ERROR, RenderFailed, RenderInterrupted
from training.reports.domain.requests import ReportKind
from training.reports.handlers import MarkFailed, MarkRendered, RequestPlanReport

if TYPE_CHECKING:
    from training.reports.rendering import CohortReport, EffectivenessReport, IndividualReport

    Document = IndividualReport | CohortReport | EffectivenessReport

log = structlog.get_logger(__name__)

WORKER_ACTOR = "reports"  # the worker's commands carry the actor system:reports

# -- the worker's collaborators ----------------------------------------------------------------


@dataclass(frozen=True)
class QueuedReport:
    """A report the worker has claimed."""

    tenant_id: UUID
    report_id: UUID
    kind: ReportKind
    subject_id: UUID | None
    for_plan_version: int | None  # set on the automatic report of a re-plan
    requested_by: str
    request_id: str
    trigger: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Built:
    """A report's data; for an individual report the plan version it shows; the members whose
    names the file prints (not those whose personal data was erased before it was built)."""

    document: Document
    plan_version: int | None = None
    named_members: tuple[UUID, ...] = ()


class NotReady(Exception):
    """The read models do not hold what the report needs yet (a view still catching up)."""


class ReportQueue(Protocol):
    def open(self) -> None: ...

    def close(self) -> None: ...

    def claim(self) -> QueuedReport | None:
        """Leases the next report to this queue's session and counts an attempt; the lease
        ends with ``retry_later``, ``retry_after_error``, ``finish``, ``fail``,
        ``supersede`` or ``abandon``, or when the session ends."""

    def holds(self, job: QueuedReport) -> bool:
        """Whether the lease on ``job`` is still this queue's (its session may have been
        lost, and the report claimed by another worker since)."""

    def retry_later(self, job: QueuedReport, seconds: float) -> None:
        """Back in the queue after ``seconds``; the attempt does not count."""

    def retry_after_error(self, job: QueuedReport, seconds: float, reason: str) -> None:
        """Back in the queue after ``seconds``; the attempt counts and ``reason`` is shown."""

    def abandon(self, job: QueuedReport) -> None:
        """Ends the lease without writing anything (after an unexpected error): the attempt
        counts, and the report can be claimed at once."""

    def finish(
        self, job: QueuedReport, pdf: bytes, checksum: str, pages: int, built: Built
    ) -> None:
        """Stores the file; ``built`` says what it shows (plan version, a member's name)."""

    def fail(self, job: QueuedReport, detail: str) -> None: ...

    def newer_plan_report(self, job: QueuedReport) -> int | None:
        """The latest plan version with an automatic report of the same member, if newer."""

    def supersede(self, job: QueuedReport, plan_version: int) -> None: ...

    def wait(self, timeout: float) -> None:
        """Returns when a report may have been queued, or after ``timeout`` seconds."""

    def wake(self) -> None:
        """Makes a ``wait`` in progress return."""


class ReportSources(Protocol):
    def build(self, job: QueuedReport, generated_at: datetime) -> Built: ...


# -- rendering ---------------------------------------------------------------------------------


def render(document: Document) -> bytes:
    """The PDF of a report, in this process (imports WeasyPrint on first use, not when the
    service starts). The service renders in a child process instead
    (``training.infra.rendering``)."""
    from training.reports.rendering import render_document

    try:
        return render_document(document)
    except Exception as error:
        log.warning("report.render_error", error_type=type(error).__name__, error=str(error))
        raise RenderFailed(LAYOUT_ERROR) from error


_STREAM = re.compile(rb"stream\r?\n")
_PAGES_COUNT = re.compile(
    rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b"
)


def page_count(pdf: bytes) -> int:
    """Pages of a PDF: the ``/Count`` of its page tree's root, the largest of any ``/Pages``
    node. WeasyPrint puts the tree in compressed object streams, so those are inflated too
    (the service has no PDF parser at run time; the tests check this against pypdf)."""
    counts = [int(a or b) for a, b in _PAGES_COUNT.findall(pdf)]
    for match in _STREAM.finditer(pdf):
        try:
            data = zlib.decompressobj().decompress(pdf[match.end() :])
        except zlib.error:
            continue
        counts += [int(a or b) for a, b in _PAGES_COUNT.findall(data)]
    return max(counts, default=0)


def checksum(pdf: bytes) -> str:
    return hashlib.sha256(pdf).hexdigest()


# -- the worker --------------------------------------------------------------------------------

NOT_READY_RETRY_SECONDS = 0.5
NOT_READY_GIVE_UP_SECONDS = 600.0
# Attempts that failed to render (or ended with their worker) before a report is failed.
MAX_ATTEMPTS = 3
# After a failed render the report waits this long times the attempts so far: a renderer
# that died of the machine's memory pressure gets a moment, the queue goes on meanwhile.
RETRY_AFTER_ERROR_SECONDS = 5.0
POLL_SECONDS = 2.0
ERROR_BACKOFF_SECONDS = 2.0


def worker_context(job: QueuedReport) -> CommandContext:
    return CommandContext(
        Actor(ActorKind.SYSTEM, WORKER_ACTOR), f"report:{job.report_id}", job.tenant_id
    )


def requester_context(job: QueuedReport) -> CommandContext:
    """The context of whoever queued the report (the planning process for a re-plan's)."""
    kind, _, subject = job.requested_by.partition(":")
    try:
        actor = Actor(ActorKind(kind), subject)
    except ValueError:
        actor = Actor(ActorKind.SYSTEM, WORKER_ACTOR)
    return CommandContext(actor, job.request_id or f"report:{job.report_id}", job.tenant_id)


class ReportWorker:
    def __init__(
        self,
        bus: CommandBus,
        queue: ReportQueue,
        sources: ReportSources,
        *,
        renderer: Callable[[Document], bytes] = render,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bus = bus
        self.queue = queue
        self.sources = sources
        self.renderer = renderer
        self.clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.rendered = 0
        self.failed = 0
        self.superseded = 0

    def start(self) -> None:
        self.queue.open()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="report-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupts the render in hand (its report goes back to the queue, the attempt not
        counted) and stops; a second call does nothing."""
        if self._thread is None:
            return
        self._stopping.set()
        self.queue.wake()
        # A renderer that owns a process (RenderingProcess) stops it: a render in progress
        # raises RenderInterrupted. Again after the thread ended, in case a render started
        # in between.
        self._close_renderer()
        self._thread.join(timeout)
        self._thread = None
        self._close_renderer()
        self.queue.close()

    def _close_renderer(self) -> None:
        close = getattr(self.renderer, "close", None)
        if callable(close):
            close()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            job: QueuedReport | None = None
            try:
                job = self.queue.claim()
                if job is None:
                    self.queue.wait(POLL_SECONDS)
                    continue
                self.process(job)
            except Exception:
                log.exception("report.worker_error")
                if job is not None:
                    self._abandon(job)
                self._stopping.wait(ERROR_BACKOFF_SECONDS)

    def _abandon(self, job: QueuedReport) -> None:
        try:
            self.queue.abandon(job)
        except Exception:
            log.exception("report.abandon_failed")

    def process(self, job: QueuedReport) -> str:
        """Renders one claimed report; answers what became of it (for logs and benchmarks)."""
        structlog.contextvars.bind_contextvars(
            tenant_id=str(job.tenant_id), report_id=str(job.report_id)
        )
        try:
            return self._process(job)
        finally:
            structlog.contextvars.unbind_contextvars("tenant_id", "report_id")

    def _process(self, job: QueuedReport) -> str:
        context = worker_context(job)
        if job.attempts > MAX_ATTEMPTS:
            # Attempts that failed to render were counted and ended in a retry; these ended
            # with no outcome at all: their worker died, or an unexpected error stopped them.
            return self._fail(
                job,
                context,
                f"rendering did not finish in {MAX_ATTEMPTS} attempts: each time the worker "
                "stopped or met an unexpected error before the file was stored",
            )
        if job.for_plan_version is not None:
            newer = self.queue.newer_plan_report(job)
            if newer is not None:
                # Nobody reads the report of a plan already replaced: render the newer one.
                self.queue.supersede(job, newer)
                self.superseded += 1
                log.info("report.superseded", by_plan_version=newer)
                return "superseded"
        try:
            if job.for_plan_version is not None:
                assert job.subject_id is not None
                self.bus.execute(
                    requester_context(job),
                    RequestPlanReport(job.subject_id, job.for_plan_version, job.trigger),
                )
            built = self.sources.build(job, self.clock())
        except NotReady as waiting:
            age = (self.clock() - job.created_at).total_seconds()
            if age > NOT_READY_GIVE_UP_SECONDS:
                return self._fail(job, context, f"the data never became ready: {waiting}")
            self.queue.retry_later(job, NOT_READY_RETRY_SECONDS)
            return "not ready"
        except DomainError as error:
            return self._fail(job, context, error.detail)
        if self._stopping.is_set():
            self.queue.retry_later(job, 0.0)
            return "interrupted"
        started = time.perf_counter()
        log.info("report.render_started", attempt=job.attempts)
        try:
            pdf = self.renderer(built.document)
        except RenderFailed as failure:
            if not self._stopping.is_set():
                return self._render_failed(job, context, failure.reason)
            # A service manager's SIGTERM to the whole group ended the child as well.
            self.queue.retry_later(job, 0.0)
            log.info("report.render_interrupted", reason=failure.reason)
            return "interrupted"
        except RenderInterrupted:
            self.queue.retry_later(job, 0.0)
            log.info("report.render_interrupted")
            return "interrupted"
        digest, pages = checksum(pdf), page_count(pdf)
        if not self.queue.holds(job):
            # The lease went with a lost database session: another worker may have the
            # report by now, and records it.
            log.warning("report.lease_lost")
            return "lease lost"
        try:
            self.bus.execute(context, MarkRendered(job.report_id, digest, len(pdf), pages))
        except DomainError as error:  # failed meanwhile: the event history decides
            return self._fail(job, context, error.detail)
        self.queue.finish(job, pdf, digest, pages, built)
        self.rendered += 1
        log.info(
            "report.rendered",
            kind=str(job.kind),
            pages=pages,
            size_bytes=len(pdf),
            render_s=round(time.perf_counter() - started, 3),
        )
        return "rendered"

    def _render_failed(self, job: QueuedReport, context: CommandContext, reason: str) -> str:
        if job.attempts >= MAX_ATTEMPTS:
            return self._fail(job, context, f"{reason}; gave up after {job.attempts} attempts")
        log.warning("report.render_failed", reason=reason, attempt=job.attempts)
        self.queue.retry_after_error(
            job, RETRY_AFTER_ERROR_SECONDS * job.attempts, f"attempt {job.attempts}: {reason}"
        )
        return "retry"

    def _fail(self, job: QueuedReport, context: CommandContext, reason: str) -> str:
        log.warning("report.failed", reason=reason)
        try:
            self.bus.execute(context, MarkFailed(job.report_id, reason))
        except DomainError:
            log.exception("report.mark_failed_refused")
        self.queue.fail(job, reason)
        self.failed += 1
        return "failed"
