"""Every benchmark of issue #14 in sequence, and one summary table (``scripts/bench/all``).

Each benchmark runs as its own process with sizes that keep the whole run near half an hour
on two cores (``STEPS``), writes its Markdown report and its log into ``--out`` and what it
measured as JSON (``BENCH_RESULT``, ``harness.Results``). The summary has one row per
measure: its value, the floor it was measured against in the same run (where it has one)
and the ratio, the issue's target and whether it was met. A benchmark that fails, or whose
requests failed, says so in its rows instead of a verdict; the others still run, and the
exit status is 1 at the end. Targets not met do not change the exit status: these are
measurements, not tests. Usage::

    scripts/bench/all [--only foundation soak ...] [--out DIR] [--list]

To add a benchmark: record its measures with ``harness.Results`` (``run_benchmark`` writes
them) and add a ``Step`` with its sizes to ``STEPS``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import TIMES, cpu_model, progress

HERE = Path(__file__).resolve().parent
# A benchmark that runs this long is stuck: it is stopped and reported as failed.
STEP_TIMEOUT_S = 45 * 60


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    args: tuple[str, ...]


# The sizes of one run: the sizes where they fit in the half hour, smaller where
# they do not (each report says which sizes it ran).
STEPS: tuple[Step, ...] = (
    Step(
        "foundation",
        "foundation.py",
        (
            *("--clients", "1", "16", "--requests", "500", "4000", "--warmup", "100"),
            *("--raw-rows", "3000", "--paths", "tenants", "members"),
        ),
    ),
    Step("command_floor", "command_floor.py", ("--clients", "16")),
    Step(
        "store_growth",
        "store_growth.py",
        (
            *("--other-events", "10000", "100000", "--own-members", "1000", "10000"),
            *("--samples", "150", "--warmup", "20"),
        ),
    ),
    Step("snapshots", "snapshots.py", ("--events", "1000", "10000", "100000")),
    Step("member_import", "member_import.py", ("--rows", "10000", "--blocks", "3")),
    Step("view_batches", "view_batches.py", ("--members", "10000")),
    Step(
        "next_item_latency",
        "next_item_latency.py",
        ("--engineers", "50", "--attempts", "100", "--concurrency", "1", "8"),
    ),
    Step("report_render", "report_render.py", ("--runs", "10")),
    Step(
        "replanning",
        "replanning.py",
        ("--members", "10000", "--renders", "5", "--worker-seconds", "30"),
    ),
    Step("soak", "soak.py", ("--minutes", "5", "--members", "2500")),
)


@dataclass
class Outcome:
    step: Step
    exit_status: int | None  # None: stopped after STEP_TIMEOUT_S
    seconds: float
    result: dict[str, Any] | None
    report: Path
    log: Path
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> str | None:
        """Why the benchmark did not finish, or None."""
        if self.exit_status is None:
            return f"stopped after {STEP_TIMEOUT_S // 60} min"
        if self.result is not None and self.result.get("failure"):
            return f"failed: {self.result['failure']}"
        if self.exit_status != 0:
            return f"failed (exit {self.exit_status})"
        if self.result is None:
            return "wrote no result"
        return None

    @property
    def errors(self) -> dict[str, int]:
        return dict(self.result.get("errors", {})) if self.result else {}


def run_step(step: Step, out: Path) -> Outcome:
    report, log, result_path = (out / f"{step.name}{ext}" for ext in (".md", ".log", ".json"))
    result_path.unlink(missing_ok=True)
    command = [sys.executable, str(HERE / step.script), *step.args]
    env = {**os.environ, "BENCH_RESULT": str(result_path)}
    started = time.perf_counter()
    with report.open("wb") as stdout, log.open("wb") as stderr:
        # A session of its own, so that a stuck benchmark and its children stop together.
        process = subprocess.Popen(
            command, stdout=stdout, stderr=stderr, env=env, start_new_session=True
        )
        try:
            status: int | None = process.wait(timeout=STEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGINT)  # the benchmarks clean up on Ctrl-C
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            status = None
    seconds = time.perf_counter() - started
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    return Outcome(step, status, seconds, result, report, log)


# --- the summary ----------------------------------------------------------------------------------


def figure(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def errors_text(counts: dict[str, int]) -> str:
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"{key}{TIMES}{count}" for key, count in ordered)


def verdict(measure: dict[str, Any]) -> str:
    if measure["errors"]:
        return f"**errors**: {errors_text(measure['errors'])}"
    if measure["value"] is None:
        return "not measured"
    if measure["met"] is None:
        return "-"
    return "met" if measure["met"] else "**not met**"


def rows(outcome: Outcome) -> list[str]:
    name = outcome.step.name
    measures = outcome.result.get("measures", []) if outcome.result else []
    failed = outcome.failed
    lines = []
    for measure in measures:
        target = measure["target"]["text"] if measure["target"] else "-"
        floor = "-"
        if measure["floor"] is not None:
            floor = f"{figure(measure['floor'])} ({measure['floor_name']})"
        value = "-" if measure["value"] is None else f"{figure(measure['value'])} {measure['unit']}"
        lines.append(
            f"| {name} | {measure['name']} | {value} | {floor} | {figure(measure['ratio'])} "
            f"| {target} | {f'**{failed}**' if failed else verdict(measure)} |"
        )
    inside: Counter[str] = Counter()
    for measure in measures:
        inside.update(measure["errors"])
    outside = {
        key: count - inside[key] for key, count in outcome.errors.items() if count > inside[key]
    }
    if outside:
        lines.append(
            f"| {name} | requests outside the measures | - | - | - | - "
            f"| **errors**: {errors_text(outside)} |"
        )
    if not measures:
        lines.append(f"| {name} | - | - | - | - | - | **{failed or 'measured nothing'}** |")
    return lines


def load_text(load: Sequence[float] | None) -> str:
    return "-" if not load else " ".join(f"{x:.2f}" for x in load)


def summary(
    outcomes: Sequence[Outcome], load_before: Sequence[float], started: datetime, out: Path
) -> str:
    wall = sum(outcome.seconds for outcome in outcomes)
    lines = [
        f"All benchmarks, {started:%Y-%m-%d %H:%M} UTC, {wall / 60:.1f} min",
        f"Command: `scripts/bench/all {' '.join(sys.argv[1:])}`".rstrip(),
        f"Machine: {os.cpu_count()} x {cpu_model()}; load average (1/5/15 min) before "
        f"{load_text(load_before)}, after {load_text(os.getloadavg())}",
        f"Reports and logs: {out}",
        "",
        "| benchmark | measure | value | floor (same run) | ratio | target | verdict |",
        "|---|---|--:|---|--:|---|---|",
    ]
    for outcome in outcomes:
        lines += rows(outcome)
    lines += [
        "",
        "| benchmark | exit | min | load before | load after | arguments |",
        "|---|--:|--:|---|---|---|",
    ]
    for outcome in outcomes:
        result = outcome.result or {}
        status = "timeout" if outcome.exit_status is None else str(outcome.exit_status)
        lines.append(
            f"| {outcome.step.name} | {status} | {outcome.seconds / 60:.1f} "
            f"| {load_text(result.get('load_before'))} | {load_text(result.get('load_after'))} "
            f"| `{' '.join(outcome.step.args)}` |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    names = [step.name for step in STEPS]
    parser.add_argument("--only", nargs="+", choices=names, help="run these benchmarks only")
    parser.add_argument("--out", type=Path, help="where reports, logs and results go")
    parser.add_argument("--list", action="store_true", help="show the benchmarks and stop")
    args = parser.parse_args(argv)
    steps = [step for step in STEPS if not args.only or step.name in args.only]
    if args.list:
        for step in steps:
            print(f"{step.name}: {step.script} {' '.join(step.args)}")
        return 0
    started = datetime.now(UTC)
    out = args.out or Path(tempfile.mkdtemp(prefix=f"training-bench-all-{started:%Y%m%d-%H%M}-"))
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    outcomes = []
    for number, step in enumerate(steps, start=1):
        progress(f"{number}/{len(steps)} {step.name} (log: {out / step.name}.log)")
        outcome = run_step(step, out)
        progress(
            f"{step.name}: {outcome.failed or 'done'} in {outcome.seconds / 60:.1f} min"
            + (f", errors: {errors_text(outcome.errors)}" if outcome.errors else "")
        )
        outcomes.append(outcome)
    print(summary(outcomes, load_before, started, out))
    troubled = [o for o in outcomes if o.failed or o.errors]
    return 1 if troubled else 0


if __name__ == "__main__":
    sys.exit(main())
