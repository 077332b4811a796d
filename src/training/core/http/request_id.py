"""Every request has an id: the one its caller sent in `X-Request-ID` when it is a sane one, or a
new one. The problem, the `X-Request-ID` answer header and the log line all carry it."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from litestar.types import Scope

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def header_value(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def start_request(scope: Scope) -> str:
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        supplied = header_value(scope, b"x-request-id")
        valid = supplied and REQUEST_ID_PATTERN.match(supplied)
        state["request_id"] = supplied if valid else uuid.uuid4().hex
        state["started"] = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=state["request_id"], tenant_id=None, actor=None
        )
    return str(state["request_id"])
