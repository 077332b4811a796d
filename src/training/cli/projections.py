"""The read models: `training projections` (status, rebuild, quarantine, retry) and
`training contracts` (the OpenAPI document and event schemas)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from training.infra.settings import Settings

if TYPE_CHECKING:
    from training.core.views import ProjectionSpec


def tenant_id_argument(value: str) -> str:
    from training.core.held_events import tenant_arg

    tenant_arg(value)  # a ValueError is argparse's one-line refusal
    return value


def projections_command(settings: Settings, args: argparse.Namespace) -> int:
    """A refusal (an unknown name, a policy, something running) is one line, not a traceback."""
    from training.core.projection_runner import ProjectionBusy
    from training.infra.logging import configure_logging
    from training.registry import PROJECTIONS, UnknownProjection, by_name
    from training.reports.trigger import REPORT_TRIGGERS

    # Alerts of events set aside go to stderr as JSON lines; stdout holds the answer only.
    configure_logging(settings.log_level, stream=sys.stderr)
    command = f"training projections {args.action}"
    try:
        if args.action == "rebuild":
            by_name(args.name)
            return rebuild_view(settings, args.name)
        # The report trigger quarantines too, though a rebuild would queue every old report.
        spec = by_name(args.name, (*PROJECTIONS, REPORT_TRIGGERS))
        return retry_held_events(settings, spec, args.tenant)
    except UnknownProjection as refusal:
        print(f"{command}: {refusal}", file=sys.stderr)
        return 2
    except ProjectionBusy as refusal:
        print(f"{command}: refused: {refusal}", file=sys.stderr)
        return 1


def progress_line(name: str, done: int, total: int, elapsed: float) -> str:
    """A rebuild's progress: a bar, the events replayed, the rate and the time left."""
    width = 30
    filled = int(width * done / total) if total else width
    bar = "#" * filled + "." * (width - filled)
    line = f"{name}: [{bar}] {done}/{total} events"
    if done and elapsed > 0:
        rate = done / elapsed
        left = (total - done) / rate
        line += f", {rate:,.0f} events/s, {left:,.0f} s left"
    # Padded: a shorter line must cover the longer one it overwrites.
    return line.ljust(100)


def rebuild_view(settings: Settings, name: str) -> int:
    import psycopg

    from training.core import held_events
    from training.infra.database import database_for
    from training.maintenance.rebuild import rebuild

    with database_for(settings) as database:
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            line = progress_line(name, done, total, time.perf_counter() - started)
            print(f"\r{line}", end="", file=sys.stderr, flush=True)

        total = rebuild(database, name, progress)
        elapsed = time.perf_counter() - started
        with psycopg.connect(database.worker_url, autocommit=True) as worker:
            held = held_events.summary(worker, name)
    line = f"rebuilt {name} from {total} events in {elapsed:.1f} s"
    if held.held:
        line += (
            f"; set aside {held.failed} event(s) it could not apply and parked {held.parked} "
            f"behind them, for {held.tenants} tenant(s): fix the cause, then run "
            f"`training projections retry {name}`"
        )
    print(f"\n{line}", file=sys.stderr)
    return 0


def retry_held_events(settings: Settings, spec: ProjectionSpec, tenant: str | None) -> int:
    import psycopg

    from training.core import held_events
    from training.infra.database import database_for
    from training.maintenance.retry import retry

    only = None if tenant is None else [held_events.tenant_arg(tenant)]
    with database_for(settings) as database:
        report = retry(database, spec, only)
        with psycopg.connect(database.worker_url, autocommit=True) as worker:
            left = held_events.summary(worker, spec.name)
    print(report.line(left))
    return 1 if report.still_held else 0


def contracts_command(action: str) -> int:
    from training import contracts

    if action == "write":
        for name in contracts.write():
            print(f"wrote contracts/{name}", file=sys.stderr)
        return 0
    problems = contracts.differences()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(
            "run `training contracts write` (scripts/contracts) and commit the result",
            file=sys.stderr,
        )
    return 1 if problems else 0
