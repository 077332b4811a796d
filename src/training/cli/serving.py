"""Running the service: `training serve` (the API, the projections and the report worker in one
process) and `training worker` (the background work alone)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from training.cli.database import prepare_database
from training.infra.settings import Settings

if TYPE_CHECKING:
    pass


def serve(settings: Settings, *, load_demo: bool, projections: bool) -> int:
    import uvicorn

    from training.app import create_app
    from training.bootstrap import build_services
    from training.cli.api_processes import (
        listening_socket,
        other_api_processes,
        stop_gracefully_on_sigterm,
        uvicorn_config,
    )
    from training.demo.world import load_demo as load
    from training.infra.database import database_for
    from training.infra.logging import configure_logging

    configure_logging(settings.log_level)
    stop_gracefully_on_sigterm()
    with database_for(settings) as database:
        prepare_database(settings, database.admin_url)
        services = build_services(settings, database, run_projections=projections)
        demo = load(services.bus) if load_demo else None
        server = uvicorn.Server(uvicorn_config(create_app(services), settings))
        # With one process uvicorn binds the port itself; with several, each binds it with
        # SO_REUSEPORT and the kernel spreads connections across them (cli/api_processes.py).
        sockets = (
            [listening_socket(settings.host, settings.port)] if settings.api_processes > 1 else None
        )
        print_banner(settings, embedded=settings.database_url is None, demo=demo)
        serving = note_serving(settings)
        try:
            with other_api_processes(settings, database):
                server.run(sockets=sockets)
        except KeyboardInterrupt:
            # uvicorn shuts down gracefully on Ctrl-C or SIGTERM, then raises the signal
            # again, which arrives here as KeyboardInterrupt.
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


def note_serving(settings: Settings) -> Path:
    path = settings.data_dir / SERVING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(settings.issuer + "\n")
    return path


def base_url(settings: Settings) -> str:
    """The service's base URL: the public URL when set, else where `serve` listens."""
    if settings.public_url:
        return settings.public_url
    try:
        noted = (settings.data_dir / SERVING_FILE).read_text().strip()
    except OSError:
        return settings.issuer
    return noted or settings.issuer


def print_banner(settings: Settings, *, embedded: bool, demo: object) -> None:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        f"Training service on {base}",
        f"  OpenAPI document   {base}/schema/openapi.json",
        f"  health / readiness {base}/healthz  {base}/readyz",
        f"  API processes      {settings.api_processes}",
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
        lines += hand_over_demo_client(client, settings.data_dir, on_terminal=on_terminal())
    lines += ["", "Ctrl-C stops the service.", ""]
    print("\n".join(lines), file=sys.stderr, flush=True)


def on_terminal() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


def run_worker(settings: Settings, only: str | None) -> int:
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
            supervisor = reporting_supervisor(database, command_bus(app, settings), settings)
        supervisor.start()
        signal.signal(signal.SIGTERM, lambda *_: supervisor.stop())
        try:
            supervisor.wait()
        except KeyboardInterrupt:
            supervisor.stop()
        finally:
            app.close()
    return 0
