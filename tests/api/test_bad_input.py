"""Input that cannot be parsed is a 400 problem naming what was wrong, never a 500.

Generated from ``contracts/openapi.json``, over a seeded world with real ids:

* every operation with a JSON request body gets invalid UTF-8 and JSON nested 1,000 deep;
* every operation that takes ``If-Match`` gets values that are not an ETag of this API;
* every query (``GET /v1/...``) gets a ``Training-Position`` that is not a position;
* every list (it takes ``cursor``) gets forged cursors: wrong arity, wrong types, huge
  numbers, NUL characters, nested values, and, where a real cursor shows the list's key,
  each position of that key replaced by a value of another kind.

Each answer is a 4xx ``application/problem+json``; at least one of the callers who may use
the operation is told ``400`` with ``errors[].field`` naming the header, ``cursor`` or
``body``; and no event is written.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from litestar.exceptions import ValidationException
from litestar.testing import TestClient

from tests.api.test_fuzz import Caller
from tests.api.worlds import Operation, World, build_world, operations, wait_for_import
from tests.helpers import OPERATOR_ONLY, PROBLEM
from training.bootstrap import Services
from training.core.http.params import expected_version

# The member import reads its upload as a file, in the background: see the import tests below.
BODY_OPERATIONS = [op for op in operations() if op.json_body and op.operation_id != "importMembers"]
IF_MATCH_OPERATIONS = [op for op in operations() if op.takes("header", "If-Match")]
QUERIES = [op for op in operations() if op.method == "get" and op.path.startswith("/v1/")]
LISTS = [op for op in operations() if op.takes("query", "cursor")]


@pytest.fixture(scope="module")
def world(client: TestClient[Any], services: Services) -> World:
    return build_world(client, services)


@pytest.fixture
def nothing_written(services: Services) -> Iterator[None]:
    """No event is written, leaving out the report worker's: it records the automatic reports
    of the world's re-plans in the background, whatever the request under test does."""
    recorder = services.app.recorder
    before = recorder.max_notification_id() or 0
    yield
    written = [
        n.topic
        for n in recorder.select_notifications(before + 1, 100)
        if not n.topic.startswith("training.reports:Report.")
    ]
    assert written == [], "events were written"


def callers_for(operation: Operation, world: World) -> list[Caller]:
    if operation.operation_id in OPERATOR_ONLY:
        return [world.callers["operator"]]
    return list(world.callers.values())


def send(
    client: TestClient[Any],
    operation: Operation,
    world: World,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    content: bytes | None = None,
) -> list[Any]:
    """The answers of every caller who might use the operation."""
    answers = []
    for caller in callers_for(operation, world):
        # Sent as UTF-8 bytes, as a probe would: header values are bytes on the wire.
        request_headers = {k: v.encode() for k, v in {**caller.headers, **(headers or {})}.items()}
        if content is not None:
            request_headers["content-type"] = b"application/json"
        response = client.request(
            operation.method.upper(),
            world.url(operation, caller),
            headers=request_headers,
            params=params,
            content=content,
        )
        answers.append(response)
    return answers


def assert_refused(answers: list[Any], field: str, what: str) -> None:
    for response in answers:
        assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
        assert response.headers["content-type"] == PROBLEM, (what, response.text)
    named = [
        r
        for r in answers
        if r.status_code == 400 and field in {e.get("field") for e in r.json().get("errors") or []}
    ]
    assert named, (what, [(r.status_code, r.text[:300]) for r in answers])


# -- bodies ------------------------------------------------------------------------------------

NESTED = b"[" * 1000 + b"]" * 1000
BAD_BODIES = {
    "invalid UTF-8 in a string": b'{"name": "caf\xe9", "title": "\xff\xfe"}',
    "invalid UTF-8 outside strings": b'{"\xff": 1}',
    "nested 1,000 deep": NESTED,
    "nested 1,000 deep in a field": b'{"targets": ' + NESTED + b"}",
    "malformed JSON": b'{"name": ',
}


@pytest.mark.parametrize("operation", BODY_OPERATIONS, ids=str)
@pytest.mark.parametrize("case", list(BAD_BODIES))
@pytest.mark.usefixtures("nothing_written")
def test_a_body_that_cannot_be_read_is_a_400_naming_the_body(
    client: TestClient[Any], world: World, operation: Operation, case: str
) -> None:
    answers = send(client, operation, world, content=BAD_BODIES[case])
    assert_refused(answers, "body", f"{operation} {case}")


# -- If-Match ----------------------------------------------------------------------------------

BAD_ETAGS = {
    "superscript digit": '"²"',
    "bare superscript digit": "²",
    "4,301 digits": '"' + "9" * 4301 + '"',
    "20 digits": '"99999999999999999999"',
    "negative": '"-1"',
    "not quoted text": "abc",
}


@pytest.mark.parametrize("operation", IF_MATCH_OPERATIONS, ids=str)
@pytest.mark.parametrize("case", list(BAD_ETAGS))
@pytest.mark.usefixtures("nothing_written")
def test_an_if_match_that_is_no_etag_is_a_400_naming_it(
    client: TestClient[Any], world: World, operation: Operation, case: str
) -> None:
    content = b"{}" if operation.json_body else None
    answers = send(client, operation, world, headers={"If-Match": BAD_ETAGS[case]}, content=content)
    assert_refused(answers, "If-Match", f"{operation} {case}")


# -- Training-Position -------------------------------------------------------------------------

BAD_POSITIONS = {
    "20 digits": "9" * 20,
    "superscript digit": "²",
    "digits then superscript": "12²",
    "Arabic-Indic digits": "١٢",
    "negative": "-1",
    "4,301 digits": "9" * 4301,
}


@pytest.mark.parametrize("operation", QUERIES, ids=str)
@pytest.mark.parametrize("case", list(BAD_POSITIONS))
@pytest.mark.usefixtures("nothing_written")
def test_a_training_position_that_is_no_position_is_a_400_naming_it(
    client: TestClient[Any], world: World, operation: Operation, case: str
) -> None:
    answers = send(client, operation, world, headers={"Training-Position": BAD_POSITIONS[case]})
    assert_refused(answers, "Training-Position", f"{operation} {case}")


# -- cursors -----------------------------------------------------------------------------------


def cursor_of(values: Any) -> str:
    raw = json.dumps(values).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# A value no key position of any list accepts: keys are ints in range, uuids, timestamps
# with a zone, or bounded text without NUL.
NEVER_A_KEY: list[Any] = [None, True, 1.5, 2**70, -(2**70), ["zzz"], {"a": 1}, "\u0000"]


def universal_forgeries() -> dict[str, str]:
    forged = {
        "not base64": "!!!",
        "base64 of no JSON": base64.urlsafe_b64encode(b"\xff\xfe{").decode(),
        "an object": cursor_of({"after": 1}),
        "a string": cursor_of("zzz"),
        "no values": cursor_of([]),
        "four values": cursor_of(["a", "b", "c", "d"]),
        "nested deep": base64.urlsafe_b64encode(b"[" * 180 + b"]" * 180).decode(),
        "longer than a cursor": cursor_of(["x" * 600]),
    }
    for arity in (1, 2, 3):
        for bad in NEVER_A_KEY:
            forged[f"{arity} x {json.dumps(bad)}"] = cursor_of([bad] * arity)
    return forged


def kind_of(value: Any) -> str:
    if isinstance(value, int):
        return "int"
    try:
        uuid.UUID(value)
        return "uuid"
    except ValueError:
        pass
    try:
        datetime.fromisoformat(value)
        return "timestamp"
    except ValueError:
        return "text"


# Values of the wrong kind for a position of each kind of key.
WRONG_FOR = {
    "int": ["zzz", 2**63, -1, "1"],
    "uuid": ["zzz", 1, "00000000-0000-0000-0000-00000000000g"],
    "timestamp": ["zzz", 1, "2030-01-01T00:00:00", "2030-13-45T00:00:00+00:00"],
    "text": [1, "x" * 300],
}


def learned_forgeries(real: list[Any]) -> dict[str, str]:
    """Forgeries shaped like a real cursor of the list: one position wrong at a time."""
    forged = {
        "one value short": cursor_of(real[:-1]),
        "one value too many": cursor_of([*real, real[-1]]),
    }
    for position, value in enumerate(real):
        kind = kind_of(value)
        for wrong in WRONG_FOR[kind]:
            values = list(real)
            values[position] = wrong
            forged[f"{kind} at {position} as {json.dumps(wrong)[:20]}"] = cursor_of(values)
    return forged


def real_cursor(client: TestClient[Any], operation: Operation, world: World) -> list[Any] | None:
    for caller in callers_for(operation, world):
        response = client.get(
            world.url(operation, caller), headers=caller.headers, params={"limit": "1"}
        )
        if response.status_code == 200:
            cursor = response.json().get("next_cursor")
            if cursor:
                padded = cursor + "=" * (-len(cursor) % 4)
                values: list[Any] = json.loads(base64.urlsafe_b64decode(padded))
                return values
    return None


@pytest.mark.parametrize("operation", LISTS, ids=str)
@pytest.mark.usefixtures("nothing_written")
def test_a_forged_cursor_is_a_400_naming_it(
    client: TestClient[Any], world: World, operation: Operation
) -> None:
    forged = universal_forgeries()
    real = real_cursor(client, operation, world)
    if real is not None:
        forged.update(learned_forgeries(real))
    for case, cursor in forged.items():
        answers = send(client, operation, world, params={"cursor": cursor})
        assert_refused(answers, "cursor", f"{operation} {case} {cursor[:60]}")


def test_most_lists_show_a_real_cursor(client: TestClient[Any], world: World) -> None:
    # The learned forgeries only mean something when the world is big enough to page.
    learned = [op.operation_id for op in LISTS if real_cursor(client, op, world) is not None]
    assert len(learned) >= len(LISTS) // 2, learned


def test_every_kind_of_input_is_tried() -> None:
    assert len(BODY_OPERATIONS) > 40
    assert len(IF_MATCH_OPERATIONS) > 10
    assert len(QUERIES) > 30
    assert len(LISTS) > 15


# -- the parsers themselves --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "version"),
    [(None, None), ("*", None), ('"3"', 3), ('W/"3"', 3), ("3", 3), (f'"{2**63 - 1}"', 2**63 - 1)],
)
def test_an_etag_of_this_api_names_its_version(header: str | None, version: int | None) -> None:
    assert expected_version(header) == version


@pytest.mark.parametrize("header", [*BAD_ETAGS.values(), f'"{2**63}"', '"3', '""', '"1²"'])
def test_anything_else_in_if_match_is_refused(header: str) -> None:
    with pytest.raises(ValidationException) as refused:
        expected_version(header)
    assert refused.value.extra == [
        {"key": "If-Match", "message": "not an ETag of this API", "source": "header"}
    ]


# -- bodies that are not JSON, and the SCIM mount ----------------------------------------------


def test_a_token_request_that_is_not_utf8_is_refused(client: TestClient[Any], world: World) -> None:
    response = client.post(
        "/oauth2/token",
        content=b"grant_type=client_credentials&scope=\xff\xfe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("content_type", "content", "detail"),
    [
        ("text/csv", b"external_id,display_name\nX-1,Caf\xe9\n", "the CSV file is not UTF-8"),
        ("application/json", b'{"members": [{"external_id": "\xff"}]}', "cannot be parsed"),
        ("application/json", b'{"members": ' + NESTED + b"}", "cannot be parsed"),
    ],
)
def test_an_import_file_that_cannot_be_read_fails_with_a_reason(
    client: TestClient[Any], world: World, content_type: str, content: bytes, detail: str
) -> None:
    headers = world.callers["client"].headers
    submitted = client.post(
        "/v1/member-imports", content=content, headers={**headers, "content-type": content_type}
    )
    assert submitted.status_code in (202, 400), submitted.text
    if submitted.status_code == 400:
        assert submitted.headers["content-type"] == PROBLEM
        return
    wait_for_import(client, submitted.json()["status_url"], headers)
    job = client.get(submitted.json()["status_url"], headers=headers).json()
    assert job["status"] == "failed", job
    assert detail in job["detail"], job


SCIM_BODIES = {
    "invalid UTF-8": b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], '
    b'"userName": "caf\xe9@example.com"}',
    "nested 1,000 deep": NESTED,
    "nested 1,000 deep in a field": b'{"userName": ' + NESTED + b"}",
}


@pytest.mark.parametrize("case", list(SCIM_BODIES))
@pytest.mark.parametrize(("method", "resource"), [("POST", "Users"), ("POST", "Groups")])
@pytest.mark.usefixtures("nothing_written")
def test_a_scim_body_that_cannot_be_read_is_a_scim_400(
    client: TestClient[Any], world: World, case: str, method: str, resource: str
) -> None:
    caller = world.callers["client"]
    tenant_id = caller.known["tenant_id"][0]
    response = client.request(
        method,
        f"/scim/v2/{tenant_id}/{resource}",
        content=SCIM_BODIES[case],
        headers={
            "Authorization": caller.headers["Authorization"],
            "content-type": "application/scim+json",
        },
    )
    assert response.status_code == 400, (case, response.status_code, response.text)
