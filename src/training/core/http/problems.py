"""Every error leaves as ``application/problem+json`` (RFC 9457).

Domain errors map to statuses here, in one table; validation errors name the offending
field in ``errors``; a database (or read replica) that cannot be reached or cancelled the
query answers 503 with ``Retry-After``: the request may well succeed in a moment; an
unexpected exception is logged with its request id and answered with a 500 problem that
reveals nothing else.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import psycopg
import structlog
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from training.core.bus import ConcurrentModification
from training.core.errors import (
    AlreadyExists,
    DomainError,
    Forbidden,
    InvalidTransition,
    LimitReached,
    NotFound,
    RuleViolated,
    StaleVersion,
)
from training.core.http.request_id import start_request
from training.core.pagination import InvalidCursor
from training.core.read_store import ViewBehind

PROBLEM_TYPE_BASE = "https://training.example/problems/"
MEDIA_TYPE = "application/problem+json"

log = structlog.get_logger(__name__)

DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    AlreadyExists: 409,
    InvalidTransition: 409,
    LimitReached: 409,
    RuleViolated: 422,
    StaleVersion: 412,
    Forbidden: 403,
}

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    412: "Precondition failed",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class ProblemError(msgspec.Struct, kw_only=True, omit_defaults=True):
    field: str | None = None
    message: str
    source: str | None = None


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """RFC 9457 problem details, with ``errors`` naming fields for validation failures."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] | None = None


def problem_response(
    request: Request[Any, Any, Any] | None,
    status: int,
    *,
    code: str,
    detail: str | None = None,
    errors: list[ProblemError] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response[bytes]:
    """A problem response; ``extensions`` adds members such as OAuth2's ``error``."""
    request_id = None
    instance = None
    if request is not None:
        # An unknown path or method is refused before any middleware runs: give the request
        # its id here, so that the problem, the X-Request-ID header and the log line agree.
        request_id = start_request(request.scope)
        instance = request.url.path
    problem = Problem(
        type=PROBLEM_TYPE_BASE + code,
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=instance,
        request_id=request_id,
        errors=errors,
    )
    body = msgspec.json.encode(problem)
    if extensions:
        body = msgspec.json.encode({**msgspec.json.decode(body), **extensions})
    return Response(
        content=body,
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[bytes]:
    status = next((code for cls, code in DOMAIN_STATUS.items() if isinstance(exc, cls)), 422)
    errors = [ProblemError(field=exc.field, message=exc.detail)] if exc.field else None
    return problem_response(request, status, code=exc.code, detail=exc.detail, errors=errors)


# msgspec names the offending field inside its message; Litestar reports the whole body as
# the field "data". These patterns recover the real field name for the client.
_AT_PATH = re.compile(r"at `\$\.([^`]+)`")
_NAMED_FIELD = re.compile(r"(?:missing required field|unknown field) `([^`]+)`")


def _field_of(item: dict[str, Any]) -> str | None:
    message = str(item.get("message", ""))
    key = item.get("key") or None
    if key in (None, "data") and item.get("source") in (None, "body"):
        for pattern in (_NAMED_FIELD, _AT_PATH):
            match = pattern.search(message)
            if match:
                prefix = _AT_PATH.search(message) if pattern is _NAMED_FIELD else None
                return f"{prefix.group(1)}.{match.group(1)}" if prefix else match.group(1)
    return str(key) if key else None


def _wire_name(request: Request[Any, Any, Any], field: str | None) -> str | None:
    """The name a client sent a parameter under (``If-Match``), not the handler's argument
    (``if_match``): Litestar reports the latter."""
    if field is None:
        return None
    try:
        fields = request.route_handler.signature_model._fields
    except (AttributeError, LookupError):
        return field
    kwarg = getattr(fields.get(field), "kwarg_definition", None)
    alias = next(
        (
            getattr(kwarg, name, None)
            for name in ("header", "query", "name")
            if getattr(kwarg, name, None)
        ),
        None,
    )
    return str(alias) if alias else field


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    errors = []
    if isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                errors.append(
                    ProblemError(
                        field=_wire_name(request, _field_of(item)),
                        message=str(item.get("message", "invalid value")),
                        source=item.get("source") or None,
                    )
                )
    detail = "the request is not valid" if errors else str(exc.detail)
    if errors:
        named = ", ".join(e.field for e in errors if e.field)
        if named:
            detail = f"invalid value for {named}"
    return problem_response(request, 400, code="invalid-request", detail=detail, errors=errors)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="training"')
    code = {401: "not-authenticated", 403: "forbidden", 404: "not-found"}.get(
        status, TITLES.get(status, "error").lower().replace(" ", "-")
    )
    return problem_response(request, status, code=code, detail=exc.detail, headers=headers)


def _view_behind(request: Request[Any, Any, Any], exc: ViewBehind) -> Response[bytes]:
    return problem_response(
        request,
        503,
        code="view-behind",
        detail=f"{exc}; {exc.lag} events still to process, retry shortly",
        headers={"Retry-After": "1"},
    )


def _invalid_cursor(request: Request[Any, Any, Any], exc: InvalidCursor) -> Response[bytes]:
    return problem_response(
        request,
        400,
        code="invalid-cursor",
        detail=str(exc),
        errors=[ProblemError(field="cursor", message=str(exc), source="query")],
    )


def _conflict(request: Request[Any, Any, Any], exc: ConcurrentModification) -> Response[bytes]:
    return problem_response(
        request,
        409,
        code="concurrent-modification",
        detail=str(exc),
        headers={"Retry-After": "1"},
    )


def _database_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.warning("request.database_unavailable", error=type(exc).__name__)
    return problem_response(
        request,
        503,
        code="database-unavailable",
        detail="the database did not answer; retry shortly",
        headers={"Retry-After": "1"},
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("request.failed", error=type(exc).__name__)
    return problem_response(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        code="internal-error",
        detail="an unexpected error occurred; it was logged with this request id",
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: _domain_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    ViewBehind: _view_behind,
    InvalidCursor: _invalid_cursor,
    ConcurrentModification: _conflict,
    # Lost connections, a replica cancelling a query that conflicts with its replay, a pool
    # with no connection to lend (PoolTimeout is an OperationalError): the database's state,
    # not the request's.
    psycopg.OperationalError: _database_unavailable,
    psycopg.InterfaceError: _database_unavailable,
    StoreOperationalError: _database_unavailable,
    StoreInterfaceError: _database_unavailable,
    Exception: _unexpected,
}
