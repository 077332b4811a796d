"""Fixtures the integration tests share: one application (or service) per module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import TEST_ISSUER
from training.app import create_app
from training.bootstrap import Services, command_bus, training_application
from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.infra.database import Database


@pytest.fixture(scope="module")
def app(database: Database) -> Iterator[TrainingApplication]:
    application = training_application(database)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture(scope="module")
def bus(app: TrainingApplication) -> CommandBus:
    return command_bus(app)


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient[Any]]:
    with TestClient(app=create_app(services), base_url=TEST_ISSUER) as test_client:
        yield test_client
