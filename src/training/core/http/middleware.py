"""ASGI middleware: the request context and log line, and Idempotency-Key handling."""

from __future__ import annotations

import os
import re
import signal
import time
from typing import Any, cast

import msgspec
import structlog
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from training.core.command_outcomes import IdempotentRequest
from training.core.http.principal import Principal
from training.core.http.problems import MEDIA_TYPE, PROBLEM_TYPE_BASE, TITLES, Problem
from training.core.http.request_id import header_value, start_request
from training.core.idempotency import commands_of_request
from training.core.idempotency_store import (
    Claimed,
    IdempotencyStore,
    InFlight,
    Mismatch,
    Replay,
    Unreadable,
    request_fingerprint,
)
from training.core.redaction import redact_path

log = structlog.get_logger("training.access")

IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
MAX_BODY_BYTES = 10 * 1024 * 1024

# Response headers a replay repeats; the others belong to the original exchange only.
REPLAYED_HEADERS = {"content-type", "etag", "location", "training-position"}


class RequestContextMiddleware(ASGIMiddleware):
    """Gives each request an id (or keeps a sane ``X-Request-ID``) and binds it for logs."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        start_request(scope)
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query or "\x00" in scope.get("path", ""):
            # PostgreSQL refuses NUL in text; refuse it here, naming the problem, not as a 500.
            await send_problem(
                send, scope, 400, "invalid-request", "text may not contain NUL characters"
            )
            return
        await next_app(scope, receive, send)


async def log_response(message: Message, scope: Scope) -> None:
    """``before_send`` hook: sees every response, error responses included, at the app edge.

    It adds ``X-Request-ID`` and writes the request's log line when the body is complete.
    """
    if scope["type"] != ScopeType.HTTP:
        return
    request_id = start_request(scope)  # requests that matched no route never met the middleware
    state = scope["state"]
    if message["type"] == "http.response.start":
        state["status"] = message["status"]
        message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
    elif message["type"] == "http.response.body" and not message.get("more_body", False):
        log.info(
            "request",
            method=scope.get("method"),
            path=logged_path(scope),
            status=state.get("status"),
            duration_ms=round((time.perf_counter() - state["started"]) * 1000, 2),
        )


def logged_path(scope: Scope) -> str:
    """The path the client asked for, as the request log shows it.

    Never the query string (SSO callbacks carry codes, SCIM filters name people), and a
    calendar feed's path without its secret. The raw path, because routing rewrites
    ``path`` for mounted apps (SCIM's would lose its ``/scim`` prefix); some servers and test
    clients leave the query on it, so it is cut off here.
    """
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        path = raw.split(b"?", 1)[0].decode("latin-1")
    else:
        path = str(scope.get("root_path", "")) + str(scope.get("path", ""))
    return redact_path(path)


async def send_problem(
    send: Send,
    scope: Scope,
    status: int,
    code: str,
    detail: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A problem response sent from middleware, before any handler ran."""
    problem = Problem(
        type=PROBLEM_TYPE_BASE + code,
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=scope.get("path"),
        request_id=scope.get("state", {}).get("request_id"),
    )
    body = msgspec.json.encode(problem)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = cast(bytes, message.get("body", b""))
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class IdempotencyMiddleware(ASGIMiddleware):
    """Runs after authentication: keys are per principal, and so are stored responses."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, store: IdempotencyStore | None, *, die_after_commit: bool = False) -> None:
        # No store: an app built for its OpenAPI document only, which serves no request.
        self.store = store
        # Tests only: die like a killed process between a command's commit and the response.
        self.die_after_commit = die_after_commit

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        key = header_value(scope, b"idempotency-key")
        principal = scope.get("user")
        store = self.store
        if (
            store is None
            or scope.get("method") != "POST"
            or key is None
            or not isinstance(principal, Principal)
        ):
            await next_app(scope, receive, send)
            return
        if not IDEMPOTENCY_KEY_PATTERN.match(key):
            await send_problem(
                send,
                scope,
                400,
                "invalid-idempotency-key",
                "an Idempotency-Key is 1-255 visible ASCII characters",
            )
            return
        body = await _read_body(receive)
        if body is None:
            await send_problem(
                send, scope, 413, "request-too-large", "the request body is too large"
            )
            return
        owner = f"{principal.kind}:{principal.subject}"
        fingerprint = request_fingerprint(
            str(scope.get("method")), str(scope.get("path")), scope.get("query_string", b""), body
        )
        claim = await store.claim(principal.tenant_id, owner, key, fingerprint)
        if isinstance(claim, Mismatch):
            await send_problem(
                send,
                scope,
                422,
                "idempotency-key-reused",
                "this Idempotency-Key was used with a different request",
            )
            return
        if isinstance(claim, InFlight):
            await send_problem(
                send,
                scope,
                409,
                "idempotency-key-in-flight",
                "a request with this Idempotency-Key is still being processed",
            )
            return
        if isinstance(claim, Unreadable):
            await send_problem(
                send,
                scope,
                409,
                "idempotency-record-unreadable",
                "the response stored for this Idempotency-Key can no longer be read (the "
                "service's secret key changed, or an upgrade no longer knows what it names); "
                "send the request with a new key",
            )
            return
        if isinstance(claim, Replay):
            await self._replay(send, claim)
            return
        assert isinstance(claim, Claimed)
        await self._run_and_store(scope, send, next_app, body, store, claim.request)

    async def _replay(self, send: Send, replay: Replay) -> None:
        headers = [(k.encode(), v.encode()) for k, v in replay.headers]
        headers.append((b"idempotent-replayed", b"true"))
        headers.append((b"content-length", str(len(replay.body)).encode()))
        await send({"type": "http.response.start", "status": replay.status, "headers": headers})
        await send({"type": "http.response.body", "body": replay.body, "more_body": False})

    async def _run_and_store(
        self,
        scope: Scope,
        send: Send,
        next_app: ASGIApp,
        body: bytes,
        store: IdempotencyStore,
        request: IdempotentRequest,
    ) -> None:
        delivered = False
        die_after_commit = self.die_after_commit

        async def replay_receive() -> Any:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                if die_after_commit and request.committed and message["status"] < 400:
                    os.kill(os.getpid(), signal.SIGKILL)
                status = message["status"]
                headers = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() in REPLAYED_HEADERS
                ]
                if request.replayed:
                    # An earlier attempt acted (then its process died); this one answered
                    # what was recorded.
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"idempotent-replayed", b"true"),
                    ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        tenant_id, owner, key = request.tenant_id, request.principal, request.key
        stored = False
        try:
            with commands_of_request(request):
                await next_app(scope, replay_receive, capture)
            if status < 500:
                await store.complete(tenant_id, owner, key, status, headers, b"".join(chunks))
                stored = True
        finally:
            if not stored:
                await store.release(tenant_id, owner, key)
