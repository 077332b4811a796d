"""The report queue under real use: a claim leases exactly one report, a lease lives as long
as the worker's database session, two workers render every report exactly once, a stop puts
the report in hand back, and a report is failed only after it failed three attempts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import database_of_its_own
from tests.reports_queued import (
    leases,
    queue_reports,
    rendered_events,
    statuses,
    wait_until,
)
from training.bootstrap import command_bus, training_application
from training.core.bus import CommandBus
from training.infra.database import Database
from training.infra.rendering import LAYOUT_ERROR, RenderFailed, RenderingProcess
from training.reports import worker as worker_module
from training.reports.queue import SqlReportQueue
from training.reports.sources import SqlReportSources
from training.reports.supervisor import RENDERS
from training.reports.worker import MAX_ATTEMPTS, ReportWorker


@pytest.fixture
def db(admin_server_url: str, template_db: str) -> Iterator[Database]:
    """A database of its own per test: a claim takes any tenant's queued report."""
    with database_of_its_own(admin_server_url, template_db) as database:
        yield database


@pytest.fixture
def bus(db: Database) -> Iterator[CommandBus]:
    app = training_application(db)
    try:
        yield command_bus(app)
    finally:
        app.close()


def opened(db: Database) -> SqlReportQueue:
    queue = SqlReportQueue(db.app_url, worker_conninfo=db.worker_url)
    queue.open()
    return queue


def terminate_session_of(db: Database, queue: SqlReportQueue) -> None:
    """Ends the queue's lease session from the server's side, as a lost connection or a
    killed worker process does."""
    lease = queue._lease
    assert lease is not None
    with psycopg.connect(db.admin_url) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (lease.info.backend_pid,))
    wait_until(lambda: leases(db) == 0, 10, "the session to end")


def test_a_claim_leases_exactly_one_report(db: Database, bus: CommandBus) -> None:
    # Without statistics (a new table, a new tenant), the planner ran the claim's subquery
    # once per row of a nested loop, and one claim leased several reports.
    ids = queue_reports(bus, db, 40)
    first, second = opened(db), opened(db)
    try:
        mine = first.claim()
        assert mine is not None
        claimed = {r for r, (_, attempts, _) in statuses(db, ids).items() if attempts}
        assert claimed == {mine.report_id}
        assert leases(db) == 1
        # The other worker takes the next one at once, not after a lease runs out.
        theirs = second.claim()
        assert theirs is not None
        assert theirs.report_id != mine.report_id
        claimed = {r for r, (_, attempts, _) in statuses(db, ids).items() if attempts}
        assert claimed == {mine.report_id, theirs.report_id}
        assert leases(db) == 2
        first.retry_later(mine, 0.0)
        second.retry_later(theirs, 0.0)
        assert leases(db) == 0
        assert all(attempts == 0 for _, attempts, _ in statuses(db, ids).values())
    finally:
        first.close()
        second.close()


def test_a_lease_ends_with_the_session_of_its_worker(db: Database, bus: CommandBus) -> None:
    [report_id] = queue_reports(bus, db, 1)
    dead, alive = opened(db), opened(db)
    try:
        job = dead.claim()
        assert job is not None
        assert job.report_id == report_id
        assert alive.claim() is None  # leased: nobody else renders it
        terminate_session_of(db, dead)
        again = alive.claim()  # at once: no lease to wait out
        assert again is not None
        assert again.report_id == report_id
        assert again.attempts == 2  # the lost attempt counts
        # The worker whose session was lost writes nothing any more.
        assert not dead.holds(job)
        dead.fail(job, "this must not be stored")
        assert statuses(db, [report_id])[report_id] == ("queued", 2, "")
        assert alive.holds(again)
        alive.retry_later(again, 0.0)
    finally:
        dead.close()
        alive.close()


def test_two_workers_render_every_one_of_40_reports_exactly_once(
    db: Database, bus: CommandBus
) -> None:
    ids = queue_reports(bus, db, 40)
    workers = []
    for _ in range(2):
        queue = SqlReportQueue(db.app_url, worker_conninfo=db.worker_url)
        workers.append(
            ReportWorker(bus, queue, SqlReportSources(queue), renderer=RenderingProcess(RENDERS))
        )
    for worker in workers:
        worker.start()
    try:
        wait_until(
            lambda: all(s == "rendered" for s, _, _ in statuses(db, ids).values()),
            300,
            "every report to be rendered",
        )
    finally:
        for worker in workers:
            worker.stop()
    assert rendered_events(db, ids) == dict.fromkeys(ids, 1)
    assert sum(worker.rendered for worker in workers) == 40
    assert all(worker.rendered for worker in workers)  # both took reports from the queue
    assert not any(worker.failed for worker in workers)
    assert leases(db) == 0


class Observed:
    """A renderer that says when a render has started (and otherwise is the real one)."""

    def __init__(self, inner: RenderingProcess) -> None:
        self.inner = inner
        self.started = threading.Event()

    def __call__(self, document: Any) -> bytes:
        self.started.set()
        return self.inner(document)

    def close(self) -> None:
        self.inner.close()


def test_a_stop_mid_render_puts_the_report_back_and_the_next_worker_renders_it(
    db: Database, bus: CommandBus
) -> None:
    [report_id] = queue_reports(bus, db, 1)
    queue = SqlReportQueue(db.app_url, worker_conninfo=db.worker_url)
    slow = Observed(RenderingProcess(RENDERS, delay=30.0))
    worker = ReportWorker(bus, queue, SqlReportSources(queue), renderer=slow)
    worker.start()
    try:
        assert slow.started.wait(60)
        assert statuses(db, [report_id])[report_id] == ("queued", 1, "")
    finally:
        worker.stop()
    # Back in the queue at once, the interrupted attempt not counted, nobody's lease.
    assert statuses(db, [report_id])[report_id] == ("queued", 0, "")
    assert leases(db) == 0
    assert worker.failed == 0
    queue = SqlReportQueue(db.app_url, worker_conninfo=db.worker_url)
    after = ReportWorker(bus, queue, SqlReportSources(queue), renderer=RenderingProcess(RENDERS))
    after.start()
    try:
        wait_until(lambda: statuses(db, [report_id])[report_id][0] == "rendered", 120, "the render")
    finally:
        after.stop()
    assert rendered_events(db, [report_id]) == {report_id: 1}


def always_failing(document: Any) -> bytes:
    raise RenderFailed(LAYOUT_ERROR)


def test_a_report_that_fails_to_render_three_times_is_failed_with_the_reason(
    db: Database, bus: CommandBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "RETRY_AFTER_ERROR_SECONDS", 0.1)
    [report_id] = queue_reports(bus, db, 1)
    queue = opened(db)
    worker = ReportWorker(bus, queue, SqlReportSources(queue), renderer=always_failing)
    try:
        for attempt in range(1, MAX_ATTEMPTS):
            job = wait_until(queue.claim, 10, "the retry")
            assert job.attempts == attempt
            assert worker.process(job) == "retry"
            assert statuses(db, [report_id])[report_id] == (
                "queued",
                attempt,
                f"attempt {attempt}: {LAYOUT_ERROR}",
            )
        job = wait_until(queue.claim, 10, "the last attempt")
        assert worker.process(job) == "failed"
    finally:
        queue.close()
    reason = f"{LAYOUT_ERROR}; gave up after {MAX_ATTEMPTS} attempts"
    assert statuses(db, [report_id])[report_id] == ("failed", MAX_ATTEMPTS, reason)
    assert leases(db) == 0
    report = bus.app.repository.get(report_id)
    assert report.reason == reason


def test_a_report_whose_worker_dies_every_time_is_failed_on_the_next_claim(
    db: Database, bus: CommandBus
) -> None:
    [report_id] = queue_reports(bus, db, 1)
    for _ in range(MAX_ATTEMPTS):
        dying = opened(db)
        assert dying.claim() is not None
        terminate_session_of(db, dying)
        dying.close()
    queue = opened(db)
    worker = ReportWorker(bus, queue, SqlReportSources(queue), renderer=always_failing)
    try:
        job = queue.claim()
        assert job is not None
        assert worker.process(job) == "failed"
    finally:
        queue.close()
    status, attempts, detail = statuses(db, [report_id])[report_id]
    assert (status, attempts) == ("failed", MAX_ATTEMPTS + 1)
    assert detail.startswith(f"rendering did not finish in {MAX_ATTEMPTS} attempts")


def test_an_unexpected_error_ends_the_lease_and_counts_as_an_attempt(
    db: Database, bus: CommandBus
) -> None:
    [report_id] = queue_reports(bus, db, 1)
    queue = SqlReportQueue(db.app_url, worker_conninfo=db.worker_url)

    class BrokenSources(SqlReportSources):
        def build(self, job: Any, generated_at: Any) -> Any:
            raise RuntimeError("a bug in building the report")

    worker = ReportWorker(bus, queue, BrokenSources(queue), renderer=always_failing)
    worker.start()
    try:
        # Each attempt ends its lease (the report is never stuck with a live worker), and
        # the report is failed once the attempts are used up.
        wait_until(lambda: statuses(db, [report_id])[report_id][0] == "failed", 60, "the failure")
    finally:
        worker.stop()
    status, attempts, detail = statuses(db, [report_id])[report_id]
    assert (status, attempts) == ("failed", MAX_ATTEMPTS + 1)
    assert detail.startswith(f"rendering did not finish in {MAX_ATTEMPTS} attempts")
    assert leases(db) == 0
