"""Every protected operation of the OpenAPI refuses a missing or bad token with 401."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import TEST_ISSUER
from tests.helpers import PROBLEM, bearer, forge_tokens, register_tenant_with_client
from training.bootstrap import Services
from training.contracts import openapi_document

PUBLIC = {
    "/healthz",
    "/readyz",
    "/oauth2/token",
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
}


def protected_operations() -> list[tuple[str, str]]:
    operations = []
    for path, item in openapi_document()["paths"].items():
        if path in PUBLIC:
            continue
        for method in item:
            if method in {"get", "post", "put", "patch", "delete"}:
                operations.append((method, path))
    return sorted(operations)


def concrete(path: str) -> str:
    """Fills path parameters with values of the right shape."""
    parts = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            parts.append(str(uuid.uuid4()) if "id" in part and "client" not in part else "tc_x")
        else:
            parts.append(part)
    return "/".join(parts)


def test_the_matrix_covers_the_tenancy_api() -> None:
    paths = {path for _, path in protected_operations()}
    assert "/v1/tenants" in paths
    assert len(protected_operations()) >= 8


@pytest.mark.parametrize(("method", "path"), protected_operations())
def test_bad_credentials_get_401(
    client: TestClient[Any], services: Services, method: str, path: str
) -> None:
    _, credentials = register_tenant_with_client(services, f"m-{uuid.uuid4().hex[:8]}")
    forged = forge_tokens(services, credentials, TEST_ISSUER)
    url = concrete(path)
    for case, headers in {
        "no token": {},
        "expired": bearer(forged.expired),
        "wrong audience": bearer(forged.wrong_audience),
        "wrong signature": bearer(forged.wrong_signature),
    }.items():
        response = client.request(
            method.upper(), url, headers=headers, json={} if method in ("post", "patch") else None
        )
        assert response.status_code == 401, (case, response.text)
        assert response.headers["content-type"] == PROBLEM
