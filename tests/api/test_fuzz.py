"""schemathesis against contracts/openapi.json: whatever it sends, no 5xx comes back.

Each operation is fuzzed as the callers who get past its guards, so that bodies, queries
and path parameters are parsed and acted on rather than refused with a 403 up front:

* the platform operator: the operator's own operations and the public ones;
* a tenant's API client holding every tenant scope: every tenant operation;
* a member (a manager with one report): the operations people call themselves.

A small world is seeded first (a tenant, members, a published curriculum, a cohort with a
session, a review, an assessment), and a generated path id is swapped for a real one about
half of the time, so that handlers get past "not found" too.

The examples are bounded per caller to keep the suite fast (``TRAINING_FUZZ_SCALE``
multiplies them for a deeper run); every answer must be below 500, every error must be
problem+json, and after each operation every projection must catch up with every event.
"""

from __future__ import annotations

import os
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar.testing import TestClient
from schemathesis.checks import not_a_server_error

from tests.conftest import TEST_ISSUER
from tests.helpers import (
    ALL_SCOPES,
    OPERATOR_ONLY,
    TenantUnderTest,
    bearer,
    fetch_token,
    member_token,
    register_operator,
    register_tenant_with_client,
)
from training.bootstrap import Services
from training.contracts import CONTRACTS_DIR

schema = schemathesis.openapi.from_path(str(CONTRACTS_DIR / "openapi.json"))

# Who may call what (see the guards in each context's http module): only operations a caller gets
# past the guard of are worth fuzzing as that caller.
PUBLIC = ["health", "readiness", "issueToken", "getJwks", "getAuthorizationServerMetadata"]
# Tenant operations the operator may call too (besides the curricula, the platform's own
# catalogue): the tenants' records and the audit trail.
OPERATOR_ADMITTED = ["getTenant", "listApiClients", "listAudit", "exportAudit", "listModules"]
MEMBER_FACING = [
    "getMyTrack",
    "recordTrackProgress",
    "getTrack",
    "listTrackHistory",
    "getReview",
    "getMember",
    "listReports",
    "listMyCohorts",
    "listMySessions",
    "rotateMyCalendar",
    "giveFeedback",
    "startAssessment",
    "startBattery",
    "getAssessment",
    "answerItem",
    "abandonAssessment",
    "listMyAssessments",
    "recordSkillEvidence",
    "getSkillProfile",
    "requestReport",
    "getReport",
    "downloadReport",
    "listMemberPdfReports",
    "chooseMyLanguage",
]

# Examples per operation for each caller; TRAINING_FUZZ_SCALE=10 digs ten times deeper.
SCALE = int(os.environ.get("TRAINING_FUZZ_SCALE", "1"))
# The operator's operations are few and simple; most of the product sits behind tenants.
MEMBER_EXAMPLES = 60 * SCALE
CLIENT_EXAMPLES = 60 * SCALE
OPERATOR_EXAMPLES = 40 * SCALE

VIEW_TIMEOUT = 20.0  # seconds for the projections to catch up after an operation

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Caller:
    """A bearer token and the real ids that may stand in for generated path parameters."""

    headers: dict[str, str]
    known: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class World:
    operator: Caller
    client: Caller
    member: Caller


def _created(response: Any, key: str) -> str:
    assert response.status_code in (200, 201), response.text
    return str(response.json()[key])


def seed_world(client: TestClient[Any], services: Services) -> World:
    tenant = TenantUnderTest(client, services)
    headers = tenant.headers()

    def post(url: str, body: Any) -> Any:
        response = client.post(url, json=body, headers=headers)
        headers["Training-Position"] = response.headers.get(
            "training-position", headers["Training-Position"]
        )
        return response

    manager = _created(tenant.add("FZ-M", roles=["manager"]), "member_id")
    engineer = _created(tenant.add("FZ-E", manager_id=manager), "member_id")
    hr = _created(tenant.add("FZ-H", roles=["hr_manager"]), "member_id")

    curriculum = _created(post("/v1/curricula", {"title": "Fuzz course"}), "curriculum_id")
    module = {
        "key": "intro",
        "title": "Intro",
        "format": "reading",
        "duration_minutes": 30,
        "targets": [{"skill": "python", "level": 2}],
    }
    _created(post(f"/v1/curricula/{curriculum}/modules", module), "curriculum_id")
    version = _created(post(f"/v1/curricula/{curriculum}/publish", {}), "version")
    cohort_body = {
        "name": "Fuzz cohort",
        "curriculum_id": curriculum,
        "curriculum_version": int(version),
        "starts_on": "2030-03-01",
        "ends_on": "2030-05-31",
        "timezone": "Europe/Berlin",
        "capacity": 5,
        "facilitators": [],
    }
    cohort = _created(post("/v1/cohorts", cohort_body), "cohort_id")
    post(f"/v1/cohorts/{cohort}/enrolments", {"member_ids": [manager, engineer]})
    session_body = {
        "title": "Kick-off",
        "starts_at": "2030-03-04T09:00:00+01:00",
        "duration_minutes": 60,
        "join_url": "https://meet.example.com/kick-off",
    }
    session = _created(post(f"/v1/cohorts/{cohort}/sessions", session_body), "session_id")
    review_body = {
        "cycle": "2026-H2",
        "member_id": engineer,
        "ratings": [{"skill": "python", "level": 2}],
        "overall_rating": 3,
        "strengths": [],
        "goals": [],
    }
    review = _created(post("/v1/reviews", review_body), "review_id")

    manager_headers = bearer(member_token(services, tenant.tenant_id, uuid.UUID(manager)))
    started = client.post("/v1/assessments", json={"skill": "python"}, headers=manager_headers)
    attempt = _created(started, "attempt_id")

    # The operator acts on a tenant of its own, so that suspending it spoils nothing else.
    other_tenant, other_client = register_tenant_with_client(
        services, f"fz-{uuid.uuid4().hex[:8]}", ALL_SCOPES
    )
    shared = {
        "cohort_id": [cohort],
        "session_id": [session],
        "curriculum_id": [curriculum],
        "review_id": [review],
        "attempt_id": [attempt],
        "code": ["python"],
        "key": ["intro"],
        "version": [str(version)],
    }
    return World(
        operator=Caller(
            bearer(fetch_token(client, register_operator(services))),
            {
                "tenant_id": [str(other_tenant)],
                "client_id": [other_client.client_id],
                "curriculum_id": [curriculum],
                "key": ["intro"],
                "version": [str(version)],
            },
        ),
        # The member's own id is left out, so that the client does not deactivate or erase
        # the member whose token the member's fuzzing uses.
        client=Caller(headers, {**shared, "member_id": [engineer, hr]}),
        member=Caller(manager_headers, {**shared, "member_id": [manager, engineer]}),
    )


@pytest.fixture(scope="module")
def world(client: TestClient[Any], services: Services) -> World:
    return seed_world(client, services)


# Set once the views are found stuck, so that only the operation that stuck them fails.
_views_stuck: list[str] = []


@pytest.fixture(autouse=True)
def views_keep_up(client: TestClient[Any]) -> Iterator[None]:
    """An accepted command whose event a projection cannot store (say, text with NUL for a
    PostgreSQL column) answers 2xx but stops the view for every tenant: after each
    operation, every projection must catch up with every event."""
    yield
    if _views_stuck:
        return
    deadline = time.monotonic() + VIEW_TIMEOUT
    while True:
        ready = client.get("/readyz").json()
        behind = [p for p in ready["projections"] if p["lag"] or p["running"] is False]
        if not behind:
            return
        if time.monotonic() > deadline:
            _views_stuck.append(str(behind))
            pytest.fail(f"projections stopped after this operation: {behind}")
        time.sleep(0.05)


def with_known_ids(case: schemathesis.Case, known: dict[str, list[str]]) -> None:
    """About half of the path values become a real id, chosen by a checksum of the value
    generated so that hypothesis can replay and shrink the case."""
    for name, value in list((case.path_parameters or {}).items()):
        ids = known.get(name)
        if not ids:
            continue
        checksum = zlib.crc32(repr(value).encode())
        if checksum % 2:
            case.path_parameters[name] = ids[(checksum // 2) % len(ids)]


def call(case: schemathesis.Case, client: TestClient[Any], caller: Caller) -> None:
    with_known_ids(case, caller.known)
    kwargs = case.as_transport_kwargs(base_url=TEST_ISSUER, headers=caller.headers)
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        # Header values go on the wire as bytes: schemathesis draws them from Latin-1.
        "headers": {k: v.encode("latin-1") for k, v in (kwargs.get("headers") or {}).items()},
        "params": kwargs.get("params"),
    }
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif isinstance(kwargs.get("data"), bytes | str):
        request["content"] = kwargs["data"]
    elif "data" in kwargs:
        request["data"] = kwargs["data"]
    response = client.request(**request)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", response.text


# The member runs first: the client's fuzzing may deactivate people and close the cohort.
@schema.include(operation_id=MEMBER_FACING).parametrize()
@settings(FUZZ, max_examples=MEMBER_EXAMPLES)
def test_no_input_from_a_member_makes_the_api_fail(
    case: schemathesis.Case, client: TestClient[Any], world: World
) -> None:
    call(case, client, world.member)


@schema.exclude(operation_id=PUBLIC + list(OPERATOR_ONLY)).parametrize()
@settings(FUZZ, max_examples=CLIENT_EXAMPLES)
def test_no_input_from_a_tenant_client_makes_the_api_fail(
    case: schemathesis.Case, client: TestClient[Any], world: World
) -> None:
    call(case, client, world.client)


@(
    schema.include(operation_id=PUBLIC + list(OPERATOR_ONLY) + OPERATOR_ADMITTED)
    .include(tag="Curricula")
    .parametrize()
)
@settings(FUZZ, max_examples=OPERATOR_EXAMPLES)
def test_no_input_from_the_operator_makes_the_api_fail(
    case: schemathesis.Case, client: TestClient[Any], world: World
) -> None:
    call(case, client, world.operator)


def test_every_operation_named_here_exists() -> None:
    # A renamed operation would otherwise drop out of its caller's fuzzing without a word.
    raw: dict[str, Any] = schema.raw_schema
    ids = {
        operation["operationId"]
        for methods in raw["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    named = PUBLIC + list(OPERATOR_ONLY) + OPERATOR_ADMITTED + MEMBER_FACING
    assert [name for name in named if name not in ids] == []
