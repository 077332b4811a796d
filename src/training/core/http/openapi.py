"""The OpenAPI document, completed with what Litestar cannot know from the handlers alone.

Litestar describes each operation's success response and request body from its signature,
and a 400 in its own error shape. This module rewrites the generated document once, so that
it tells what the service really does:

* every error an operation can answer is ``application/problem+json`` with the ``Problem``
  schema (``training.core.http.problems``), from rules on the operation (authenticated or not,
  reads or writes, path parameters, ``If-Match``) plus the few answers particular to one;
* the headers the API takes and gives: ``Idempotency-Key`` and ``Training-Position`` in,
  ``ETag``, ``Training-Position``, ``Location`` and ``Retry-After`` out;
* request bodies that are not JSON (the member import's CSV, the token endpoint's form) and
  the token endpoint's answer;
* ``additionalProperties: false`` on every body that refuses unknown fields.

``tests/api/conftest.py`` checks every answer the API tests receive against the result.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.plugins import JsonRenderPlugin

from training.core.http.problems import MEDIA_TYPE, TITLES, Problem

METHODS = ("get", "post", "put", "patch", "delete")
WRITES = ("post", "put", "patch", "delete")
REF = "#/components/schemas/{name}"

NUMBER = {"type": "string", "pattern": "^[0-9]{1,19}$"}
REQUEST_HEADERS = {
    "Idempotency-Key": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Any unique value: a retry with the same key and the same request gets "
        "the first answer again, without acting twice (kept for a day). Reused with another "
        "request: 422; while the first is still running: 409.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    },
    "Training-Position": {
        "name": "Training-Position",
        "in": "header",
        "required": False,
        "description": "The Training-Position a command answered: the query first waits, "
        "briefly, until it reflects that command (503 with Retry-After if it cannot).",
        "schema": NUMBER,
    },
}
RESPONSE_HEADERS = {
    "ETag": {
        "description": "The version of the resource; send it back as If-Match to act only on "
        "this version.",
        "schema": {"type": "string"},
    },
    "Training-Position": {
        "description": "Where the command's events stand: send it back on a query to read "
        "your own writes.",
        "schema": NUMBER,
    },
    "Location": {
        "description": "Where the resource created, or the job started, can be read.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}

# Answers particular to one operation, beside the ones the rules give.
PARTICULAR: dict[str, set[int]] = {
    "importMembers": {413, 415},
    "downloadReport": {304, 409, 410},
    "configureSso": {502},
}

TOKEN_FORM = {
    "type": "object",
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "scope": {"type": "string", "description": "space-separated; default: all held"},
        "client_id": {"type": "string", "description": "client_secret_post only"},
        "client_secret": {"type": "string", "description": "client_secret_post only"},
    },
    "required": ["grant_type"],
}
TOKEN = {
    "type": "object",
    "properties": {
        "access_token": {"type": "string", "description": "an RFC 9068 JWT"},
        "token_type": {"type": "string", "enum": ["Bearer"]},
        "expires_in": {"type": "integer", "description": "seconds"},
        "scope": {"type": "string"},
    },
    "required": ["access_token", "token_type", "expires_in"],
}
MEMBER_ROW = {
    "type": "object",
    "description": "One member, with the fields of a single registration.",
    "properties": {
        "external_id": {"type": "string"},
        "display_name": {"type": "string"},
        "email": {"type": "string"},
        "roles": {"type": "array", "items": {"type": "string"}},
        "manager_external_id": {"type": "string"},
        "team": {"type": "string"},
        "job_title": {"type": "string"},
    },
}
MEMBER_IMPORT = {
    "text/csv": {
        "schema": {
            "type": "string",
            "description": "A header row naming the columns (external_id, display_name, email, "
            "roles, manager_external_id, team, job_title; roles separated by ';'), then one "
            "member per row. UTF-8.",
        }
    },
    "application/json": {
        "schema": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"members": {"type": "array", "items": MEMBER_ROW}},
                    "required": ["members"],
                },
                {"type": "array", "items": MEMBER_ROW},
            ]
        }
    },
}


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """The errors an operation can answer, besides those particular to it."""
    statuses = {429}
    secured = bool(operation.get("security"))
    parameters = operation.get("parameters", [])
    if secured:
        statuses |= {401, 403}
    if path.startswith("/v1/") or parameters or "requestBody" in operation:
        statuses.add(400)
    if path.startswith("/v1/"):
        statuses |= {404, 422, 503}
    if method in WRITES and path.startswith("/v1/"):
        statuses.add(409)
    if method == "post" or "requestBody" in operation:
        statuses.add(413)  # a body larger than the API reads, before any handler
    if any(p.get("name") == "If-Match" for p in parameters):
        statuses.add(412)
    if path == "/oauth2/token":
        statuses |= {400, 401}
    return statuses | PARTICULAR.get(str(operation.get("operationId")), set())


def _problem_components() -> dict[str, Any]:
    _, components = msgspec.json.schema_components([Problem], ref_template=REF)
    problem = components["Problem"]
    problem["description"] = (
        "RFC 9457 problem details. `errors` names the fields of a request that was refused; "
        "`request_id` is the id the service logged the request under. The token endpoint adds "
        "OAuth2's `error` and `error_description`."
    )
    return dict(components)


def _problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": TITLES.get(status, "Error")}
    if status == 304:
        response["headers"] = {"ETag": RESPONSE_HEADERS["ETag"]}
    else:
        response["content"] = {MEDIA_TYPE: {"schema": {"$ref": REF.format(name="Problem")}}}
    if status in (429, 503, 409):
        response["headers"] = {"Retry-After": RESPONSE_HEADERS["Retry-After"]}
    if status == 304:
        response["description"] = "Not modified: the ETag sent in If-None-Match is current"
    return response


def _success_headers(
    method: str, path: str, status: str, operation: dict[str, Any]
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    single = not any(p.get("name") == "cursor" for p in operation.get("parameters", []))
    if path.startswith("/v1/") and (method in WRITES or single):
        headers["ETag"] = RESPONSE_HEADERS["ETag"]
    if path.startswith("/v1/") and method in WRITES:
        headers["Training-Position"] = RESPONSE_HEADERS["Training-Position"]
    if status in ("201", "202") or (method == "post" and path.startswith("/v1/")):
        headers["Location"] = RESPONSE_HEADERS["Location"]
    return headers


def _structs(annotation: Any) -> Iterator[msgspec.inspect.StructType]:
    """Every Struct type a body's annotation reaches."""
    seen: set[type] = set()
    pending = [msgspec.inspect.type_info(annotation)]
    while pending:
        info = pending.pop()
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls in seen:
                continue
            seen.add(info.cls)
            yield info
            pending.extend(field.type for field in info.fields)
        elif isinstance(info, msgspec.inspect.UnionType):
            pending.extend(info.types)
        elif isinstance(info, msgspec.inspect.ListType | msgspec.inspect.SetType):
            pending.append(info.item_type)
        elif isinstance(info, msgspec.inspect.DictType):
            pending.append(info.value_type)


def _closed_bodies(app: Litestar) -> set[tuple[str, frozenset[str]]]:
    """(Struct name, field names) of request bodies that refuse unknown fields."""
    closed: set[tuple[str, frozenset[str]]] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None:
                continue
            for struct in _structs(data.annotation):
                if struct.forbid_unknown_fields:
                    fields = frozenset(f.encode_name for f in struct.fields)
                    closed.add((struct.cls.__name__, fields))
    return closed


# Litestar keys two Structs of one name by the part of their module paths that differs
# ("skills_http_TargetIn", "cohorts_http_cohorts_ProgressIn"). Published clients know them by
# resource ("skills_TargetIn", "cohorts_ProgressIn"): the module's last segment that is not a
# role inside its context, or the resource the context published first.
ROLE_SEGMENTS = frozenset({"http", "views", "handlers", "domain", "web"})
PUBLISHED_RESOURCE = {"planning": "tracks"}
COLLIDING_KEY = re.compile(r"^(?P<path>[a-z][a-z0-9_]*?)_(?P<name>[A-Z][A-Za-z0-9]*)$")


def resource_key(key: str) -> str:
    """``skills_http_TargetIn`` -> ``skills_TargetIn``; keys without a module path unchanged."""
    match = COLLIDING_KEY.match(key)
    if match is None or not ROLE_SEGMENTS & set(match["path"].split("_")):
        return key
    segments = [part for part in match["path"].split("_") if part not in ROLE_SEGMENTS]
    resource = segments[-1]
    return f"{PUBLISHED_RESOURCE.get(resource, resource)}_{match['name']}"


def _by_resource(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.get("components", {}).get("schemas", {})
    renamed = {key: resource_key(key) for key in schemas if resource_key(key) != key}
    if not renamed:
        return document
    text = json.dumps(document)
    for old, new in renamed.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    result: dict[str, Any] = json.loads(text)
    result["components"]["schemas"] = {
        renamed.get(key, key): schema for key, schema in result["components"]["schemas"].items()
    }
    return result


def complete(generated: dict[str, Any], app: Litestar) -> dict[str, Any]:
    document = _by_resource(copy.deepcopy(generated))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_problem_components())
    for key, schema in schemas.items():
        # Litestar keys two Structs of one name by module ("reports_ReportPage") but leaves
        # both titled "ReportPage"; generated clients name their models by title.
        if schema.get("title") and schema["title"] != key:
            schema["title"] = "".join(part[:1].upper() + part[1:] for part in key.split("_"))
    for name, fields in _closed_bodies(app):
        for key, schema in schemas.items():
            named = key == name or key.endswith("_" + name)
            if named and set(schema.get("properties", {})) == fields:
                schema["additionalProperties"] = False
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                _complete_operation(method, path, operation)
    return document


def _complete_operation(method: str, path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    responses.pop("400", None)  # Litestar's own error shape, never answered
    for status, response in responses.items():
        if status.startswith("2"):
            headers = _success_headers(method, path, status, operation)
            if headers:
                response["headers"] = {**response.get("headers", {}), **headers}
    for status in sorted(error_statuses(method, path, operation)):
        responses[str(status)] = _problem_response(status)
    if path == "/readyz" and "200" in responses:
        # Not a problem: the same report, saying what this instance cannot reach.
        responses["503"] = {
            **responses["200"],
            "description": "Not ready: the database or the read replica is unreachable, or "
            "migrations are pending",
        }
    parameters = operation.setdefault("parameters", [])
    if method == "post" and path.startswith("/v1/"):
        parameters.append(REQUEST_HEADERS["Idempotency-Key"])
    if method == "get" and path.startswith("/v1/"):
        parameters.append(REQUEST_HEADERS["Training-Position"])
    if not parameters:
        del operation["parameters"]
    if operation.get("operationId") == "importMembers":
        operation["requestBody"] = {"required": True, "content": MEMBER_IMPORT}
    if operation.get("operationId") == "issueToken":
        operation["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": TOKEN_FORM}},
        }
        responses["200"]["content"] = {"application/json": {"schema": TOKEN}}


def document_of(app: Litestar) -> dict[str, Any]:
    """The completed document, built once per app."""
    document: dict[str, Any] | None = getattr(app.state, "openapi_document", None)
    if document is None:
        document = complete(app.openapi_schema.to_schema(), app)
        app.state.openapi_document = document
    return document


class CompletedJsonRenderPlugin(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` as ``document_of`` completes it."""

    def render(self, request: Any, openapi_schema: dict[str, Any]) -> bytes:
        return self.render_json(request, document_of(request.app))
