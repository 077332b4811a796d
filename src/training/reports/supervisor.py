"""The report worker, wired, and the supervisor that runs it beside the projections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from training.core.bus import CommandBus
from training.core.projection_runner import ProjectionSupervisor
from training.core.views import ProjectionSpec
from training.infra.rendering import RenderingProcess
from training.reports.queue import SqlReportQueue
from training.reports.sources import SqlReportSources
from training.reports.trigger import REPORT_TRIGGERS
from training.reports.worker import ReportWorker

# What the render process runs: named, not imported, so that WeasyPrint loads only in it.
RENDERS = "training.reports.rendering:render_document"


def report_worker(
    bus: CommandBus,
    conninfo: str,
    worker_conninfo: str | None = None,
    *,
    render_delay: float = 0.0,
) -> ReportWorker:
    queue = SqlReportQueue(conninfo, worker_conninfo=worker_conninfo)
    renderer = RenderingProcess(RENDERS, delay=render_delay)
    return ReportWorker(bus, queue, SqlReportSources(queue), renderer=renderer)


class ReportingSupervisor(ProjectionSupervisor):
    """The service's projections plus the report trigger, and the report workers.

    The API's lifespan starts and stops the supervisor; this one starts and stops the
    workers with it, so reports are made wherever the projections run. Each worker renders
    one report at a time in a child process of its own, and leases its reports on a database
    session of its own, so several workers share the queue as several processes do. It
    takes the arguments of ``ProjectionSupervisor`` (the trigger is added to ``specs`` when
    missing), so code that rebuilds a supervisor from its type and settings keeps working.
    """

    def __init__(
        self,
        specs: Sequence[ProjectionSpec],
        env: Mapping[str, str],
        lock_conninfo: str,
        *,
        workers: Sequence[ReportWorker] = (),
    ) -> None:
        if REPORT_TRIGGERS not in specs:
            specs = (*specs, REPORT_TRIGGERS)
        super().__init__(specs, env, lock_conninfo)
        self.workers = tuple(workers)

    @classmethod
    def around(
        cls, base: ProjectionSupervisor, workers: Sequence[ReportWorker]
    ) -> ReportingSupervisor:
        return cls(base.specs, base.env, base.lock_conninfo, workers=workers)

    def start(self) -> None:
        super().start()
        for worker in self.workers:
            worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        for worker in self.workers:
            worker.stop()
        super().stop(timeout)
