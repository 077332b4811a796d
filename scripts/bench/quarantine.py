"""What the quarantine of unprojectable events (ADR 0026) costs the members view.

On a fresh embedded PostgreSQL, one run measures replaying the members view (``projections
rebuild``, a library ``ProjectionRunner`` with one transaction per event):

1. healthy tenants only, with the projection as it is and inside ``quarantining`` (the
   runners' default): the cost of the guard on the normal path;
2. one tenant whose first registration cannot be applied (two members share its external id,
   as the write-model race left them): its other events are parked, one transaction each;
3. ``projections retry`` of that tenant once the stray row is moved aside.

It prints a Markdown table on stdout (progress goes to stderr). It is a measurement, not a
test: there is no pass or fail. Usage::

    .venv/bin/python scripts/bench/quarantine.py [--members 5000] [--held 2000] [--runs 3]
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
from pathlib import Path
from typing import Any

import psycopg
from harness import machine_facts, postgres_facts, progress

from training.bootstrap import command_bus, training_application
from training.core.access import Role
from training.core.context import CommandContext
from training.core.views import ProjectionSpec
from training.infra.database import Database, database_for
from training.infra.logging import configure_logging
from training.infra.migrations import migrate
from training.infra.settings import Settings
from training.maintenance.rebuild import rebuild_spec
from training.maintenance.retry import retry
from training.people.domain.members import Member
from training.people.views import MEMBERS
from training.tenancy.handlers import RegisterTenant

BATCH = 200


@contextmanager
def fresh_database() -> Iterator[Database]:
    data_dir = Path(tempfile.mkdtemp(prefix="training-bench-quarantine-"))
    try:
        settings = Settings(data_dir=data_dir, secret_key=None, environment="test")
        with database_for(settings) as database:
            migrate(database.admin_url)
            yield database
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def tenant(bus: Any) -> uuid.UUID:
    slug = f"b-{uuid.uuid4().hex[:8]}"
    context = CommandContext.system("bench", request_id=f"bench-{slug}")
    tenant_id: uuid.UUID = bus.execute(context, RegisterTenant(slug, slug, 10**6)).result.tenant_id
    return tenant_id


def register_many(app: Any, tenant_id: uuid.UUID, count: int, prefix: str) -> None:
    members = [
        Member.register(tenant_id=tenant_id, external_id=f"{prefix}-{n}", roles=(Role.ENGINEER,))
        for n in range(count)
    ]
    for start in range(0, len(members), BATCH):
        app.save(*members[start : start + BATCH])


def timed_rebuild(database: Database, spec: ProjectionSpec) -> tuple[int, float]:
    started = time.perf_counter()
    total = rebuild_spec(database, spec, lambda done, total: None)
    return total, time.perf_counter() - started


class Unguarded(ProjectionSpec):
    """The members view as it was: an event it cannot apply stops the runner."""

    @property
    def runnable_class(self) -> Any:
        return self.projection_class


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--held", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    configure_logging("warning", stream=sys.stderr)  # one line per parked event otherwise
    load_before = os.getloadavg()
    rows: list[tuple[str, int, float]] = []
    with fresh_database() as database:
        app = training_application(database)
        bus = command_bus(app)
        progress(f"writing {args.members} registrations of healthy tenants")
        for _ in range(5):
            register_many(app, tenant(bus), args.members // 5, "H")
        unguarded = Unguarded(MEMBERS.projection_class, MEMBERS.view_class)
        pair = [
            ("healthy tenants, projection as it is", unguarded),
            ("healthy tenants, inside `quarantining`", MEMBERS),
        ]
        for run in range(args.runs):
            progress(f"run {run + 1}: healthy, unguarded and guarded (alternating the order)")
            for label, spec in pair if run % 2 == 0 else pair[::-1]:
                rows.append((label, *timed_rebuild(database, spec)))

        progress(f"writing {args.held} registrations of a tenant whose first one fails")
        victim = tenant(bus)
        twins = [
            Member.register(
                tenant_id=victim, external_id="TWIN", roles=(Role.ENGINEER,), member_id=uuid.uuid4()
            )
            for _ in range(2)
        ]
        app.save(*twins)
        register_many(app, victim, args.held, "V")
        for run in range(args.runs):
            progress(f"run {run + 1}: with a degraded tenant, then its retry")
            total, seconds = timed_rebuild(database, MEMBERS)
            rows.append((f"with {args.held + 1} events of one tenant parked", total, seconds))
            with psycopg.connect(database.admin_url) as conn:
                conn.execute(
                    "UPDATE training.members SET external_id = 'TWIN-first' WHERE member_id = %s",
                    (twins[0].id,),
                )
            started = time.perf_counter()
            report = retry(database, MEMBERS, [victim])
            assert not report.still_held, report
            rows.append(
                (
                    "`projections retry` of that tenant",
                    report.applied,
                    time.perf_counter() - started,
                )
            )
        app.close()
        postgres = postgres_facts(database.admin_url)
    print("| replay of the members view | events | seconds | events/s |")
    print("|---|---:|---:|---:|")
    for label, count, seconds in rows:
        print(f"| {label} | {count} | {seconds:.2f} | {count / seconds:,.0f} |")
    print()
    for fact in machine_facts(postgres, load_before):
        print(f"- {fact}")


if __name__ == "__main__":
    main()
