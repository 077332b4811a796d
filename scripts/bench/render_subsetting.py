"""CPU per individual report render with HarfBuzz's font subsetter against fontTools (ADR 0039).

WeasyPrint subsets the embedded fonts with HarfBuzz when ``libharfbuzz-subset.so.0`` is
loaded and with fontTools otherwise; this switches between the two in one process
(``weasyprint.pdf.fonts.harfbuzz_subset``), alternating rounds of renders of the 3-page
sample individual report, and prints each one's median CPU time per render. A measurement,
not a test. Usage::

    PYTHONPATH=src .venv/bin/python -W ignore scripts/bench/render_subsetting.py [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence

import weasyprint.pdf.fonts as fonts

from training.reports.rendering import renderer, samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=6, help="rounds of 3 renders each way")
    args = parser.parse_args(argv)
    harfbuzz = fonts.harfbuzz_subset
    if harfbuzz is None:
        print("libharfbuzz-subset.so.0 is not installed: nothing to compare")
        return 1
    report = samples.individual_report()
    renderer.render_individual(report)  # warm: fonts found, caches filled
    cpu: dict[str, list[float]] = {"HarfBuzz": [], "fontTools": []}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for name, library in (("HarfBuzz", harfbuzz), ("fontTools", None)):
            fonts.harfbuzz_subset = library
            for _ in range(3):
                started = time.process_time()
                renderer.render_individual(report)
                cpu[name].append(time.process_time() - started)
    fonts.harfbuzz_subset = harfbuzz
    print("| subsetter | renders | median CPU s per render | fastest |")
    print("|---|--:|--:|--:|")
    for name, seconds in cpu.items():
        print(
            f"| {name} | {len(seconds)} | {statistics.median(seconds):.3f} | {min(seconds):.3f} |"
        )
    after = os.getloadavg()
    print(f"\nload average before {load_before[0]:.2f}, after {after[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
