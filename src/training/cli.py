"""The ``training`` command."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from training.infra.settings import Settings

if TYPE_CHECKING:
    from training.core.views import ProjectionSpec


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="training", description="The training service.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API and the projection runners")
    serve.add_argument("--host", help="listen address (TRAINING_HOST)")
    serve.add_argument("--port", type=int, help="listen port (TRAINING_PORT)")
    serve.add_argument("--no-demo", action="store_true", help="do not load the demo tenant")
    serve.add_argument(
        "--no-projections",
        action="store_true",
        help="serve the API only; run the projections and reports in `training worker`",
    )

    worker = commands.add_parser(
        "worker", help="run the projection runners and the report worker, without the API"
    )
    worker.add_argument("--only", metavar="NAME", help="run this projection only")

    commands.add_parser("migrate", help="create roles, tables and the first signing key")
    demo = commands.add_parser("demo", help="load the demo tenant if it is not there")
    demo.add_argument(
        "--new-client",
        action="store_true",
        help="issue another API client of the demo tenant (when its secret was lost)",
    )
    demo.add_argument(
        "--sign-in",
        metavar="EMAIL",
        nargs="?",
        const="",
        help="print a 15-minute access token for a person of the demo tenant (no EMAIL: list them)",
    )

    projections = commands.add_parser("projections", help="read-model maintenance")
    projection_commands = projections.add_subparsers(dest="action", required=True)
    rebuild = projection_commands.add_parser("rebuild", help="replay a read model from the events")
    rebuild.add_argument("name")
    retry = projection_commands.add_parser(
        "retry", help="re-apply a read model's quarantined events, in order, after a fix"
    )
    retry.add_argument("name")
    retry.add_argument(
        "--tenant",
        metavar="ID",
        type=_tenant_id,
        help="only this tenant (`platform`: the platform's own events); default: every tenant",
    )

    operator = commands.add_parser("operator", help="the platform operator's credentials")
    operator_commands = operator.add_subparsers(dest="action", required=True)
    create_client = operator_commands.add_parser("create-client", help="make an operator client")
    create_client.add_argument("--name", default="operator")

    keys = commands.add_parser("keys", help="token signing keys")
    keys_commands = keys.add_subparsers(dest="action", required=True)
    rotate = keys_commands.add_parser("rotate", help="new active key; the old one stays published")
    rotate.add_argument(
        "--replace-lost-secret-key",
        action="store_true",
        help="rotate even though the secret key cannot open the stored signing keys (it was "
        "lost): the new key is sealed with the secret key at hand, made if there is none",
    )

    db = commands.add_parser(
        "db",
        help="run a PostgreSQL client program (pg_dump, pg_restore, psql, ...) on the database",
        description="Runs PROGRAM from the PostgreSQL inside the pgserver wheel, with PGHOST, "
        "PGUSER, PGDATABASE (and PGPORT, PGPASSWORD) set to the service's database as its "
        "administrator: the embedded server (started for the command if nothing runs it) or "
        "DATABASE_URL. See the README's backup and restore.",
    )
    db.add_argument("program", help="pg_dump, pg_dumpall, pg_restore, psql, ...")
    db.add_argument("arguments", nargs=argparse.REMAINDER, help="the program's arguments")

    contracts = commands.add_parser("contracts", help="OpenAPI and event schemas")
    contracts_commands = contracts.add_subparsers(dest="action", required=True)
    contracts_commands.add_parser("write", help="regenerate contracts/")
    contracts_commands.add_parser("check", help="fail if contracts/ differs from the code")

    args = parser.parse_args(argv)
    settings = Settings.from_env()
    from training.infra.secret_key_check import SecretKeyRefused

    try:
        return _run(args, settings)
    except SecretKeyRefused as refusal:
        command = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
        print(f"training {command}: refused: {refusal}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        if args.host or args.port:
            settings = Settings(
                **{
                    **settings.__dict__,
                    "host": args.host or settings.host,
                    "port": args.port or settings.port,
                }
            )
        return _serve(settings, load_demo=not args.no_demo, projections=not args.no_projections)
    if args.command == "contracts":
        return _contracts(args.action)
    handlers = {
        "worker": lambda: _worker(settings, args.only),
        "migrate": lambda: _migrate(settings),
        "demo": lambda: (
            _demo_sign_in(settings, args.sign_in)
            if args.sign_in is not None
            else _demo(settings, new_client=args.new_client)
        ),
        "projections": lambda: _projections(settings, args),
        "operator": lambda: _create_operator_client(settings, args.name),
        "keys": lambda: _rotate_keys(settings, lost=args.replace_lost_secret_key),
        "db": lambda: _db(settings, args.program, args.arguments),
    }
    return handlers[args.command]()


def _prepare(settings: Settings, admin_url: str) -> None:
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
    _move_personal_data_out_of_events(settings, admin_url)
    _bring_participation_up_to_date(settings, admin_url)


def _move_personal_data_out_of_events(settings: Settings, admin_url: str) -> None:
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


def _bring_participation_up_to_date(settings: Settings, admin_url: str) -> None:
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


def _serve(settings: Settings, *, load_demo: bool, projections: bool) -> int:
    import uvicorn

    from training.app import create_app
    from training.bootstrap import build_services
    from training.demo.world import load_demo as load
    from training.infra.database import database_for
    from training.infra.logging import configure_logging

    configure_logging(settings.log_level)
    with database_for(settings) as database:
        _prepare(settings, database.admin_url)
        services = build_services(settings, database, run_projections=projections)
        demo = load(services.bus) if load_demo else None
        app = create_app(services)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            lifespan="on",
            access_log=False,
            # X-Forwarded-For is believed only from TRAINING_TRUSTED_PROXIES (api/ratelimit.py).
            proxy_headers=False,
        )
        server = uvicorn.Server(config)
        _banner(settings, embedded=settings.database_url is None, demo=demo)
        serving = _note_serving(settings)
        try:
            server.run()
        except KeyboardInterrupt:
            # uvicorn shuts down gracefully on Ctrl-C, then re-raises the signal.
            pass
        finally:
            serving.unlink(missing_ok=True)
            services.app.close()
    print("stopped", file=sys.stderr)
    return 0


# Where a running `serve` notes its base URL, so that the commands run beside it (the
# operator's client, a demo sign-in) print examples with the port it really listens on,
# `--port` included.
SERVING_FILE = "serving.url"


def _note_serving(settings: Settings) -> Path:
    path = settings.data_dir / SERVING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(settings.issuer + "\n")
    return path


def _base_url(settings: Settings) -> str:
    """The service's base URL: the public URL when set, else where `serve` listens."""
    if settings.public_url:
        return settings.public_url
    try:
        noted = (settings.data_dir / SERVING_FILE).read_text().strip()
    except OSError:
        return settings.issuer
    return noted or settings.issuer


def _banner(settings: Settings, *, embedded: bool, demo: object) -> None:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        f"Training service on {base}",
        f"  OpenAPI document   {base}/schema/openapi.json",
        f"  health / readiness {base}/healthz  {base}/readyz",
        "  database           " + ("embedded PostgreSQL in .data/" if embedded else "DATABASE_URL"),
        "",
        "An operator token, from another shell:",
        "  .venv/bin/training operator create-client --name me",
        "  curl -s -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials \\",
        f"       {base}/oauth2/token",
    ]
    if demo is not None:
        from training.demo.world import hand_over_demo_client

        client = demo.client  # type: ignore[attr-defined]
        lines += ["", "Loaded the demo tenant 'acme'. Its API client:"]
        # The banner goes to standard error, the logs to standard output: the secret is
        # printed only when a person reads both on a terminal, never into captured output.
        lines += hand_over_demo_client(client, settings.data_dir, on_terminal=_on_terminal())
    lines += ["", "Ctrl-C stops the service.", ""]
    print("\n".join(lines), file=sys.stderr, flush=True)


def _on_terminal() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


def _worker(settings: Settings, only: str | None) -> int:
    import signal

    from training.bootstrap import (
        command_bus,
        projection_supervisor,
        reporting_supervisor,
        training_application,
    )
    from training.core.projection_runner import ProjectionSupervisor
    from training.infra.database import database_for
    from training.infra.logging import configure_logging
    from training.infra.secret_key_check import check_secret_key
    from training.registry import UnknownProjection, by_name

    try:
        # Before any database is touched: a typo is refused in one line.
        chosen = by_name(only) if only else None
    except UnknownProjection as refusal:
        print(f"training worker: {refusal}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    with database_for(settings) as database:
        check_secret_key(database.admin_url, settings)
        app = training_application(database)
        supervisor: ProjectionSupervisor
        if chosen is not None:
            base = projection_supervisor(database)
            supervisor = ProjectionSupervisor([chosen], base.env, base.lock_conninfo)
        else:
            # Reports are made wherever the projections run: the trigger and the worker too.
            supervisor = reporting_supervisor(database, command_bus(app, settings))
        supervisor.start()
        signal.signal(signal.SIGTERM, lambda *_: supervisor.stop())
        try:
            supervisor.wait()
        except KeyboardInterrupt:
            supervisor.stop()
        finally:
            app.close()
    return 0


def _migrate(settings: Settings) -> int:
    from training.infra.database import database_for

    with database_for(settings) as database:
        _prepare(settings, database.admin_url)
    print("migrations are up to date", file=sys.stderr)
    return 0


def _demo(settings: Settings, *, new_client: bool) -> int:
    from training.bootstrap import command_bus, training_application
    from training.demo.world import hand_over_demo_client, issue_demo_client, load_demo
    from training.infra.database import database_for

    with database_for(settings) as database:
        app = training_application(database)
        try:
            bus = command_bus(app)
            if new_client:
                client = issue_demo_client(bus)
                if client is None:
                    print("the demo tenant is not loaded: run `training demo`", file=sys.stderr)
                    return 1
                print("issued a new API client of the demo tenant", file=sys.stderr)
            else:
                loaded = load_demo(bus)
                if loaded is None:
                    print(
                        "the demo tenant is already loaded (`training demo --new-client` "
                        "issues another API client)",
                        file=sys.stderr,
                    )
                    return 0
                print(f"loaded the demo tenant {loaded.tenant_id}", file=sys.stderr)
                client = loaded.client
        finally:
            app.close()
    print("\n".join(hand_over_demo_client(client, settings.data_dir, on_terminal=_on_terminal())))
    return 0


def _demo_sign_in(settings: Settings, email: str) -> int:
    from training.demo.sign_in import demo_member_token, demo_people, find_demo_person
    from training.infra.database import database_for

    with database_for(settings) as database:
        people = demo_people(database)
        if not people:
            print("the demo tenant is not loaded: run `training demo`", file=sys.stderr)
            return 1
        person = find_demo_person(people, email) if email else None
        if person is None:
            if email:
                print(f"no active person of the demo tenant has the email {email}", file=sys.stderr)
            print("people of the demo tenant (email, roles):", file=sys.stderr)
            for someone in people:
                roles = ", ".join(str(r) for r in someone.roles)
                print(f"  {someone.email:<28} {roles}", file=sys.stderr)
            return 0 if not email else 1
        token = demo_member_token(database, settings, person.member_id)
    print(
        f"signed in as {person.name} ({', '.join(str(r) for r in person.roles)}) for 15 minutes; "
        f"send the token as `Authorization: Bearer`, e.g.\n"
        f'  curl -H "Authorization: Bearer $TOKEN" {_base_url(settings)}/v1/me/track',
        file=sys.stderr,
    )
    print(token)
    return 0


def _create_operator_client(settings: Settings, name: str) -> int:
    from training.bootstrap import command_bus, training_application
    from training.core.context import CommandContext
    from training.infra.database import database_for
    from training.tenancy.domain import OPERATOR_SCOPE
    from training.tenancy.handlers import RegisterApiClient

    with database_for(settings) as database:
        app = training_application(database)
        try:
            context = CommandContext.system("cli", request_id=f"cli-{uuid.uuid4().hex[:12]}")
            issued = (
                command_bus(app)
                .execute(context, RegisterApiClient(None, name, (OPERATOR_SCOPE,)))
                .result
            )
        finally:
            app.close()
    print(f"client_id={issued.client_id}")
    print(f"client_secret={issued.client_secret}")
    print(
        "The secret is shown only now. Get a token with:\n"
        f"  curl -s -u {issued.client_id}:<secret> -d grant_type=client_credentials "
        f"{_base_url(settings)}/oauth2/token",
        file=sys.stderr,
    )
    return 0


def _rotate_keys(settings: Settings, *, lost: bool) -> int:
    from training.identity.keys import rotate_signing_key
    from training.infra.database import database_for
    from training.infra.secret_key_check import check_secret_key
    from training.infra.secretbox import LOCAL_KEY_FILE, SecretBox

    local_key = settings.data_dir / LOCAL_KEY_FILE
    had_local_key = local_key.exists()
    with database_for(settings) as database:
        if not lost:
            check_secret_key(database.admin_url, settings)
        kid = rotate_signing_key(database.admin_url, SecretBox.from_settings(settings))
    if settings.secret_key is None and not settings.database_url and not had_local_key:
        print(f"created a new secret key in {local_key}: back it up", file=sys.stderr)
    print(f"new signing key {kid}; the previous key stays in the JWKS until the next rotation")
    if lost:
        print(
            "what the lost secret key sealed cannot be opened any more: enter the client "
            "secrets of the tenants' identity providers again",
            file=sys.stderr,
        )
    return 0


def _db(settings: Settings, program: str, arguments: Sequence[str]) -> int:
    """Runs a PostgreSQL client program of the pgserver wheel on the service's database."""
    import os
    import subprocess

    from psycopg.conninfo import conninfo_to_dict

    from training.infra.database import database_for, postgres_program

    executable = postgres_program(program)
    if executable is None:
        print(
            f"training db: no PostgreSQL program {program!r} in the pgserver wheel", file=sys.stderr
        )
        return 2
    with database_for(settings) as database:
        params = conninfo_to_dict(database.admin_url)
        env = {**os.environ}
        for variable, key in LIBPQ_ENVIRONMENT.items():
            if params.get(key) is not None:
                env[variable] = str(params[key])
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


def _tenant_id(value: str) -> str:
    from training.core.quarantine import tenant_arg

    tenant_arg(value)  # a ValueError is argparse's one-line refusal
    return value


_tenant_id.__name__ = "tenant id"  # argparse names the type in that refusal


def _projections(settings: Settings, args: argparse.Namespace) -> int:
    """A refusal (an unknown name, a policy, something running) is one line, not a traceback."""
    from training.core.projection_runner import ProjectionBusy
    from training.infra.logging import configure_logging
    from training.registry import PROJECTIONS, UnknownProjection, by_name
    from training.reports.store import REPORT_TRIGGERS

    # Alerts of events set aside go to stderr as JSON lines; stdout holds the answer only.
    configure_logging(settings.log_level, stream=sys.stderr)
    command = f"training projections {args.action}"
    try:
        if args.action == "rebuild":
            by_name(args.name)
            return _rebuild(settings, args.name)
        # The report trigger quarantines too, though a rebuild would queue every old report.
        spec = by_name(args.name, (*PROJECTIONS, REPORT_TRIGGERS))
        return _retry(settings, spec, args.tenant)
    except UnknownProjection as refusal:
        print(f"{command}: {refusal}", file=sys.stderr)
        return 2
    except ProjectionBusy as refusal:
        print(f"{command}: refused: {refusal}", file=sys.stderr)
        return 1


def _rebuild(settings: Settings, name: str) -> int:
    import psycopg

    from training.core import quarantine
    from training.infra.database import database_for
    from training.maintenance.rebuild import rebuild

    with database_for(settings) as database:

        def progress(done: int, total: int) -> None:
            width = 30
            filled = int(width * done / total) if total else width
            bar = "#" * filled + "." * (width - filled)
            print(f"\r{name}: [{bar}] {done}/{total} events", end="", file=sys.stderr, flush=True)

        started = time.perf_counter()
        total = rebuild(database, name, progress)
        elapsed = time.perf_counter() - started
        with psycopg.connect(database.worker_url, autocommit=True) as worker:
            held = quarantine.summary(worker, name)
    line = f"rebuilt {name} from {total} events in {elapsed:.1f} s"
    if held.held:
        line += (
            f"; set aside {held.failed} event(s) it could not apply and parked {held.parked} "
            f"behind them, for {held.tenants} tenant(s): fix the cause, then run "
            f"`training projections retry {name}`"
        )
    print(f"\n{line}", file=sys.stderr)
    return 0


def _retry(settings: Settings, spec: ProjectionSpec, tenant: str | None) -> int:
    import psycopg

    from training.core import quarantine
    from training.infra.database import database_for
    from training.maintenance.retry import retry

    only = None if tenant is None else [quarantine.tenant_arg(tenant)]
    with database_for(settings) as database:
        report = retry(database, spec, only)
        with psycopg.connect(database.worker_url, autocommit=True) as worker:
            left = quarantine.summary(worker, spec.name)
    print(report.line(left))
    return 1 if report.still_held else 0


def _contracts(action: str) -> int:
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
