"""Log lines carry request_id, tenant_id and actor, and never a secret or a token."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from litestar.testing import TestClient
from oidc_provider_mock import run_server_in_thread

from tests.helpers import (
    TenantUnderTest,
    basic,
    bearer,
    fetch_token,
    member_token,
    register_tenant_with_client,
)
from training.bootstrap import Services
from training.identity.sign_in import runtime_of
from training.infra.logging import configure_logging
from training.infra.outbound import OutboundPolicy


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


def test_calendar_feed_secrets_never_reach_the_logs(
    client: TestClient[Any], services: Services, log_lines: io.StringIO
) -> None:
    tenant = TenantUnderTest(client, services)
    member = tenant.add(f"LOG-{uuid.uuid4().hex[:6]}").json()
    token = member_token(services, tenant.tenant_id, uuid.UUID(member["member_id"]))
    rotated = client.post("/v1/me/calendar", headers=bearer(token))
    assert rotated.status_code == 200, rotated.text
    url = urlsplit(rotated.json()["url"])
    secret = url.path.rsplit("/", 1)[1].removesuffix(".ics")
    assert client.get(url.path).status_code == 200
    # A wrong secret is refused and logged without itself.
    wrong = url.path.replace(secret, "guessed-" + secret[:12])
    assert client.get(wrong).status_code == 404

    text = log_lines.getvalue()
    assert secret not in text
    assert secret[:12] not in text
    feed_lines = [
        line for line in parsed(log_lines) if str(line.get("path", "")).startswith("/calendar/")
    ]
    assert len(feed_lines) == 2
    assert all(line["path"].endswith("/[redacted].ics") for line in feed_lines)


def test_scim_requests_leave_no_token_or_person_in_the_logs(
    client: TestClient[Any], services: Services, log_lines: io.StringIO
) -> None:
    tenant_id, credentials = register_tenant_with_client(
        services, f"log-scim-{uuid.uuid4().hex[:6]}", ("scim",)
    )
    token = fetch_token(client, credentials)
    headers = {**bearer(token), "content-type": "application/scim+json"}
    email = f"sam.scim.{uuid.uuid4().hex[:6]}@logged.example"
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
        "externalId": f"SCIM-{uuid.uuid4().hex[:6]}",
        "name": {"givenName": "Samwise", "familyName": "Scimfield"},
        "emails": [{"value": email, "primary": True}],
        "active": True,
    }
    created = client.post(f"/scim/v2/{tenant_id}/Users", json=user, headers=headers)
    assert created.status_code == 201, created.text
    found = client.get(f"/scim/v2/{tenant_id}/Users/{created.json()['id']}", headers=headers)
    assert found.status_code == 200, found.text
    client.get(f"/scim/v2/{tenant_id}/Users", headers=bearer(token + "x"))

    text = log_lines.getvalue()
    for needle in (token, token.split(".")[2], credentials.client_secret, email, "Scimfield"):
        assert needle not in text
    scim_lines = [
        line for line in parsed(log_lines) if str(line.get("path", "")).startswith("/scim/")
    ]
    assert len(scim_lines) >= 3


def test_sso_callback_query_strings_never_reach_the_logs(
    client: TestClient[Any], services: Services, log_lines: io.StringIO
) -> None:
    tenant = TenantUnderTest(client, services)
    slug = client.get(f"/v1/tenants/{tenant.tenant_id}", headers=tenant.headers()).json()["slug"]
    domain = f"{slug}.test"
    # The IdP runs on this machine over plain HTTP: what the development policy allows.
    providers = runtime_of(client.app.state, services.settings).providers
    policy, providers.policy = providers.policy, OutboundPolicy(development=True)
    try:
        query, session = sign_in_and_refuse(client, tenant, slug, domain)
    finally:
        providers.policy = policy

    text = log_lines.getvalue()
    for needle in (query["code"], query["state"], "Lee Private", f"idp-secret-{slug}"):
        assert needle not in text
    if session:
        assert session not in text
    callbacks = [
        line
        for line in parsed(log_lines)
        if line.get("event") == "request" and str(line.get("path", "")).endswith("/callback")
    ]
    assert len(callbacks) == 2
    assert all("?" not in line["path"] for line in callbacks)


def sign_in_and_refuse(
    client: TestClient[Any], tenant: TenantUnderTest, slug: str, domain: str
) -> tuple[dict[str, str], str]:
    """A sign-in through the IdP, then the IdP's refusal on the same callback."""
    with run_server_in_thread(port=0) as idp:
        configured = client.put(
            "/v1/sso",
            json={
                "issuer": f"http://localhost:{idp.server_port}",
                "client_id": f"training-{slug}",
                "client_secret": f"idp-secret-{slug}",
                "allowed_domains": [domain],
                "jit": True,
            },
            headers=tenant.headers(),
        )
        assert configured.status_code == 200, configured.text
        client.cookies.clear()
        login = client.get(f"/auth/{slug}/login", follow_redirects=False)
        assert login.status_code == 302, login.text
        approved = httpx.post(
            login.headers["location"], data={"sub": f"lee@{domain}"}, follow_redirects=False
        )
        callback = urlsplit(approved.headers["location"])
        query = dict(parse_qsl(callback.query))
        signed_in = client.get(f"{callback.path}?{callback.query}", follow_redirects=False)
        assert signed_in.status_code == 200, signed_in.text
        session = client.cookies.get("training_session") or ""
        # The IdP's refusal, as it sends it back.
        refused = client.get(
            callback.path,
            params={
                "error": "access_denied",
                "error_description": "Lee Private is not allowed",
                "state": query["state"],
            },
            follow_redirects=False,
        )
        assert refused.status_code < 500
    return query, session


def test_what_libraries_log_is_scrubbed(log_lines: io.StringIO) -> None:
    feed = "/calendar/6f1c2a9e-0c4b-4bd4-9d0e-1d2f3a4b5c6d/0d9f8e7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
    logging.getLogger("httpx").info(
        'HTTP Request: GET https://idp.example/cb?code=c0de-123&state=st4te-456&x=1 "200 OK"'
    )
    logging.getLogger("httpx").info(
        "HTTP Request: POST https://svc:pa55w0rd-789@idp.example/token body="
        "grant_type=authorization_code&code=c0de-abc&client_secret=s3cr3t-def"
    )
    logging.getLogger("uvicorn.error").warning(f"slow request GET {feed}/s3cretfeed-xyz.ics")
    logging.getLogger("litestar").error(
        "failed /auth/acme/callback?error=denied&error_description=Pat%20Person&session_state=ss-1"
    )
    logging.getLogger("authlib").info("headers {'cookie': 'training_session=sess-ion-xyz'}")
    logging.getLogger("training").info("token=abc-token-1 password=hunter2-pw")
    text = log_lines.getvalue()
    for needle in (
        "c0de-123",
        "st4te-456",
        "pa55w0rd-789",
        "c0de-abc",
        "s3cr3t-def",
        "s3cretfeed-xyz",
        "Pat%20Person",
        "ss-1",
        "sess-ion-xyz",
        "abc-token-1",
        "hunter2-pw",
    ):
        assert needle not in text, needle
    # What is not secret stays readable.
    assert "x=1" in text
    assert "error=denied" in text
    assert f"{feed}/[redacted].ics" in text
