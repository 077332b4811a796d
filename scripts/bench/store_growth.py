"""Store growth benchmark (issue #14): does a command or a read cost more as the store grows?

Two parts, each on a fresh embedded PostgreSQL behind ``training serve --no-demo``, measured
over HTTP by one client sending one request at a time:

A. **Other tenants' history.** The store is filled step by step to ``--other-events`` events
   (default 10,000, 250,000 and 1,000,000), nearly all of them other tenants'. At each step a
   new small tenant registers ``--small-members`` members (unmeasured; they warm the path up
   and are the members changed below), then the bench measures ``--samples`` of each of:
   registering one member (``POST /v1/members``), changing one (``PATCH /v1/members/{id}``,
   its job title, round robin over the small members) and listing the tenant's first page
   (``GET /v1/members?limit=50``, without ``Training-Position``: the read alone), and, for
   reference, ``GET /healthz`` (no authentication, no database: on a shared machine its
   latency shows what the other load does, which the store's size cannot). A new small
   tenant per step keeps the measured tenant the same at every step: only the rest of the
   store grows.
B. **The tenant's own size.** One tenant grows to each of ``--own-members`` members (default
   1,000, 10,000, 50,000 and 100,000); at each step, the same three measurements on it (its
   ``--small-members`` new members, registered first, are the ones changed).

It prints Markdown tables on stdout (progress on stderr): how each step was filled and how
long the views took to catch up, then rate, p50 and p99 per operation and step, and the ratio
of the last step's rate to the first's. A measurement, not a test: no pass or fail.

How the store is filled is in ``store_fill.py``'s docstring: other tenants' members made
with the domain model and copied in with their view rows (``--other-fill bulk``) or saved
through the service's recorder (``--other-fill recorder``); the measured tenant grown by CSV
imports over HTTP (``--own-fill import``) or through the recorder (``--own-fill direct``).
After each fill and catch-up the bench runs ``VACUUM (ANALYZE)`` and a ``CHECKPOINT``, as
autovacuum and the checkpointer would have done long before a real store reached that size,
so the measurement meets a settled store rather than one bulk-loaded a moment ago (the time
it took is in the fill table). ``store_measure.py`` measures each step. The service runs
with its rate limits lifted (``harness.BENCH_LIMITS``); a failed request is counted by status
(or exception class) and shown instead of a rate.

Usage::

    PYTHONPATH=src .venv/bin/python scripts/bench/store_growth.py \\
        [--other-events 10000 250000 1000000] [--own-members 1000 10000 50000 100000] \\
        [--samples 300] [--warmup 20] [--small-members 50] [--tenant-members 10000] \\
        [--other-fill bulk|recorder] [--own-fill import|direct]

``--other-events`` or ``--own-members`` with no value skips that part. A quick run:
``--other-events 5000 20000 --own-members 500 2000 --samples 50``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
from harness import (
    Errors,
    Measure,
    Results,
    Target,
    cpu_shares,
    format_ms,
    postgres_facts,
    progress,
    report,
    run_benchmark,
    running_server,
)
from store_fill import (
    MemberWriter,
    OtherTenants,
    bulk_write,
    compare_with_views,
    fill_application,
    store_events,
)
from store_measure import (
    OPERATIONS,
    REFERENCE,
    SIZED_TABLES,
    Fill,
    Measured,
    describe_store,
    measure_step,
    settle,
    wait_for_views,
)
from tenants import Operator, Tenant, checked

from training.infra.database import database_for
from training.infra.settings import Settings
from training.people.handlers.import_files import MAX_ROWS

POLL_SECONDS = 0.5
# Issue #14: nothing a command or a read touches grows with the store.
TARGET = Target(">=", 0.9, ">= 0.9 of the first step", on_ratio=True)
# What a registering tenant's seat limit leaves spare beyond the members the run gives it.
SPARE_SEATS = 100


def part_other_tenants(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[Fill], list[Measured], list[str], str]:
    """Part A. ``serve`` runs twice per step: once to register the step's tenants (and, with
    ``--other-fill recorder``, to apply their members as they are saved), then, after a bulk
    fill made while it was down, to measure. The bench keeps the embedded PostgreSQL up in
    between (``database_for``), so its caches stay as warm as a running service's."""
    data_dir = workdir / "other"
    data_dir.mkdir()
    fills: list[Fill] = []
    measured: list[Measured] = []
    notes: list[str] = []
    log_path = workdir / "other-serve.log"
    bulk = args.other_fill == "bulk"
    with (
        log_path.open("wb") as log,
        database_for(Settings(data_dir=data_dir)) as database,
    ):
        with running_server(data_dir, log, log) as server:
            # Its first start migrates the database, which the fill's application needs.
            operator = Operator(server)
        app = fill_application(database)
        others = OtherTenants(app, args.tenant_members)
        try:
            for number, target in enumerate(sorted(args.other_events)):
                step = f"{target:,} events"
                with running_server(data_dir, log, log) as server:
                    operator.attach(server)
                    if bulk and number == 0:
                        control_people = others.save_control(operator, server)
                    missing = target - store_events(database)
                    others.register(operator, server, others.tenants_needed(missing))
                    progress(f"A: filling the store to {target:,} events ({args.other_fill})")
                    started = time.perf_counter()
                    written = 0
                    if not bulk:
                        missing = target - store_events(database)
                        for writer, members in others.chunks(missing):
                            written += writer.save(members)
                            progress(f"A: {written:,} of {missing:,} events written")
                        fill_seconds = time.perf_counter() - started
                    catch_up = wait_for_views(server, f"A {step}")
                if bulk:
                    # serve is down: nothing else writes while the rows are copied in.
                    started = time.perf_counter()
                    missing = target - store_events(database)
                    for writer, members in others.chunks(missing):
                        written += bulk_write(database, app, writer.batches_of(members))
                        progress(f"A: {written:,} of {missing:,} events copied in")
                    fill_seconds = time.perf_counter() - started
                with running_server(data_dir, log, log) as server:
                    operator.attach(server)
                    if bulk:
                        # Nothing to apply: the bulk fill moved the views' positions.
                        catch_up += wait_for_views(server, f"A {step}")
                        if others.control is not None and number == 0:
                            notes.append(
                                compare_with_views(database, app, others.control, control_people)
                            )
                    vacuum = settle(database)
                    method = f"{others.tenants} other tenants' members, " + (
                        "copied in with their view rows" if bulk else "through the recorder"
                    )
                    fill = Fill(
                        "A", step, method, written, "events", fill_seconds, catch_up, vacuum
                    )
                    seats = args.small_members + 2 * (args.samples + args.warmup) + SPARE_SEATS
                    tenant = operator.tenant(seats, slug=f"small-{others.run}-{number}")
                    describe_store(database, fill, tenant.tenant_id)
                    fills.append(fill)
                    measured += measure_step(server, tenant, fill, args, f"a{number}")
        finally:
            app.close()
        postgres = postgres_facts(database.admin_url)
    return fills, measured, notes, postgres


# --- part B: the tenant's own size ----------------------------------------------------------------


def members_csv(first: int, count: int) -> bytes:
    lines = ["external_id,display_name,email,roles,team,job_title"]
    for index in range(first, first + count):
        external_id = f"M{index:07d}"
        lines.append(
            f"{external_id},Person {external_id},{external_id.lower()}@import.example,engineer,"
            f"Team {index // 100:04d},Engineer"
        )
    return ("\n".join(lines) + "\n").encode()


def import_members(tenant: Tenant, first: int, count: int) -> None:
    """CSV imports over HTTP, at most MAX_ROWS rows each, each awaited to its end."""
    for start in range(first, first + count, MAX_ROWS):
        rows = min(MAX_ROWS, first + count - start)
        with tenant.client() as http:
            accepted = checked(
                http.post(
                    "/v1/member-imports",
                    content=members_csv(start, rows),
                    headers={"Content-Type": "text/csv"},
                )
            )
            url = accepted.headers["location"]
            while True:
                job = checked(http.get(url)).json()
                if job["status"] in ("completed", "failed"):
                    break
                progress(f"B: import {job['processed_rows']:,}/{job['total_rows'] or '?'} rows")
                time.sleep(POLL_SECONDS)
        if job["status"] != "completed" or job["created"] != rows:
            raise RuntimeError(f"the import did not complete cleanly: {job}")


def part_own_size(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[Fill], list[Measured], str]:
    data_dir = workdir / "own"
    data_dir.mkdir()
    fills: list[Fill] = []
    measured: list[Measured] = []
    steps = sorted(args.own_members)
    # Each step adds its members, the small members and the measured registrations.
    extra = len(steps) * (args.small_members + args.samples + args.warmup)
    with (
        (workdir / "own-serve.log").open("wb") as log,
        running_server(data_dir, log, log) as server,
        database_for(Settings.from_env(dict(server.env))) as database,
    ):
        operator = Operator(server)
        app = fill_application(database)
        try:
            tenant = operator.tenant(steps[-1] + extra + SPARE_SEATS)
            next_index = 0  # of the members the fill gives the tenant: M0000000, M0000001, ...
            for number, target in enumerate(steps):
                step = f"{target:,} members"
                with psycopg.connect(database.admin_url) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM training.members WHERE tenant_id = %s",
                        (tenant.tenant_id,),
                    ).fetchone()
                have = int(row[0]) if row else 0
                wanted = max(0, target - have)
                progress(f"B: growing the tenant from {have:,} to {target:,} members")
                started = time.perf_counter()
                if args.own_fill == "import":
                    import_members(tenant, next_index, wanted)
                    method = "CSV imports over HTTP"
                else:
                    # Loaded afresh at each step: the measured registrations changed them.
                    writer = MemberWriter(
                        app, tenant.tenant_id, tenant.seat_limit, "M", first_index=next_index
                    )
                    writer.save(wanted)
                    method = "members through the recorder"
                next_index += wanted
                fill_seconds = time.perf_counter() - started
                catch_up = wait_for_views(server, f"B {step}")
                vacuum = settle(database)
                fill = Fill("B", step, method, wanted, "members", fill_seconds, catch_up, vacuum)
                describe_store(database, fill, tenant.tenant_id)
                fills.append(fill)
                measured += measure_step(server, tenant, fill, args, f"b{number}")
        finally:
            app.close()
        postgres = postgres_facts(database.admin_url)
    return fills, measured, postgres


# --- the report -----------------------------------------------------------------------------------


def fill_table(fills: Sequence[Fill]) -> list[str]:
    lines = [
        "| part | step | filled by | written | fill s | per s | views caught up s "
        "| VACUUM ANALYZE s | events in store | tenant members | MB events / members / people "
        "/ audit_log |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for fill in fills:
        sizes = " / ".join(f"{fill.table_mb[t]:.0f}" for t in SIZED_TABLES)
        lines.append(
            f"| {fill.part} | {fill.step} | {fill.method} | {fill.written:,} {fill.unit} "
            f"| {fill.fill_seconds:.1f} | {fill.rate:,.0f} | {fill.catch_up_seconds:.1f} "
            f"| {fill.vacuum_seconds:.1f} | {fill.store_events:,} | {fill.tenant_members:,} "
            f"| {sizes} |"
        )
    return lines


def measured_table(results: Sequence[Measured]) -> list[str]:
    lines = [
        "| part | step | events in store | tenant members | operation | n | per second "
        "| p50 ms | p99 ms | errors | load 1m | CPU % bench / serve / pg |",
        "|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.part} | {r.step} | {r.store_events:,} | {r.tenant_members:,} | {r.operation} "
            f"| {len(r.latencies_ms)} | {r.errors.or_rate(f'{r.rate:.0f}')} "
            f"| {format_ms(r.percentile(0.5))} | {format_ms(r.percentile(0.99))} "
            f"| {r.errors.summary()} | {r.load:.2f} | {cpu_shares(r.window)} |"
        )
    return lines


def first_and_last(part: str, results: Sequence[Measured]) -> Iterator[tuple[Measured, Measured]]:
    """Each operation's first and last step in ``part``, where it has two steps or more."""
    for operation in OPERATIONS:
        rows = [r for r in results if r.part == part and r.operation == operation]
        if len(rows) >= 2:
            yield rows[0], rows[-1]


def ratios(part: str, results: Sequence[Measured]) -> list[str]:
    lines = []
    for first, last in first_and_last(part, results):
        if first.errors or last.errors:
            lines.append(f"- {part}, {first.operation}: not computed, a step had errors")
            continue
        ratio = last.rate / first.rate if first.rate else 0.0
        target = "" if first.operation == REFERENCE else f" (target {TARGET.text})"
        lines.append(
            f"- {part}, {first.operation}: rate({last.step}) / rate({first.step}) = "
            f"{last.rate:.0f} / {first.rate:.0f} = **{ratio:.2f}**{target}; "
            f"p50 {format_ms(first.percentile(0.5))} -> {format_ms(last.percentile(0.5))} ms"
        )
    return lines


def record(results: Results, measured: Sequence[Measured]) -> None:
    """Issue #14: the last step's rate at least 0.9 of the first's, for each operation."""
    for part in ("A", "B"):
        for first, last in first_and_last(part, measured):
            errors = Errors()
            errors.extend(first.errors)
            errors.extend(last.errors)
            results.add(
                Measure(
                    f"{part}: {first.operation} at {last.step}, against {first.step}",
                    None if errors else last.rate,
                    "/s",
                    floor=None if errors else first.rate,
                    floor_name=f"rate at {first.step}",
                    target=None if first.operation == REFERENCE else TARGET,
                    errors=errors,
                )
            )


def run(args: argparse.Namespace, workdir: Path, results: Results) -> str:
    fills: list[Fill] = []
    measured: list[Measured] = []
    notes: list[str] = []
    postgres = ""
    if args.other_events:
        part_fills, part_measured, notes, postgres = part_other_tenants(args, workdir)
        fills += part_fills
        measured += part_measured
    if args.own_members:
        part_fills, part_measured, postgres = part_own_size(args, workdir)
        fills += part_fills
        measured += part_measured
    record(results, measured)
    body = [
        f"One client, one request at a time; {args.samples} measured requests per operation "
        f"and step after {args.warmup} unmeasured; A: a new tenant of {args.small_members} "
        f"members per step, other tenants of up to {args.tenant_members:,} members each; "
        f"fill: A {args.other_fill}, B {args.own_fill}.",
        "",
        *fill_table(fills),
        *[f"- {note}" for note in notes],
        "",
        *measured_table(measured),
        "",
        *ratios("A", measured),
        *ratios("B", measured),
    ]
    return report("Store growth benchmark", body, postgres, results.load_before)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--other-events",
        type=int,
        nargs="*",
        default=[10_000, 250_000, 1_000_000],
        help="A: events in the store at each step (none: skip A)",
    )
    parser.add_argument(
        "--own-members",
        type=int,
        nargs="*",
        default=[1_000, 10_000, 50_000, 100_000],
        help="B: the measured tenant's members at each step (none: skip B)",
    )
    parser.add_argument("--samples", type=int, default=300, help="measured requests per step")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests before")
    parser.add_argument(
        "--small-members", type=int, default=50, help="members each step's tenant registers"
    )
    parser.add_argument(
        "--tenant-members", type=int, default=10_000, help="A: members of each other tenant"
    )
    parser.add_argument(
        "--other-fill",
        choices=("bulk", "recorder"),
        default="bulk",
        help="A: copy other tenants' events and view rows in while serve is down, or save "
        "them through the recorder for the running views to apply (about 500 events/s here)",
    )
    parser.add_argument(
        "--own-fill",
        choices=("import", "direct"),
        default="import",
        help="B: grow the tenant by CSV imports over HTTP, or through the recorder directly",
    )
    args = parser.parse_args(argv)
    if min(args.samples, args.small_members, args.tenant_members) < 1 or args.warmup < 0:
        parser.error("--samples, --small-members, --tenant-members >= 1; --warmup >= 0")
    if not args.other_events and not args.own_members:
        parser.error("nothing to do: give --other-events or --own-members some sizes")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = Results("store_growth")
    return run_benchmark(lambda workdir: run(args, workdir, results), results, "growth")


if __name__ == "__main__":
    raise SystemExit(main())
