"""The ``training`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from training.cli.database import migrate_database, run_db_program
from training.cli.operator import create_operator_client, demo_sign_in, load_demo, rotate_keys
from training.cli.projections import contracts_command, projections_command, tenant_id_argument
from training.cli.serving import run_worker, serve
from training.infra.settings import MAX_PROCESSES, Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="training", description="The training service.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the API and the projection runners")
    serve.add_argument("--host", help="listen address (TRAINING_HOST)")
    serve.add_argument("--port", type=int, help="listen port (TRAINING_PORT)")
    serve.add_argument("--no-demo", action="store_true", help="do not load the demo tenant")
    serve.add_argument(
        "--processes",
        type=process_count,
        metavar="N",
        help="answer the API with N processes on the port (TRAINING_API_PROCESSES, 1 to 64)",
    )
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
        type=tenant_id_argument,
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


def process_count(value: str) -> int:
    count = int(value) if value.strip().isdigit() else 0
    if not 1 <= count <= MAX_PROCESSES:
        msg = f"a whole number from 1 to {MAX_PROCESSES}, not {value!r}"
        raise argparse.ArgumentTypeError(msg)
    return count


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        if args.host or args.port or args.processes is not None:
            settings = Settings(
                **{
                    **settings.__dict__,
                    "host": args.host or settings.host,
                    "port": args.port or settings.port,
                    "api_processes": args.processes or settings.api_processes,
                }
            )
        return serve(settings, load_demo=not args.no_demo, projections=not args.no_projections)
    if args.command == "contracts":
        return contracts_command(args.action)
    handlers = {
        "worker": lambda: run_worker(settings, args.only),
        "migrate": lambda: migrate_database(settings),
        "demo": lambda: (
            demo_sign_in(settings, args.sign_in)
            if args.sign_in is not None
            else load_demo(settings, new_client=args.new_client)
        ),
        "projections": lambda: projections_command(settings, args),
        "operator": lambda: create_operator_client(settings, args.name),
        "keys": lambda: rotate_keys(settings, lost=args.replace_lost_secret_key),
        "db": lambda: run_db_program(settings, args.program, args.arguments),
    }
    return handlers[args.command]()


tenant_id_argument.__name__ = "tenant id"  # argparse names the type in that refusal
