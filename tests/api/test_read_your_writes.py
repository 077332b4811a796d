"""A query that carries Training-Position waits for its view, or says it is behind."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import TestClient

from tests.helpers import PROBLEM, bearer
from training.bootstrap import Services


def test_a_query_reads_its_own_write(client: TestClient[Any], operator_token: str) -> None:
    for _ in range(5):
        created = client.post(
            "/v1/tenants",
            json={"slug": f"ryw-{uuid.uuid4().hex[:8]}", "name": "Fresh", "seat_limit": 3},
            headers=bearer(operator_token),
        )
        read = client.get(
            created.headers["location"],
            headers={
                **bearer(operator_token),
                "Training-Position": created.headers["training-position"],
            },
        )
        assert read.status_code == 200
        assert read.json()["name"] == "Fresh"


def test_a_view_too_far_behind_answers_503(
    client: TestClient[Any], operator_token: str, services: Services
) -> None:
    assert services.supervisor is not None
    services.supervisor.stop()
    try:
        created = client.post(
            "/v1/tenants",
            json={"slug": f"late-{uuid.uuid4().hex[:8]}", "name": "Late", "seat_limit": 3},
            headers=bearer(operator_token),
        )
        behind = client.get(
            created.headers["location"],
            headers={
                **bearer(operator_token),
                "Training-Position": created.headers["training-position"],
            },
        )
        assert behind.status_code == 503
        assert behind.headers["content-type"] == PROBLEM
        assert behind.headers["retry-after"] == "1"
        ready = client.get("/readyz").json()
        assert ready["projections"][0]["lag"] >= 1
        # A position no command returned, and garbage, are refused outright.
        garbage = client.get(
            created.headers["location"],
            headers={**bearer(operator_token), "Training-Position": "soon"},
        )
        assert garbage.status_code == 400
    finally:
        services.supervisor = type(services.supervisor)(
            services.supervisor.specs, services.supervisor.env, services.supervisor.lock_conninfo
        )
        services.supervisor.start()
