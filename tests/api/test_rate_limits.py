"""Requests per client and per person are limited, with 429 and Retry-After."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import TEST_ISSUER, make_settings
from tests.helpers import PROBLEM, bearer, fetch_token, register_operator
from training.app import create_app
from training.bootstrap import Services, build_services
from training.core.http.ratelimit import Buckets, RateLimit
from training.infra.database import Database


def test_a_bucket_refills_over_time() -> None:
    buckets = Buckets(RateLimit(2, 1.0))
    assert buckets.take("a") == 0
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0
    assert buckets.take("b") == 0  # another key has its own bucket
    time.sleep(0.55)
    assert buckets.take("a") == 0


@pytest.mark.parametrize("text", ["0/60", "10/0", "ten/60"])
def test_a_limit_is_parsed_strictly(text: str) -> None:
    with pytest.raises(ValueError):
        RateLimit.parse(text)


@pytest.fixture(scope="module")
def limited(database: Database) -> Iterator[tuple[TestClient[Any], Services]]:
    services = build_services(make_settings(rate_limit="3/60"), database, run_projections=False)
    with TestClient(app=create_app(services), base_url=TEST_ISSUER) as client:
        yield client, services
    services.app.close()


def test_a_client_over_its_limit_gets_429(limited: tuple[TestClient[Any], Services]) -> None:
    client, services = limited
    token = fetch_token(client, register_operator(services))  # one token request
    statuses = [client.get("/v1/tenants", headers=bearer(token)).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    refused = client.get("/v1/tenants", headers=bearer(token))
    assert refused.headers["content-type"] == PROBLEM
    assert int(refused.headers["retry-after"]) >= 1
    # Another client is not slowed down by the first one.
    other = fetch_token(client, register_operator(services))
    assert client.get("/v1/tenants", headers=bearer(other)).status_code == 200
