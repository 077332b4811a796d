"""Several API processes behind one port: ``training serve --processes N``.

One Python process answers requests on one core at a time (the interpreter lock), and the
process that also runs the projections shares that core with them. ``serve`` with
``TRAINING_API_PROCESSES`` (or ``--processes``) above 1 starts the others itself: each is a
whole API of its own (its pools, its caches, its event loop), and every process listens on
the same port with ``SO_REUSEPORT``, so the kernel spreads new connections across them.
What must hold across processes already lives in PostgreSQL: idempotency records, rate-limit
buckets, each projection's leader lock (ADR 0037). The first process prepares the database,
loads the demo, and runs the projections and the report worker; the others only answer.

The others are started fresh (``spawn``), not forked: the first process holds pools,
threads and an embedded PostgreSQL by then, none of which survive a fork safely. They are
handed the database the first one resolved (the embedded server's too), so they never start
a server of their own. One that fails or is killed while serve runs is logged and started
again after a pause. Each checks once a second that the process that started it is still
there and stops itself when it is not, so a ``kill -9`` of ``serve`` leaves no API
answering on its port.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

import structlog

from training.infra.database import Database
from training.infra.settings import Settings

if TYPE_CHECKING:
    import uvicorn
    from litestar import Litestar

# Seconds the other processes have to finish their requests when serve stops.
STOP_GRACE_SECONDS = 10.0
# uvicorn's own default backlog.
BACKLOG = 2048
# How often exited processes are looked for, and so the least time before one is restarted.
RESTART_PAUSE_SECONDS = 1.0

log = structlog.get_logger(__name__)


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket on ``host:port`` that other processes may listen on as well."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on connections whose
    # socket says TCP, and with it on every answer waits for the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(False)
    return sock


@contextlib.contextmanager
def other_api_processes(settings: Settings, database: Database) -> Iterator[Sequence[BaseProcess]]:
    """Starts ``settings.api_processes - 1`` API-only processes, starts again any that exits,
    and stops them all on the way out."""
    processes = [_start(settings, database, number) for number in range(settings.api_processes - 1)]
    stopping = threading.Event()
    watcher = threading.Thread(
        target=_restart_exited, args=(processes, settings, database, stopping), daemon=True
    )
    watcher.start()
    try:
        yield processes
    finally:
        stopping.set()
        watcher.join()
        stop(processes)


def _start(settings: Settings, database: Database, number: int) -> BaseProcess:
    process = multiprocessing.get_context("spawn").Process(
        target=serve_api_only,
        args=(settings, database, os.getpid()),
        name=f"training-api-{number + 2}",
        daemon=False,
    )
    process.start()
    return process


def _restart_exited(
    processes: list[BaseProcess], settings: Settings, database: Database, stopping: threading.Event
) -> None:
    while not stopping.wait(RESTART_PAUSE_SECONDS):
        for number, process in enumerate(processes):
            # Exit status 0 is a process that was asked to stop (Ctrl-C reaches every
            # process of the group): serve is stopping too, and it is not started again.
            if process.is_alive() or process.exitcode == 0:
                continue
            log.error("api_process.exited", process=process.name, exit_code=process.exitcode)
            processes[number] = _start(settings, database, number)


def stop(processes: Sequence[BaseProcess]) -> None:
    for process in processes:
        if process.pid is not None and process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)  # uvicorn finishes its requests, then stops
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def serve_api_only(settings: Settings, database: Database, parent: int) -> None:
    """One more API process: the API alone, on the shared port, while ``parent`` lives."""
    import uvicorn

    from training.app import create_app
    from training.bootstrap import build_services
    from training.infra.logging import configure_logging

    configure_logging(settings.log_level)
    stop_gracefully_on_sigterm()
    threading.Thread(target=_stop_when_orphaned, args=(parent,), daemon=True).start()
    services = build_services(settings, database, run_projections=False)
    server = uvicorn.Server(uvicorn_config(create_app(services), settings))
    # Listening only once ready: the kernel hands connections to every listener at once.
    sock = listening_socket(settings.host, settings.port)
    try:
        # uvicorn finishes its requests, then raises the signal as KeyboardInterrupt.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        services.app.close()
        sock.close()


def uvicorn_config(app: Litestar, settings: Settings) -> uvicorn.Config:
    """The one uvicorn configuration of every API process."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        lifespan="on",
        access_log=False,
        # X-Forwarded-For is believed only from TRAINING_TRUSTED_PROXIES
        # (core/http/ratelimit.py).
        proxy_headers=False,
    )


def stop_gracefully_on_sigterm() -> None:
    """SIGTERM (``kill``, an orchestrator) stops the process as Ctrl-C does.

    uvicorn answers either signal by finishing its requests, then restores the handlers it
    found and raises the signal again. SIGTERM's default action would end the process there,
    before the ``finally`` blocks that close the pools, stop the other API processes and stop
    the embedded PostgreSQL; this handler turns it into the ``KeyboardInterrupt`` those
    blocks are written for.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _stop_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
