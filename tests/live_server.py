"""The app on a real uvicorn server on loopback, for tests that need real HTTP.

Requests that race each other, clients that come from addresses of their own and checkers
that want a live server (scim2-tester) cannot go through the in-process test client. Here
uvicorn serves the app in a background thread, with its lifespan (read pool, projection
runners), on a free port of 127.0.0.1, configured the way ``training serve`` configures it.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from litestar import Litestar

from tests.conftest import make_settings
from tests.helpers import bearer, fetch_token, register_tenant_with_client
from training.app import create_app
from training.bootstrap import Services, build_services
from training.infra.database import Database
from training.tenancy.handlers import IssuedCredentials

START_TIMEOUT = 30.0
HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    services: Services
    app: Litestar


@contextmanager
def loopback_socket() -> Iterator[socket.socket]:
    """A socket bound to a free port of 127.0.0.1, before the app exists, so that the app can
    be told its own URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without it each small response waits ~40 ms for
        # the client's delayed ACK, and a checker's hundreds of requests take half a minute.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        yield sock
    finally:
        sock.close()


def base_url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def uvicorn_serving(app: Litestar, sock: socket.socket) -> Iterator[None]:
    """Serves ``app`` on ``sock`` until the block ends; returns once the lifespan has started."""
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,
        # As `training serve`: X-Forwarded-For is believed only from the trusted proxies.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)


@contextmanager
def live_server(
    database: Database,
    *,
    run_projections: bool = True,
    issuer_on_loopback: bool = False,
    **settings: object,
) -> Iterator[LiveServer]:
    """The app with services of its own (the lifespan opens and closes their pools and
    runners), served on loopback. ``settings`` override the tests' settings; with
    ``issuer_on_loopback`` the service issues its tokens as this http URL."""
    with loopback_socket() as sock, pytest.MonkeyPatch.context() as patch:
        base_url = base_url_of(sock)
        if issuer_on_loopback:
            patch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # tokens over plain HTTP
            settings = {"public_url": base_url, **settings}
        services = build_services(
            make_settings(**settings), database, run_projections=run_projections
        )
        try:
            app = create_app(services)
            with uvicorn_serving(app, sock):
                yield LiveServer(base_url, services, app)
        finally:
            services.app.close()


def client_token(base_url: str, credentials: IssuedCredentials) -> str:
    """An API client's access token, fetched over HTTP."""
    with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT) as http:
        return fetch_token(http, credentials)


@dataclass(frozen=True)
class TenantToken:
    """A fresh tenant and the access token of its API client."""

    tenant_id: uuid.UUID
    token: str

    def headers(self) -> dict[str, str]:
        return bearer(self.token)


def tenant_with_token(server: LiveServer, slug: str, scopes: tuple[str, ...]) -> TenantToken:
    """Registers a tenant (its slug starts with ``slug``) with an API client holding
    ``scopes``, and fetches the client's token over HTTP."""
    tenant_id, credentials = register_tenant_with_client(
        server.services, f"{slug}-{uuid.uuid4().hex[:8]}", scopes
    )
    return TenantToken(tenant_id, client_token(server.base_url, credentials))
