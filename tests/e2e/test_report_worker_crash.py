"""``training worker`` processes against a test database: one killed with SIGKILL while it
renders, one stopped with SIGTERM under load. Renders are made slow with the test-only
``TRAINING_TEST_RENDER_DELAY``, so the signal always lands while a render is in progress.
No report is lost, failed or rendered twice, and the next worker drains the queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_SECRET_KEY, database_of_its_own
from tests.reports_queued import leases, queue_reports, rendered_events, statuses, wait_until
from training.bootstrap import command_bus, training_application
from training.infra.database import Database

TRAINING = str(Path(sys.executable).parent / "training")
SLOW_RENDER_SECONDS = 3.0


@pytest.fixture
def db(admin_server_url: str, template_db: str) -> Iterator[Database]:
    with database_of_its_own(admin_server_url, template_db) as database:
        yield database


def queued(db: Database, count: int) -> list[uuid.UUID]:
    app = training_application(db)
    try:
        return queue_reports(command_bus(app), db, count)
    finally:
        app.close()


class Worker:
    """``training worker`` with its JSON log lines captured."""

    def __init__(self, db: Database, *, render_delay: float = 0.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINING_")}
        env.update(
            DATABASE_URL=db.admin_url,
            # The template's signing keys are sealed with the tests' key: without it the
            # worker refuses to start (a restore without its key).
            TRAINING_SECRET_KEY=TEST_SECRET_KEY,
            TRAINING_LOG_LEVEL="info",
            TRAINING_TEST_RENDER_DELAY=str(render_delay),
        )
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read while it runs)
        self.process = subprocess.Popen(
            [TRAINING, "worker"], env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        self.log.seek(0)
        found = []
        for line in self.log.read().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == name:
                found.append(entry)
        return found

    def render_in_progress(self) -> uuid.UUID | None:
        """The report whose render started last and has not ended, if any."""
        started = [e["report_id"] for e in self.events("report.render_started")]
        ended = {e["report_id"] for e in self.events("report.rendered")}
        if started and started[-1] not in ended:
            return uuid.UUID(started[-1])
        return None

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


def test_a_worker_killed_mid_render_loses_no_report(db: Database) -> None:
    ids = queued(db, 6)
    first = Worker(db, render_delay=SLOW_RENDER_SECONDS)
    try:
        interrupted = wait_until(first.render_in_progress, 120, "a render to start")
        first.stop(signal.SIGKILL)
    finally:
        first.close()
    now = statuses(db, ids)
    assert now[interrupted][0] == "queued"
    assert {status for status, _, _ in now.values()} <= {"queued", "rendered"}
    # PostgreSQL ended the dead worker's session, and its lease with it.
    wait_until(lambda: leases(db) == 0, 30, "the dead worker's session to end")
    second = Worker(db)
    try:
        wait_until(
            lambda: all(s == "rendered" for s, _, _ in statuses(db, ids).values()),
            120,
            "the next worker to render every report",
        )
        assert second.stop(signal.SIGTERM) == 0
    finally:
        second.close()
    assert rendered_events(db, ids) == dict.fromkeys(ids, 1)
    assert statuses(db, ids)[interrupted][1] == 2  # the killed attempt counted, and one more


def test_a_stopped_worker_puts_its_report_back_and_the_next_one_drains_the_queue(
    db: Database,
) -> None:
    ids = queued(db, 30)
    first = Worker(db, render_delay=SLOW_RENDER_SECONDS)
    try:
        wait_until(lambda: len(first.events("report.rendered")) >= 2, 120, "two renders")
        interrupted = wait_until(first.render_in_progress, 60, "the next render to start")
        assert first.stop(signal.SIGTERM) == 0
        assert first.events("report.render_interrupted")
    finally:
        first.close()
    # Right after the stop: the interrupted report is queued again, its attempt not counted;
    # nothing failed, nothing is leased.
    now = statuses(db, ids)
    assert now[interrupted] == ("queued", 0, "")
    assert {status for status, _, _ in now.values()} == {"queued", "rendered"}
    assert leases(db) == 0
    second = Worker(db)
    try:
        # A deadline for waiting, not a measurement: the 28 or so left took 41 s on a 2-core
        # machine that other test runs shared (load average 12), the worker's start and its
        # renderer's included; before, the interrupted reports waited out a 600 s lease.
        wait_until(
            lambda: all(s == "rendered" for s, _, _ in statuses(db, ids).values()),
            120,
            "the queue to drain after the restart",
        )
        assert second.stop(signal.SIGTERM) == 0
    finally:
        second.close()
    assert rendered_events(db, ids) == dict.fromkeys(ids, 1)
