"""Helpers the API and end-to-end tests share."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey
from litestar.testing import TestClient

from training.bootstrap import Services
from training.core.access import Scope
from training.core.context import CommandContext
from training.tenancy.domain import OPERATOR_SCOPE
from training.tenancy.handlers import (
    IssuedCredentials,
    RegisterApiClient,
    RegisterTenant,
    UpdateTenant,
)

PROBLEM = "application/problem+json"


def system_context() -> CommandContext:
    return CommandContext.system("tests", request_id=f"test-{uuid.uuid4().hex[:8]}")


def register_operator(services: Services) -> IssuedCredentials:
    command = RegisterApiClient(None, "test operator", (OPERATOR_SCOPE,))
    issued: IssuedCredentials = services.bus.execute(system_context(), command).result
    return issued


def register_tenant_with_client(
    services: Services, slug: str, scopes: tuple[str, ...] = ("tenant:read",)
) -> tuple[uuid.UUID, IssuedCredentials]:
    tenant = services.bus.execute(system_context(), RegisterTenant(slug, slug.title(), 50)).result
    command = RegisterApiClient(tenant.tenant_id, f"{slug} integration", scopes)
    issued: IssuedCredentials = services.bus.execute(system_context(), command).result
    return tenant.tenant_id, issued


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def fetch_token(client: httpx.Client, credentials: IssuedCredentials) -> str:
    """An API client's access token (client credentials grant), from the test client or a
    live server's."""
    response = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class ForgedTokens:
    """Tokens that look right but must be refused."""

    expired: str
    wrong_audience: str
    wrong_signature: str
    wrong_issuer: str
    without_scopes: str  # correctly signed, but it carries no scope at all


def forge_tokens(services: Services, credentials: IssuedCredentials, issuer: str) -> ForgedTokens:
    signing_key = services.keys.current().signing_key
    stranger = RSAKey.generate_key(2048, parameters={"kid": signing_key.kid})
    now = int(time.time())
    base = {
        "iss": issuer,
        "aud": ["training-api"],
        "sub": credentials.client_id,
        "client_id": credentials.client_id,
        "scope": " ".join(credentials.scopes),
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    if credentials.tenant_id:
        base["tenant_id"] = str(credentials.tenant_id)
    header = {"alg": "RS256", "typ": "at+jwt", "kid": signing_key.kid}

    def sign(claims: dict[str, Any], key: RSAKey = signing_key) -> str:
        return jwt.encode(header, claims, key)

    return ForgedTokens(
        expired=sign({**base, "iat": now - 3600, "exp": now - 1800}),
        wrong_audience=sign({**base, "aud": ["someone-else"]}),
        wrong_signature=sign(base, stranger),
        wrong_issuer=sign({**base, "iss": "https://evil.example"}),
        without_scopes=sign({**base, "scope": ""}),
    )


def member_token(services: Services, tenant_id: uuid.UUID, member_id: uuid.UUID) -> str:
    """A person's access token, as the sign-in flow issues it: roles are read per request."""
    signing_key = services.keys.current().signing_key
    now = int(time.time())
    claims = {
        "iss": services.settings.issuer,
        "aud": [services.settings.audience],
        "sub": f"member:{member_id}",
        "member_id": str(member_id),
        "tenant_id": str(tenant_id),
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(
        {"alg": "RS256", "typ": "at+jwt", "kid": signing_key.kid}, claims, signing_key
    )


ALL_SCOPES = tuple(str(s) for s in Scope)


class TenantUnderTest:
    """A fresh tenant with an all-scopes client, for tests of tenant endpoints."""

    def __init__(self, client: TestClient[Any], services: Services, seat_limit: int = 50) -> None:
        self.client = client
        self.services = services
        slug = f"m-{uuid.uuid4().hex[:10]}"
        self.tenant_id, credentials = register_tenant_with_client(services, slug, ALL_SCOPES)
        self.token = fetch_token(client, credentials)
        if seat_limit != 50:
            services.bus.execute(
                system_context(), UpdateTenant(self.tenant_id, seat_limit=seat_limit)
            )
        # Reads wait until the views hold the tenant's setup (its default skills, say).
        self.setup_position = str(services.app.recorder.max_notification_id())

    def headers(self, position: str | None = None) -> dict[str, str]:
        headers = bearer(self.token)
        headers["Training-Position"] = position or self.setup_position
        return headers

    def add(self, external_id: str, **fields: Any) -> Any:
        body = {
            "external_id": external_id,
            "display_name": fields.pop("display_name", f"Person {external_id}"),
            "email": fields.pop("email", f"{external_id.lower()}@example.com"),
            "roles": fields.pop("roles", ["engineer"]),
            **fields,
        }
        return self.client.post("/v1/members", json=body, headers=self.headers())


# The operations only the platform operator may call (the guards in each context's http module): the
# isolation matrix and the fuzzing both need to know them.
OPERATOR_ONLY: tuple[str, ...] = (
    "listTenants",
    "registerTenant",
    "updateTenant",
    "suspendTenant",
    "reactivateTenant",
    "registerApiClient",
    "revokeApiClient",
)
