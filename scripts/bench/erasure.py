"""Erasure and one-email-one-member benchmark (ADR 0020): what they cost a command.

In-process, on a throw-away embedded PostgreSQL, through the command bus:

1. a tenant of N members, each with a finalised review whose strengths name another member;
2. registrations with an email (the check of who holds it, and the unique index) against
   registrations without one, in alternating rounds of the same run;
3. erasures (``training.erase_member``: the person's rows, their reports, the redaction of
   their name and email in every review text of the tenant) against a change of a display
   name, again alternating.

It prints a Markdown table of medians and the ratios. A measurement, not a test. Usage::

    .venv/bin/python scripts/bench/erasure.py [--members 2000] [--rounds 40]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from training.bootstrap import command_bus, training_application
from training.core.access import Role
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.infra.database import (
    Database,
    EmbeddedPostgres,
    app_url_for,
    create_database,
    with_dbname,
)
from training.infra.migrations import migrate
from training.people.domain.members import Member
from training.people.handlers.imports import ImportMembers, MemberRow
from training.people.handlers.members import ErasePersonalData, RegisterMember, UpdateMember
from training.reviews.domain import ReviewContent
from training.reviews.handlers import ImportedReview, ImportReviews
from training.tenancy.handlers import RegisterTenant


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) * 1000


def populate(bus: CommandBus, members: int) -> tuple[CommandContext, list[Member]]:
    platform = CommandContext.system("bench", request_id="bench")
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    tenant = bus.execute(platform, RegisterTenant(slug, slug, members * 3)).result
    context = CommandContext(Actor(ActorKind.CLIENT, "bench"), "bench", tenant.tenant_id)
    rows = [
        MemberRow(
            i,
            f"M{i}",
            f"Person Number{i}",
            f"person{i}@example.test",
            (Role.ENGINEER,),
            None,
            None,
            None,
        )
        for i in range(members)
    ]
    for start in range(0, members, 500):
        bus.execute(context, ImportMembers(tuple(rows[start : start + 500])))
    ids = [Member.create_id(tenant.tenant_id, row.external_id) for row in rows]
    reviews = [
        ImportedReview(
            f"R{i}",
            "2026-H2",
            ids[i],
            None,
            ReviewContent((), 3, (), None),
            True,
            (f"works well with Person Number{(i + 1) % members}", "writes clear docs"),
        )
        for i in range(members)
    ]
    for start in range(0, members, 500):
        bus.execute(context, ImportReviews(tuple(reviews[start : start + 500])))
    found = [bus.app.repository.get(member_id) for member_id in ids]
    return context, [m for m in found if isinstance(m, Member)]


def run(members: int, rounds: int) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="bench-erasure-"))
    server = EmbeddedPostgres(workdir / "pg")
    try:
        create_database(server.admin_url, "bench")
        admin_url = with_dbname(server.admin_url, "bench")
        migrate(admin_url)
        app = training_application(Database(admin_url, app_url_for(admin_url, None)))
        try:
            bus = command_bus(app)
            context, people = populate(bus, members)
            with_email, without_email, erase, rename = [], [], [], []
            for n in range(rounds):
                tag = uuid.uuid4().hex[:8]
                with_email.append(
                    timed(
                        lambda tag=tag: bus.execute(
                            context,
                            RegisterMember(
                                f"W{tag}", "New", f"new{tag}@example.test", (Role.ENGINEER,)
                            ),
                        )
                    )
                )
                without_email.append(
                    timed(
                        lambda tag=tag: bus.execute(
                            context, RegisterMember(f"N{tag}", "New", None, (Role.ENGINEER,))
                        )
                    )
                )
                erased, renamed = people[2 * n], people[2 * n + 1]
                erase.append(timed(lambda m=erased: bus.execute(context, ErasePersonalData(m.id))))
                rename.append(
                    timed(
                        lambda m=renamed, tag=tag: bus.execute(
                            context, UpdateMember(m.id, display_name=f"Renamed {tag}")
                        )
                    )
                )
        finally:
            app.close()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return table(members, rounds, with_email, without_email, erase, rename)


def table(
    members: int,
    rounds: int,
    with_email: Sequence[float],
    without_email: Sequence[float],
    erase: Sequence[float],
    rename: Sequence[float],
) -> str:
    def median(values: Sequence[float]) -> float:
        return statistics.median(values)

    lines = [
        f"Tenant of {members} members, each with a review naming another; {rounds} rounds.",
        "",
        "| command | median ms | baseline (same run) | median ms | ratio |",
        "|---|---:|---|---:|---:|",
        f"| register with an email | {median(with_email):.1f} | register without | "
        f"{median(without_email):.1f} | {median(with_email) / median(without_email):.2f} |",
        f"| erase personal data | {median(erase):.1f} | change a display name | "
        f"{median(rename):.1f} | {median(erase) / median(rename):.2f} |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args(argv)
    if args.members < 2 * args.rounds:
        print("--members must be at least twice --rounds", file=sys.stderr)
        return 2
    print(run(args.members, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
