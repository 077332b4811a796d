"""The database: `training migrate` (schema migrations, then the one-time data steps) and
`training db` (psql or pg_dump on the service's database)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from training.infra.settings import Settings

if TYPE_CHECKING:
    pass


def prepare_database(settings: Settings, admin_url: str) -> None:
    """Migrations and the first signing key: idempotent, safe to run at every start."""
    from training.identity.keys import ensure_signing_key
    from training.infra.database import WORKER_ROLE, set_login_password
    from training.infra.migrations import migrate
    from training.infra.secret_key_check import check_secret_key
    from training.infra.secretbox import SecretBox

    # Before anything is written: a key that cannot open the stored signing keys stops here.
    check_secret_key(admin_url, settings)
    applied = migrate(admin_url, app_password=settings.app_db_password)
    set_login_password(admin_url, WORKER_ROLE, settings.worker_db_password)
    for name in applied:
        print(f"applied {name}", file=sys.stderr)
    if ensure_signing_key(admin_url, SecretBox.from_settings(settings)):
        print("created the first token signing key", file=sys.stderr)
    move_personal_data_out_of_events(settings, admin_url)
    bring_participation_up_to_date(settings, admin_url)
    carry_external_ids_over(settings, admin_url)


def carry_external_ids_over(settings: Settings, admin_url: str) -> None:
    """The one-time step that gives every external id a tenant-wide ``ExternalIds`` lists
    its own key (recorded once done)."""
    from training.bootstrap import command_bus, training_application
    from training.infra.database import Database, app_url_for
    from training.infra.migrations import data_step_done, run_once
    from training.people.handlers import carry_over

    if data_step_done(admin_url, carry_over.CARRY_OVER_EXTERNAL_IDS):
        return
    database = Database(admin_url, app_url_for(admin_url, settings.app_db_password))
    app = training_application(database)
    try:
        bus = command_bus(app, settings)
        report = run_once(
            admin_url,
            carry_over.CARRY_OVER_EXTERNAL_IDS,
            lambda: carry_over.carry_over_external_ids(bus),
        )
    finally:
        app.close()
    if report is not None:
        print(
            f"gave {report['keys_opened']} external ids of {report['tenants']} tenants a key "
            "of their own",
            file=sys.stderr,
        )


def move_personal_data_out_of_events(settings: Settings, admin_url: str) -> None:
    """The one-time step of ADR 0020 for events stored before it (recorded once done)."""
    from training.bootstrap import command_bus, training_application
    from training.infra.database import Database, app_url_for
    from training.upgrades.event_rewrite import already_done, move_personal_data_out_of_events

    if already_done(admin_url):
        return
    database = Database(admin_url, app_url_for(admin_url, settings.app_db_password))
    app = training_application(database)
    try:
        report = move_personal_data_out_of_events(admin_url, command_bus(app))
    finally:
        app.close()
    if report is not None:
        print(
            "took personal data out of stored events: "
            f"{len(report.rekeyed_members)} members got an opaque external id, "
            f"{report.events_rewritten} events stored in their current shape",
            file=sys.stderr,
        )


def bring_participation_up_to_date(settings: Settings, admin_url: str) -> None:
    """The one-time steps of ADR 0025 for cohorts joined before participation records and
    track cohorts were kept (each recorded once done)."""
    from training.bootstrap import command_bus, training_application
    from training.infra.database import Database, app_url_for, worker_url_for
    from training.infra.migrations import data_step_done, run_once
    from training.upgrades import data_steps

    steps = (data_steps.PARTICIPATION, data_steps.TRACK_COHORTS)
    if all(data_step_done(admin_url, step) for step in steps):
        return
    database = Database(
        admin_url,
        app_url_for(admin_url, settings.app_db_password),
        worker_url_for(admin_url, settings.worker_db_password),
    )
    app = training_application(database)
    try:
        bus = command_bus(app, settings)
        participation = run_once(
            admin_url, data_steps.PARTICIPATION, lambda: data_steps.record_participation(bus)
        )
    finally:
        app.close()
    if participation is not None:
        print(
            f"listed {participation['cohorts']} cohorts on their people's participation "
            f"records ({participation['records_changed']} records changed)",
            file=sys.stderr,
        )
    cohorts = run_once(
        admin_url, data_steps.TRACK_COHORTS, lambda: data_steps.fill_track_cohorts(database)
    )
    if cohorts is not None:
        print(
            f"listed {cohorts['cohorts']} cohorts on {cohorts['tracks']} training tracks",
            file=sys.stderr,
        )


def migrate_database(settings: Settings) -> int:
    from training.infra.database import database_for

    with database_for(settings) as database:
        prepare_database(settings, database.admin_url)
    print("migrations are up to date", file=sys.stderr)
    return 0


def run_db_program(settings: Settings, program: str, arguments: Sequence[str]) -> int:
    """Runs a PostgreSQL client program of the pgserver wheel on the service's database."""
    import subprocess

    from psycopg.conninfo import conninfo_to_dict

    from training.infra.database import database_for, postgres_program
    from training.infra.settings import child_environment

    executable = postgres_program(program)
    if executable is None:
        print(
            f"training db: no PostgreSQL program {program!r} in the pgserver wheel", file=sys.stderr
        )
        return 2
    with database_for(settings) as database:
        params = conninfo_to_dict(database.admin_url)
        env = child_environment(
            {
                variable: str(params[key])
                for variable, key in LIBPQ_ENVIRONMENT.items()
                if params.get(key) is not None
            }
        )
        command = [str(executable), *arguments]
        return subprocess.run(command, env=env, check=False).returncode  # noqa: S603 (the operator's)


# The environment libpq's programs read, from the fields of a connection string.
LIBPQ_ENVIRONMENT = {
    "PGHOST": "host",
    "PGPORT": "port",
    "PGUSER": "user",
    "PGPASSWORD": "password",
    "PGDATABASE": "dbname",
}
