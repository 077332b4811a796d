"""schemathesis against contracts/openapi.json: whatever it sends, no 5xx comes back.

The examples are bounded (``MAX_EXAMPLES`` per operation) to keep the suite fast; every
answer must be below 500, and every error must be problem+json.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar.testing import TestClient
from schemathesis.checks import not_a_server_error

from tests.conftest import TEST_ISSUER
from training.contracts import CONTRACTS_DIR

MAX_EXAMPLES = 30

schema = schemathesis.openapi.from_path(str(CONTRACTS_DIR / "openapi.json"))


@pytest.fixture(scope="module")
def auth_header(operator_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator_token}"}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_makes_the_api_fail(
    case: schemathesis.Case, client: TestClient[Any], auth_header: dict[str, str]
) -> None:
    kwargs = case.as_transport_kwargs(base_url=TEST_ISSUER, headers=auth_header)
    request: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs.get("headers"),
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
