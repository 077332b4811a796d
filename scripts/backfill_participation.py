"""Brings participation records up to date for cohorts from before they were kept (ADR 0025).

A deactivation withdraws the member from the open cohorts their participation record lists.
People placed in a cohort before records were kept have no record of it, so this runs
``RecordParticipation`` once for every open cohort of every tenant: it lists the cohort on
the record of everyone in it, and withdraws anyone deactivated meanwhile. Running it again
changes nothing. Stop the service first (or run it while no enrolments happen), then::

    .venv/bin/python scripts/backfill_participation.py

It uses DATABASE_URL when set, else the embedded database under the data directory.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator

from eventsourcing.utils import get_topic

from training.application.app import TrainingApplication
from training.application.cohorts import RecordParticipation
from training.application.context import CommandContext
from training.bootstrap import command_bus, training_application
from training.domain.cohorts import Cohort
from training.infra.database import database_for
from training.infra.settings import Settings

PAGE = 500


def scheduled_cohorts(app: TrainingApplication) -> Iterator[tuple[uuid.UUID, uuid.UUID]]:
    """(tenant, cohort) of every cohort ever scheduled, oldest first."""
    start = 1
    while True:
        page = app.recorder.select_notifications(start, PAGE, topics=[get_topic(Cohort.Scheduled)])
        if not page:
            return
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            assert isinstance(event, Cohort.Scheduled)
            if event.tenant_id is not None:
                yield event.tenant_id, event.originator_id
        start = page[-1].id + 1


def main() -> int:
    with database_for(Settings.from_env()) as database:
        app = training_application(database)
        bus = command_bus(app)
        cohorts = changed = 0
        for tenant_id, cohort_id in scheduled_cohorts(app):
            context = CommandContext.system(
                "participation-backfill", f"backfill-{uuid.uuid4().hex[:8]}", tenant_id
            )
            changed += int(bus.execute(context, RecordParticipation(cohort_id)).result)
            cohorts += 1
        app.close()
    print(f"{cohorts} cohorts looked at, {changed} participation records changed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
