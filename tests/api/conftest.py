from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import TEST_ISSUER, make_settings
from tests.helpers import TenantUnderTest, fetch_token, register_operator
from training.api.app import create_app
from training.api.services import Services
from training.bootstrap import build_services
from training.infra.database import Database


@pytest.fixture(scope="module")
def services(database: Database) -> Iterator[Services]:
    built = build_services(make_settings(), database, run_projections=True)
    try:
        yield built
    finally:
        built.app.close()


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(services), base_url=TEST_ISSUER) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def operator_token(services: Services, client: TestClient[Any]) -> str:
    return fetch_token(client, register_operator(services))


@pytest.fixture
def tenant(client: TestClient[Any], services: Services) -> TenantUnderTest:
    return TenantUnderTest(client, services)
