"""The OpenAPI document tells the truth, and two outside tools agree with it.

What the service answers is checked against the document for every answer of the API tests
(``tests/api/answers.py``, run by the ``client`` fixture). Here: the document itself, as
``openapi-spec-validator`` and ``openapi-python-client`` read it, and the facts a generated
client relies on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from openapi_spec_validator import validate

from tests.api.worlds import DOCUMENT, operations, resolve
from tests.helpers import PROBLEM, TenantUnderTest, bearer, member_token
from training.bootstrap import Services
from training.contracts import CONTRACTS_DIR

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def test_openapi_spec_validator_finds_the_document_valid() -> None:
    validate(DOCUMENT)


def test_openapi_python_client_generates_a_client_without_a_warning(tmp_path: Path) -> None:
    # The generator reads JSON, forms, octet-streams and text answers; a CSV upload and a PDF
    # download are bytes to it, which is what they are to a client.
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "content_type_overrides": {
                    "text/csv": "application/octet-stream",
                    "application/pdf": "application/octet-stream",
                }
            }
        )
    )
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator is not None
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(CONTRACTS_DIR / "openapi.json"),
            "--config",
            str(config),
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "warning" not in output.lower(), output
    generated = list(tmp_path.glob("*/*/api/*/*.py"))
    assert len(generated) >= len(operations()) - 5, output


@pytest.mark.parametrize("operation", operations(), ids=str)
def test_every_error_is_a_problem_document(operation: Any) -> None:
    errors = {
        status: response
        for status, response in operation.spec["responses"].items()
        if status >= "400"
    }
    assert errors, operation
    if operation.spec.get("operationId") == "readiness":
        # Not ready is the readiness report itself, saying what cannot be reached.
        not_ready = errors.pop("503")
        assert not_ready["content"] == operation.spec["responses"]["200"]["content"]
    for status, response in errors.items():
        assert response["content"] == {PROBLEM: {"schema": PROBLEM_REF}}, (operation, status)
    if operation.spec.get("security"):
        assert {"401", "403", "429"} <= set(errors), operation
    if operation.takes("header", "If-Match"):
        assert "412" in errors, operation


def test_the_headers_are_documented() -> None:
    for operation in operations():
        names = {p["name"] for p in operation.spec.get("parameters", []) if p["in"] == "header"}
        if operation.path.startswith("/v1/") and operation.method == "post":
            assert "Idempotency-Key" in names, operation
        if operation.path.startswith("/v1/") and operation.method == "get":
            assert "Training-Position" in names, operation
    created = DOCUMENT["paths"]["/v1/members"]["post"]["responses"]["201"]["headers"]
    assert {"ETag", "Training-Position", "Location"} <= set(created)
    limited = DOCUMENT["paths"]["/v1/members"]["get"]["responses"]["429"]["headers"]
    assert set(limited) == {"Retry-After"}


def test_bodies_that_are_not_json_and_the_token_answer_are_described() -> None:
    imports = DOCUMENT["paths"]["/v1/member-imports"]["post"]["requestBody"]["content"]
    assert set(imports) == {"text/csv", "application/json"}
    token = DOCUMENT["paths"]["/oauth2/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
    answer = token["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"access_token", "token_type", "expires_in"} <= set(answer["required"])


def test_bodies_that_refuse_unknown_fields_say_so() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for name in ("ReviewIn", "AmendmentIn", "MemberIn", "CohortIn", "ItemIn"):
        if name in schemas:
            assert schemas[name].get("additionalProperties") is False, name
    closed = [
        name for name, schema in schemas.items() if schema.get("additionalProperties") is False
    ]
    assert len(closed) > 30, closed
    for operation in operations():
        body = operation.spec.get("requestBody", {}).get("content", {}).get("application/json")
        if body and operation.operation_id != "importMembers":
            schema = resolve(body["schema"])
            if schema.get("type") == "object":
                assert schema.get("additionalProperties") is False, operation


def test_a_required_field_has_no_empty_default() -> None:
    for name, schema in DOCUMENT["components"]["schemas"].items():
        for field, spec in schema.get("properties", {}).items():
            if spec.get("minLength", 0) > 0 and "default" in spec:
                assert len(spec["default"]) >= spec["minLength"], (name, field)


def test_the_document_served_is_the_one_in_contracts(client: TestClient[Any]) -> None:
    served = client.get("/schema/openapi.json")
    assert served.status_code == 200
    assert served.json() == DOCUMENT


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/no-such-thing"), ("DELETE", "/healthz")])
def test_unknown_paths_and_methods_are_problems_with_a_request_id(
    client: TestClient[Any], method: str, path: str
) -> None:
    response = client.request(method, path)
    assert response.status_code in (404, 405)
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["request_id"] == response.headers["x-request-id"]


def test_a_missing_scope_is_named_for_people(tenant: TenantUnderTest, services: Services) -> None:
    engineer = tenant.add("TRUTH-E1").json()
    token = member_token(services, tenant.tenant_id, uuid.UUID(engineer["member_id"]))
    refused = tenant.client.post("/v1/curricula", json={"title": "x"}, headers=bearer(token))
    assert refused.status_code == 403
    assert "<" not in refused.json()["detail"], refused.json()
