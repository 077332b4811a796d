"""The aggregate cache's copy of a tenant's seat roster and external ids, by tenant size.

The repository hands every command a deep copy of what it loads from its cache, and every
registration loads both aggregates. ``copy.deepcopy`` of the aggregate (its ``CopiedFlat``
copy, container by container) is timed against a deep copy of its state entry by entry
(``copy.deepcopy(vars(aggregate))``, what the default copy did). Both run in the same
process a moment apart: the ratio is what matters. It prints a Markdown table. Usage::

    .venv/bin/python scripts/bench/aggregate_copies.py [--members 1000 10000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import copy
import platform
import timeit
import uuid
from collections.abc import Sequence
from typing import Any

from training.people.domain.external_ids import ExternalIds
from training.people.domain.seats import SeatRoster

BATCH = 500


def tenant_of(members: int) -> tuple[ExternalIds, SeatRoster]:
    tenant_id = uuid.uuid4()
    keys, roster = ExternalIds.open(tenant_id), SeatRoster.open(tenant_id)
    for start in range(0, members, BATCH):
        ids = {f"HR-{n}": uuid.uuid4() for n in range(start, min(start + BATCH, members))}
        keys.claim(ids)
        roster.take(tuple(ids.values()), members)
    keys.collect_events()
    roster.collect_events()
    return keys, roster


def ms(action: Any, rounds: int) -> float:
    return timeit.timeit(action, number=rounds) / rounds * 1000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    print("| members | aggregate | entry by entry ms | container by container ms | ratio |")
    print("|--:|---|--:|--:|--:|")
    for members in args.members:
        for aggregate in tenant_of(members):
            deep = ms(lambda a=aggregate: copy.deepcopy(vars(a)), args.rounds)
            flat = ms(lambda a=aggregate: copy.deepcopy(a), args.rounds)
            name = type(aggregate).__name__
            print(f"| {members:,} | {name} | {deep:.2f} | {flat:.3f} | {deep / flat:,.0f} |")
    print(f"\nPython {platform.python_version()} on {platform.platform()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
