"""What the curricula and the module search share over HTTP: who may read or write, and how a
refused query parameter is named."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import ValidationException

from training.core.access import Scope
from training.core.http.principal import requires_scope
from training.core.http.problems import EXCEPTION_HANDLERS

# The operator keeps the platform catalogue through the same endpoints as the tenants.
READ = requires_scope(Scope.CURRICULA_READ, operator=True)
WRITE = requires_scope(Scope.CURRICULA_WRITE, operator=True)

# Query parameters whose names are not Python names (or are reserved by Litestar) are
# declared under another name; a validation error names them as the client sent them.
QUERY_ALIASES = {
    "from_version": "from",
    "to_version": "to",
    "visibility": "scope",
    "module_format": "format",
}


def aliased_validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    """The usual problem for a refused request, naming query parameters as the client sent
    them."""
    extra = exc.extra
    if isinstance(extra, list):
        extra = [
            {**item, "key": QUERY_ALIASES.get(str(item.get("key")), item.get("key"))}
            if isinstance(item, dict) and item.get("source") == "query"
            else item
            for item in extra
        ]
    handler = EXCEPTION_HANDLERS[ValidationException]
    response: Response[Any] = handler(request, ValidationException(detail=exc.detail, extra=extra))
    return response
