from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.answers import RecordingClient, undocumented
from tests.conftest import TEST_ISSUER
from tests.helpers import TenantUnderTest, fetch_token, register_operator
from training.app import create_app
from training.bootstrap import Services
from training.core.http.openapi import document_of


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient[Any]]:
    """The app's test client; once the module's tests are done, every answer they received
    must be one the OpenAPI document describes (tests/api/answers.py)."""
    app = create_app(services)
    with RecordingClient(app=app, base_url=TEST_ISSUER) as test_client:
        test_client.answers = []
        yield test_client
    problems = undocumented(test_client.answers, document_of(app))
    if problems:
        pytest.fail(
            f"{len(problems)} answers the OpenAPI document does not describe:\n"
            + "\n".join(problems[:50]),
            pytrace=False,
        )


@pytest.fixture(scope="module")
def operator_token(services: Services, client: TestClient[Any]) -> str:
    return fetch_token(client, register_operator(services))


@pytest.fixture
def tenant(client: TestClient[Any], services: Services) -> TenantUnderTest:
    return TenantUnderTest(client, services)
