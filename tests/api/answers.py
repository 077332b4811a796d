"""Every answer the API tests receive is one the OpenAPI document describes.

``RecordingClient`` is the test client of ``tests/api``: it keeps the method, path, status,
content type, body and headers of each answer. When a test module is done, ``undocumented``
checks them against the document the app serves: a documented operation and status, a
documented content type, a body valid against the schema (JSON Schema, with the document's
components), the headers ``ETag``, ``Training-Position``, ``Location`` and ``Retry-After``
documented where they are sent, and, for every problem, a ``request_id`` and a message
without Python's representation of an enum. Paths outside the document (the SCIM mount,
calendar feeds, sign-in pages, the document itself) are left to their own tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import msgspec
from litestar.testing import TestClient

from training.core.http.openapi import METHODS

CHECKED_HEADERS = ("etag", "training-position", "location", "retry-after")
# The SCIM mount answers SCIM documents; calendar feeds and sign-in pages are for browsers.
OUTSIDE_THE_DOCUMENT = ("/scim/", "/calendar/", "/schema", "/auth/")
ENUM_REPR = re.compile(r"<[A-Za-z_][\w.]*: ")
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes
    headers: tuple[str, ...]


class RecordingClient(TestClient[Any]):
    answers: list[Answer]

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().request(method, url, *args, **kwargs)
        self.answers.append(
            Answer(
                method.lower(),
                response.request.url.path,
                response.status_code,
                response.headers.get("content-type", "").split(";")[0].strip(),
                response.content,
                tuple(h for h in CHECKED_HEADERS if h in response.headers),
            )
        )
        return response


class Document:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
            for path in document["paths"]
        ]
        self.validators: dict[tuple[str, str, str, str], Any] = {}

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for pattern, template in self.routes:
            if pattern.match(path):
                item = self.document["paths"][template]
                if method in item:
                    return template, item[method]
                return template, {}
        return None

    def validator(self, template: str, method: str, status: str, media: str) -> Any:
        key = (template, method, status, media)
        if key not in self.validators:
            schema = self.document["paths"][template][method]["responses"][status]["content"][
                media
            ].get("schema", {})
            self.validators[key] = jsonschema_rs.validator_for(
                {**schema, "components": self.document["components"]}
            )
        return self.validators[key]


def undocumented(answers: list[Answer], document: dict[str, Any]) -> list[str]:
    """What in the answers the document does not describe (one line each, deduplicated)."""
    checker = Document(document)
    found: dict[str, None] = {}
    for answer in answers:
        for problem in _check(checker, answer):
            found[problem] = None
    return list(found)


def _check(checker: Document, answer: Answer) -> list[str]:
    where = f"{answer.method.upper()} {answer.path} -> {answer.status}"
    problems = []
    body: Any = None
    if answer.content_type.endswith("json") and answer.body:
        try:
            body = msgspec.json.decode(answer.body)
        except msgspec.DecodeError:
            return [f"{where}: the body is not JSON"]
    if answer.content_type == PROBLEM and isinstance(body, dict):
        if not body.get("request_id"):
            problems.append(f"{where}: a problem without request_id")
        texts = [str(body.get("detail", ""))] + [
            str(e.get("message", "")) for e in body.get("errors") or [] if isinstance(e, dict)
        ]
        if any(ENUM_REPR.search(text) for text in texts):
            problems.append(f"{where}: a message shows a Python enum: {texts}")
    if answer.path.startswith(OUTSIDE_THE_DOCUMENT) or answer.method not in METHODS:
        return problems
    found = checker.operation(answer.method, answer.path)
    if found is None or not found[1]:
        if answer.status not in (404, 405) or answer.content_type != PROBLEM:
            problems.append(f"{where}: no such operation in the document")
        return problems
    template, operation = found
    name = operation.get("operationId", template)
    where = f"{name} {answer.method.upper()} {template} -> {answer.status}"
    response = operation.get("responses", {}).get(str(answer.status))
    if response is None:
        return [*problems, f"{where}: status not documented"]
    documented_headers = {h.lower() for h in response.get("headers", {})}
    for header in answer.headers:
        if header not in documented_headers:
            problems.append(f"{where}: header {header} not documented")
    content = response.get("content", {})
    if not answer.body or answer.status in (204, 304):
        return problems
    if answer.content_type not in content:
        return [*problems, f"{where}: content type {answer.content_type} not documented"]
    if answer.content_type.endswith("json"):
        validator = checker.validator(
            template, answer.method, str(answer.status), answer.content_type
        )
        errors = [str(e).splitlines()[0] for e in validator.iter_errors(body)]
        if errors:
            problems.append(f"{where}: body does not match the schema: {errors[:3]}")
    return problems
