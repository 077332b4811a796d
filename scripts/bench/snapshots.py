"""Loading a long-lived seat roster in a fresh process, from its latest snapshot and from its
events alone (ADR 0043).

On a fresh embedded PostgreSQL, for each size in ``--events``: a tenant's seat roster is
given that many ``SeatsTaken`` events (written by the domain in saves of 1,000, which is what
a tenant's registrations, imports and status changes leave over its life), and a snapshot is
stored at the last multiple of the roster's snapshot interval, as the command reaching it
would. Then ``--loads`` fresh applications (nothing cached, as a process after a restart or
a roster fallen out of the cache) each load the roster once: with the snapshot, then with
the snapshots deleted. The median load time of each, and their ratio to the smallest size's
load with a snapshot (issue #14: no cost grows with history).

Markdown on stdout, progress on stderr. A measurement, not a test. Usage::

    PYTHONPATH=src:scripts/bench .venv/bin/python scripts/bench/snapshots.py \
        [--events 1000 10000 100000] [--loads 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence

import psycopg
from harness import Measure, Results, Target, command_line, cpu_model, progress

from training.bootstrap import training_application
from training.cli.database import prepare_database
from training.core.application import TrainingApplication
from training.core.snapshots import store
from training.infra.database import Database, database_for
from training.infra.settings import Settings
from training.people.domain.seats import SeatRoster

SAVE_EVERY = 1_000
TARGET = Target(">=", 0.9, ">= 0.9 of the smallest roster's rate", on_ratio=True)


def fill(app: TrainingApplication, events: int) -> SeatRoster:
    """A roster with ``events`` seats taken, one event each, and its snapshot."""
    roster = SeatRoster.open(uuid.uuid4())
    app.save(roster)
    interval = SeatRoster.snapshot_interval or 1
    for number in range(events):
        roster.take((uuid.uuid4(),), seat_limit=events + 1)
        if roster.version % interval == 0:
            app.save(roster)
            store(app, [roster])
        elif (number + 1) % SAVE_EVERY == 0:
            app.save(roster)
    app.save(roster)
    return roster


def load_seconds(database: Database, roster: SeatRoster, loads: int) -> float:
    """The median time a fresh application takes to load the roster."""
    times = []
    for _ in range(loads):
        app = training_application(database)
        try:
            started = time.perf_counter()
            loaded = app.repository.get(roster.id, snapshots=True)
            times.append(time.perf_counter() - started)
        finally:
            app.close()
        assert (loaded.version, loaded.taken) == (roster.version, roster.taken)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--loads", type=int, default=7)
    args = parser.parse_args(argv)
    results = Results("snapshots")
    settings = Settings.from_env({"TRAINING_DATA_DIR": tempfile.mkdtemp(prefix="snapshots-")})
    rows: list[tuple[int, int, float, float]] = []
    with database_for(settings) as database:
        prepare_database(settings, database.admin_url)
        app = training_application(database)
        try:
            for events in args.events:
                progress(f"a roster of {events:,} events")
                roster = fill(app, events)
                with_snapshot = load_seconds(database, roster, args.loads)
                with psycopg.connect(database.admin_url) as conn:
                    conn.execute(
                        "DELETE FROM training.training_snapshots WHERE originator_id = %s",
                        (roster.id,),
                    )
                replayed = load_seconds(database, roster, args.loads)
                rows.append((events, roster.version, with_snapshot, replayed))
        finally:
            app.close()
    first = rows[0][2]
    for events, _, with_snapshot, replayed in rows[1:]:
        results.add(
            Measure(
                f"roster load with its snapshot, {events:,} events, against {rows[0][0]:,}",
                1 / with_snapshot,
                "loads/s",
                floor=1 / first,
                floor_name=f"loads/s at {rows[0][0]:,} events",
                target=TARGET,
            )
        )
        results.add(Measure(f"roster load from its events alone, {events:,}", replayed, "s"))
    print(f"Snapshot benchmark, {command_line()}")
    print()
    print("| roster events | version | load with snapshot ms | load from events alone ms |")
    print("|--:|--:|--:|--:|")
    for events, version, with_snapshot, replayed in rows:
        print(f"| {events:,} | {version:,} | {with_snapshot * 1000:.1f} | {replayed * 1000:.1f} |")
    print()
    print(f"Median of {args.loads} loads, each by a fresh application. CPU: {cpu_model()}.")
    print(f"Load average before: {' '.join(f'{x:.2f}' for x in results.load_before)}.")
    results.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
