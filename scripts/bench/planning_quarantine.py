"""What the quarantine (ADR 0026, amendment 1) costs the planning process.

On a fresh embedded PostgreSQL, a template database holds ``--tenants`` tenants with
``--people`` people each, every one enrolled in the tenant's cohort by a command of its own
(one ``Cohort.Enrolled`` each: the planning process opens the track, plans and stores the
plan with the event's position, one transaction per event). Each measurement copies the
template and times the planning process catching up over those events, in this process
with the library's runner, as ``training serve`` runs it:

1. healthy tenants, the process without the quarantine and as it runs (alternating);
2. the first tenant's first enrolment fails in the planner (a fault injected here): its
   other enrolments are parked, one transaction each, the other tenants are planned;
3. ``projections retry planning`` of that tenant once the fault is gone;
4. in memory, what the guard adds to a healthy tenant's event (the runs above are noisy on
   a shared machine; this is not).

Markdown on stdout, progress on stderr. A measurement, not a test. Usage::

    .venv/bin/python scripts/bench/planning_quarantine.py [--tenants 4] [--people 500] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, cast

import psycopg
from eventsourcing.persistence import Tracking
from eventsourcing.projection import EventSourcedProjection, EventSourcedProjectionRunner
from eventsourcing.utils import get_topic
from harness import machine_facts, postgres_facts, progress

from training.bootstrap import command_bus, training_application
from training.cohorts.domain.cohorts import Cohort
from training.cohorts.handlers.cohorts import ScheduleCohort
from training.cohorts.handlers.enrolments import Enrol
from training.core.access import Role
from training.core.application import TrainingApplication
from training.core.context import CommandContext
from training.core.quarantine import Quarantine
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.curricula.handlers import AddModule, CreateCurriculum, PublishCurriculum
from training.infra.database import Database, app_url_for, create_database, with_dbname
from training.infra.logging import configure_logging
from training.infra.migrations import migrate
from training.infra.recorder import TrainingProcessRecorder
from training.maintenance.retry import retry
from training.people.domain.members import Member
from training.people.handlers.imports import ImportMembers, MemberRow
from training.planning.domain.tracks import TrainingTrack
from training.planning.process import Planning
from training.planning.views.tracks import PLANNING
from training.skills.domain import SkillTarget
from training.tenancy.handlers import RegisterTenant

TEMPLATE = "planning_bench_template"


class Unguarded(Planning):
    """The planning process as it was: an event it cannot plan with stops the runner."""

    name = Planning.name  # the same tables

    def process_event(self, domain_event: Any, tracking: Any) -> None:
        EventSourcedProjection.process_event(self, domain_event, tracking)


@contextmanager
def server() -> Iterator[str]:
    from training.infra.database import EmbeddedPostgres

    data_dir = Path(tempfile.mkdtemp(prefix="training-bench-planning-"))
    embedded = EmbeddedPostgres(data_dir / "pg")
    try:
        yield embedded.admin_url
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def database_from(admin_server: str, template: str | None, name: str) -> Database:
    create_database(admin_server, name, template=template)
    admin_url = with_dbname(admin_server, name)
    return Database(admin_url, app_url_for(admin_url, None))


def fill(database: Database, tenants: int, people: int) -> list[uuid.UUID]:
    """The tenants (in order) with their enrolments, one command per person."""
    app = training_application(database)
    bus = command_bus(app)
    found = []
    try:
        for n in range(tenants):
            slug = f"p{n}-{uuid.uuid4().hex[:6]}"
            system = CommandContext.system("bench", f"bench-{slug}")
            tenant_id = bus.execute(system, RegisterTenant(slug, slug, 10**6)).result.tenant_id
            found.append(tenant_id)
            hr = CommandContext.system("bench", f"bench-{slug}", tenant_id)
            curriculum = bus.execute(hr, CreateCurriculum("Course", "")).result.curriculum_id
            for key, skill in (("python", "python"), ("sql", "sql")):
                module = ModuleSpec(
                    key, key, "", ModuleFormat.VIDEO, 30, (SkillTarget(skill, 3),), ()
                )
                bus.execute(hr, AddModule(curriculum, module))
            bus.execute(hr, PublishCurriculum(curriculum))
            cohort_id = bus.execute(
                hr,
                ScheduleCohort(
                    "Cohort", curriculum, 1, date(2030, 3, 1), date(2030, 5, 31), "UTC", 10**4
                ),
            ).result.cohort_id
            rows = tuple(
                MemberRow(i + 2, f"E{i}", f"Engineer {i}", None, (Role.ENGINEER,), None, None, None)
                for i in range(people)
            )
            for start in range(0, people, 500):
                bus.execute(hr, ImportMembers(rows[start : start + 500]))
            # One enrolment event per person, as one command per person writes them.
            for i in range(people):
                member_id = Member.create_id(tenant_id, f"E{i}")
                bus.execute(hr, Enrol(cohort_id, (member_id,)))
            progress(f"tenant {n + 1}/{tenants}: {people} enrolments")
    finally:
        app.close()
    return found


def enrolments(database: Database) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM training.training_events WHERE topic = %s",
            (get_topic(Cohort.Enrolled),),
        ).fetchone()
    return int(row[0]) if row else 0


def catch_up(database: Database, process: type[Planning]) -> float:
    """Seconds until the planning process has followed every event of the template."""
    env = database.eventsourcing_env(pool_size=1, max_overflow=1)
    env["PROCESS_RECORDER_TOPIC"] = get_topic(TrainingProcessRecorder)
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT max(notification_id) FROM training.training_events WHERE topic = ANY(%s)",
            (list(Planning.topics),),
        ).fetchone()
    last = int(row[0]) if row and row[0] else 0
    started = time.perf_counter()
    runner: Any = EventSourcedProjectionRunner(
        application_class=TrainingApplication, projection_class=process, env=env
    )
    with runner:
        while True:
            with psycopg.connect(database.admin_url) as conn:
                row = conn.execute(
                    "SELECT notification_id FROM training.planning_tracking"
                ).fetchone()
            if row and row[0] is not None and int(row[0]) >= last:
                return time.perf_counter() - started
            runner.run_forever(timeout=0.2)


@contextmanager
def faulty_planner(victim: uuid.UUID) -> Iterator[None]:
    plan = TrainingTrack.replan

    def refusing(self: TrainingTrack, *args: Any, **kwargs: Any) -> None:
        if self.tenant_id == victim:
            raise ValueError("the planner cannot plan this track")
        plan(self, *args, **kwargs)

    TrainingTrack.replan = refusing  # type: ignore[method-assign]
    try:
        yield
    finally:
        TrainingTrack.replan = plan  # type: ignore[method-assign]


def guard_microseconds(events: int = 100_000) -> float:
    """What the quarantine adds to a healthy tenant's event in memory (no query)."""

    class Event:
        def __init__(self, tenant_id: uuid.UUID) -> None:
            self.tenant_id, self.originator_id, self.originator_version = (
                tenant_id,
                uuid.uuid4(),
                1,
            )

    quarantine = Quarantine("planning", cast(Any, None), platform_holds_all=True)
    tenants = [uuid.uuid4() for _ in range(4)]
    quarantine.healthy.update([None, *tenants])
    stream = [Event(tenants[n % 4]) for n in range(events)]
    trackings = [Tracking("training", n + 1) for n in range(events)]

    def apply(event: Any, tracking: Tracking) -> None:
        return None

    started = time.perf_counter()
    for event, tracking in zip(stream, trackings, strict=True):
        quarantine.apply(event, tracking, apply)
    guarded = time.perf_counter() - started
    started = time.perf_counter()
    for event, tracking in zip(stream, trackings, strict=True):
        apply(event, tracking)
    return (guarded - (time.perf_counter() - started)) / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    configure_logging("warning", stream=sys.stderr)  # one line per parked event otherwise
    load_before = os.getloadavg()
    rows: list[tuple[str, int, float]] = []
    with server() as admin_server:
        template = database_from(admin_server, None, TEMPLATE)
        migrate(template.admin_url)
        tenants = fill(template, args.tenants, args.people)
        events = enrolments(template)
        pair: list[tuple[str, type[Planning]]] = [
            ("healthy tenants, without the quarantine", Unguarded),
            ("healthy tenants, with the quarantine", Planning),
        ]
        count = 0
        for run in range(args.runs):
            progress(f"run {run + 1}: healthy, without and with the quarantine")
            for label, process in pair if run % 2 == 0 else pair[::-1]:
                count += 1
                copy = database_from(admin_server, TEMPLATE, f"planning_bench_{count}")
                rows.append((label, events, catch_up(copy, process)))
        for run in range(args.runs):
            progress(f"run {run + 1}: one tenant's first enrolment fails, then its retry")
            count += 1
            copy = database_from(admin_server, TEMPLATE, f"planning_bench_{count}")
            with faulty_planner(tenants[0]):
                rows.append(
                    (
                        f"with {args.people - 1} enrolments of one tenant parked",
                        events,
                        catch_up(copy, Planning),
                    )
                )
            started = time.perf_counter()
            report = retry(copy, PLANNING, [tenants[0]])
            assert not report.still_held, report
            seconds = time.perf_counter() - started
            rows.append(("`projections retry planning` of that tenant", report.applied, seconds))
        postgres = postgres_facts(template.admin_url)
    print("| the planning process over enrolments | events | seconds | events/s |")
    print("|---|---:|---:|---:|")
    for label, total, seconds in rows:
        print(f"| {label} | {total} | {seconds:.2f} | {total / seconds:,.0f} |")
    print()
    print(f"In memory, the guard adds {guard_microseconds():.1f} µs to a healthy tenant's event.")
    print()
    for fact in machine_facts(postgres, load_before):
        print(f"- {fact}")


if __name__ == "__main__":
    main()
