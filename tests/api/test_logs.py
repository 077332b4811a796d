"""Log lines carry request_id, tenant_id and actor, and never a secret or a token."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.helpers import basic, bearer, fetch_token
from training.api.services import Services
from training.infra.logging import configure_logging


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("debug", stream=buffer)
    yield buffer
    configure_logging("info")


def parsed(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_no_secret_or_token_reaches_the_logs(
    client: TestClient[Any], operator_token: str, services: Services, log_lines: io.StringIO
) -> None:
    tenant = client.post(
        "/v1/tenants",
        json={"slug": f"log-{uuid.uuid4().hex[:8]}", "name": "Logged", "seat_limit": 3},
        headers=bearer(operator_token),
    ).json()
    created = client.post(
        f"/v1/tenants/{tenant['tenant_id']}/clients",
        json={"name": "HRIS", "scopes": ["tenant:read"]},
        headers=bearer(operator_token),
    ).json()
    secret = created["client_secret"]
    token_response = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(created["client_id"], secret)},
    )
    token = token_response.json()["access_token"]
    client.get(f"/v1/tenants/{tenant['tenant_id']}", headers=bearer(token))
    client.get("/v1/tenants", headers=bearer(token + "tampered"))
    client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created["client_id"],
            "client_secret": secret + "x",
        },
    )

    text = log_lines.getvalue()
    assert text, "nothing was logged"
    for needle in (
        secret,
        token,
        operator_token,
        token.split(".")[1],
        basic(created["client_id"], secret),
    ):
        assert needle not in text
    lines = parsed(log_lines)
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) >= 5
    assert all(line["request_id"] for line in requests)
    tenant_read = next(
        line for line in requests if line["path"] == f"/v1/tenants/{tenant['tenant_id']}"
    )
    assert tenant_read["tenant_id"] == tenant["tenant_id"]
    assert tenant_read["actor"] == f"client:{created['client_id']}"
    operator_lines = [
        line for line in requests if line["path"] == "/v1/tenants" and line["status"] == 201
    ]
    assert operator_lines[0]["actor"].startswith("operator:")


def test_the_request_id_is_echoed_and_reaches_the_events(
    client: TestClient[Any], operator_token: str, services: Services
) -> None:
    response = client.post(
        "/v1/tenants",
        json={"slug": f"rid-{uuid.uuid4().hex[:8]}", "name": "Traced", "seat_limit": 3},
        headers={**bearer(operator_token), "X-Request-ID": "trace-123"},
    )
    assert response.headers["x-request-id"] == "trace-123"
    [event] = services.app.events.get(uuid.UUID(response.json()["tenant_id"]))
    assert event.request_id == "trace-123"  # type: ignore[attr-defined]
    assert event.actor.startswith("operator:")  # type: ignore[attr-defined]
    error = client.get("/v1/tenants", headers={"X-Request-ID": "trace-456"})
    assert error.status_code == 401
    assert error.headers["x-request-id"] == "trace-456"
    assert error.json()["request_id"] == "trace-456"


def test_a_fetched_token_works(client: TestClient[Any], services: Services) -> None:
    from tests.helpers import register_operator

    token = fetch_token(client, register_operator(services))
    assert client.get("/v1/tenants", headers=bearer(token)).status_code == 200
