"""Report rendering time: the 3-page individual report (12 skills, chart, 12-module plan).

Everything runs in one process, as in the service: importing WeasyPrint and the first render
(cold: fonts found, caches empty) are reported on their own, then ``--runs`` warm renders of
the same report are timed (wall clock and the process's CPU time). The cohort and
effectiveness reports get the same number of warm runs for comparison. The target, a median
wall time of at most 1 s for the individual report, is marked PASS or NOT MET; the exit code
is 0 either way: this is a measurement, not a test.

It also says whether Debian's ``libharfbuzz-subset0`` is present: without it WeasyPrint 70
subsets fonts with fontTools, at about twice the CPU per render (ADR 0039,
``render_subsetting.py``).

Markdown on stdout, progress on stderr. Usage::

    .venv/bin/python scripts/bench/report_render.py [--runs 15]
"""

from __future__ import annotations

import argparse
import ctypes.util
import io
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version

from harness import Measure, Results, Target, cpu_model, percentile, progress

TARGET_MEDIAN_S = 1.0
TARGET = Target("<=", TARGET_MEDIAN_S, f"<= {TARGET_MEDIAN_S:.0f} s (issue #6)")


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float


def timed(render: Callable[[], bytes]) -> tuple[Timing, bytes]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    pdf = render()
    return Timing(time.perf_counter() - wall0, time.process_time() - cpu0), pdf


@dataclass(frozen=True)
class Series:
    name: str
    pages: int
    size: int
    timings: list[Timing]

    def row(self) -> str:
        walls = [t.wall for t in self.timings]
        cpus = [t.cpu for t in self.timings]
        return (
            f"| {self.name} | {self.pages} | {self.size / 1024:.1f} | {len(walls)} "
            f"| {statistics.median(walls):.3f} | {percentile(walls, 0.95) or 0.0:.3f} "
            f"| {min(walls):.3f} | {max(walls):.3f} | {statistics.median(cpus):.3f} |"
        )


def page_count(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def run(runs: int, argv: Sequence[str], results: Results) -> str:
    load_before = results.load_before
    harfbuzz_subset = ctypes.util.find_library("harfbuzz-subset")

    start = time.perf_counter()
    from weasyprint.text import ffi  # the import loads Pango, HarfBuzz and fontconfig

    from training.reports.rendering import render_cohort, render_effectiveness, render_individual
    from training.reports.rendering.html import individual_html
    from training.reports.rendering.samples import (
        cohort_report,
        effectiveness_report,
        individual_report,
    )

    import_s = time.perf_counter() - start
    progress(f"imports took {import_s:.2f} s")

    individual = individual_report()
    cold, pdf = timed(lambda: render_individual(individual))
    progress(f"cold render {cold.wall:.2f} s")
    html_s = min(timed(lambda: individual_html(individual).encode())[0].wall for _ in range(5))

    cohort, effectiveness = cohort_report(), effectiveness_report()
    cases: list[tuple[str, Callable[[], bytes]]] = [
        ("individual (target)", lambda: render_individual(individual)),
        ("cohort", lambda: render_cohort(cohort)),
        ("effectiveness", lambda: render_effectiveness(effectiveness)),
    ]
    series = []
    for name, render in cases:
        timings = []
        for i in range(runs):
            timing, pdf = timed(render)
            timings.append(timing)
            progress(f"{name} run {i + 1}/{runs}: {timing.wall:.3f} s")
        series.append(Series(name, page_count(pdf), len(pdf), timings))

    target = series[0]
    median = statistics.median(t.wall for t in target.timings)
    verdict = "PASS" if median <= TARGET_MEDIAN_S else "NOT MET"
    results.add(Measure("individual report, median warm render", median, "s", target=TARGET))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_after = os.getloadavg()
    lines = [
        "## Report rendering (WeasyPrint, PDF/UA-1)",
        "",
        f"Target: median wall time of the 3-page individual report ≤ {TARGET_MEDIAN_S:.0f} s "
        f"in a warm process: **{verdict}** (median {median:.3f} s).",
        "",
        "| report | pages | PDF KiB | runs | median s | p95 s | min s | max s | median CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
        *(s.row() for s in series),
        "",
        f"- cold: importing WeasyPrint and the report modules {import_s:.3f} s; first render "
        f"of the individual report {cold.wall:.3f} s wall, {cold.cpu:.3f} s CPU",
        f"- building the individual report's HTML (chart included): {html_s * 1000:.1f} ms",
        f"- peak RSS of the process: {rss_mib:.0f} MiB",
        f"- libharfbuzz-subset (ctypes find_library): {harfbuzz_subset or 'not found'}; "
        "WeasyPrint subsets fonts with "
        + ("HarfBuzz" if ffi.harfbuzz_subset is not None else "fontTools (slower fallback)"),
        "",
        f"- command: `{shlex.join([sys.executable, *argv])}`",
        f"- CPU: {os.cpu_count()} x {cpu_model()}",
        f"- Python {platform.python_version()} on {platform.platform()}",
        "- "
        + ", ".join(
            f"{name} {version(name)}" for name in ("weasyprint", "pydyf", "fonttools", "pypdf")
        ),
        "- load average (1/5/15 min) before: "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + " ".join(f"{x:.2f}" for x in load_after),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv if argv is None else [sys.argv[0], *argv])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="warm renders per report")
    args = parser.parse_args(arguments[1:])
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    results = Results("report_render")
    print(run(args.runs, arguments, results))
    results.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
