"""No server-side request forgery through single sign-on (the production outbound policy).

A tenant admin chooses the issuer; the issuer's discovery document chooses the rest. An
unauthenticated caller can make the service talk to that issuer by sending a JWT naming
it. So, outside development: https only, public addresses only (checked on the address
connected to), endpoints on the issuer's host unless the admin lists others, no redirects,
a size cap and a deadline; and the answer to the caller never says what the IdP answered.

The "public" IdP is a real HTTPS server on 127.0.0.1 reached through a resolver the test
controls (``tests/stand_in_idp.py``); other names resolve to loopback or private addresses.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey
from litestar.testing import TestClient

from tests.helpers import ALL_SCOPES, PROBLEM, bearer, fetch_token, register_tenant_with_client
from tests.stand_in_idp import (
    IDP_HOST,
    INTRANET_HOST,
    LOOPBACK_HOST,
    OTHER_HOST,
    Reply,
    StandInIssuer,
    StandInServer,
    TestAuthority,
    mint,
    running,
    stand_in_policy,
    standard_dns,
)
from training.bootstrap import Services
from training.identity.http.sso import IDP_UNAVAILABLE
from training.identity.oidc import UNVERIFIABLE
from training.identity.sign_in import runtime_of
from training.infra.logging import configure_logging

SIGN_IN_FAILED = "the sign-in could not be completed with the tenant's identity provider"
# What a detail must never contain: the IdP's hosts, addresses, or what it answered.
REMOTE_WORDS = (IDP_HOST, OTHER_HOST, INTRANET_HOST, LOOPBACK_HOST, "127.0.0.1", "10.20.30.40")


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> TestAuthority:
    return TestAuthority(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def server(authority: TestAuthority) -> Iterator[StandInServer]:
    yield from running(StandInServer(authority.server_context()))


@pytest.fixture(scope="module", autouse=True)
def production_policy(
    client: TestClient[Any], services: Services, authority: TestAuthority
) -> None:
    """The policy outside development, with the test's resolver and trust, a 1 s deadline."""
    runtime = runtime_of(client.app.state, services.settings)
    runtime.providers.policy = stand_in_policy(authority, standard_dns(), total_timeout=1.0)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    configure_logging("debug", stream=buffer)
    yield buffer
    configure_logging("info")


def logged(buffer: io.StringIO, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == event]


class SsoTenant:
    def __init__(self, client: TestClient[Any], services: Services) -> None:
        self.client = client
        self.services = services
        self.slug = f"ssrf-{uuid.uuid4().hex[:8]}"
        self.tenant_id, credentials = register_tenant_with_client(services, self.slug, ALL_SCOPES)
        self.token = fetch_token(client, credentials)
        self.client_id = f"training-{self.slug}"

    def put(self, issuer: str, **fields: Any) -> httpx.Response:
        body = {
            "issuer": issuer,
            "client_id": self.client_id,
            "client_secret": "s3cret",
            "allowed_domains": ["example.com"],
            **fields,
        }
        self.client.cookies.clear()
        return self.client.put("/v1/sso", json=body, headers=bearer(self.token))

    def configure(self, issuer: str, **fields: Any) -> None:
        response = self.put(issuer, **fields)
        assert response.status_code == 200, response.text

    def add_member(self, local: str) -> str:
        body = {
            "external_id": f"{local}-{uuid.uuid4().hex[:6]}",
            "display_name": local.title(),
            "email": f"{local}@example.com",
            "roles": ["engineer"],
        }
        response = self.client.post("/v1/members", json=body, headers=bearer(self.token))
        assert response.status_code == 201, response.text
        member_id = str(response.json()["member_id"])
        headers = {**bearer(self.token), "Training-Position": response.headers["Training-Position"]}
        assert self.client.get(f"/v1/members/{member_id}", headers=headers).status_code == 200
        return member_id


@pytest.fixture
def tenant(client: TestClient[Any], services: Services) -> SsoTenant:
    return SsoTenant(client, services)


def call_with(client: TestClient[Any], token: str, path: str = "/v1/members") -> httpx.Response:
    client.cookies.clear()
    return client.get(path, headers=bearer(token))


def assert_told_nothing(response: httpx.Response, detail: str, status: int = 401) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["detail"] == detail
    for word in REMOTE_WORDS:
        assert word not in response.text


def test_an_issuer_that_is_not_https_on_a_public_host_is_refused_when_configured(
    tenant: SsoTenant, services: Services
) -> None:
    before = services.app.recorder.max_notification_id()
    for issuer in (
        "http://idp.example.com/oauth2",
        "https://127.0.0.1:8443/realms/x",
        "https://169.254.169.254/latest",
        "https://localhost/realms/x",
        "https://[::1]/realms/x",
    ):
        refused = tenant.put(issuer)
        assert refused.status_code == 422, (issuer, refused.text)
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert [e["field"] for e in refused.json()["errors"]] == ["issuer"]
    refused = tenant.put(f"https://{IDP_HOST}/x", allowed_hosts=["10.0.0.1"])
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["allowed_hosts"]
    assert services.app.recorder.max_notification_id() == before
    # A public https issuer with a listed host is kept, and shown.
    tenant.configure(f"https://{IDP_HOST}/x", allowed_hosts=["Keys.Example.test"])
    shown = tenant.client.get("/v1/sso", headers=bearer(tenant.token)).json()
    assert shown["allowed_hosts"] == ["keys.example.test"]


def test_an_issuer_resolving_to_loopback_is_never_contacted(
    client: TestClient[Any], tenant: SsoTenant, server: StandInServer, log_lines: io.StringIO
) -> None:
    issuer = StandInIssuer(server, "loopback", host=LOOPBACK_HOST)
    tenant.configure(issuer.url)
    token = issuer.mint(sub="x", aud=tenant.client_id, email="someone@example.com")
    assert_told_nothing(call_with(client, token), UNVERIFIABLE)
    assert issuer.hits() == []
    # The log says what happened, for whom, and never the token.
    [line] = logged(log_lines, "identity_provider.refused")
    assert line["issuer"] == issuer.url
    assert line["tenant_ids"] == [str(tenant.tenant_id)]
    assert "not a public address" in line["reason"]
    assert token not in log_lines.getvalue()


def test_an_issuer_resolving_to_a_private_address_is_never_contacted(
    client: TestClient[Any], tenant: SsoTenant, log_lines: io.StringIO
) -> None:
    issuer = f"https://{INTRANET_HOST}/realms/hr"
    tenant.configure(issuer)
    key = RSAKey.generate_key(2048, parameters={"kid": "hr"})
    token = mint(issuer, key, sub="x", aud=tenant.client_id, email="a@example.com")
    assert_told_nothing(call_with(client, token), UNVERIFIABLE)
    [line] = logged(log_lines, "identity_provider.refused")
    assert "10.20.30.40" in line["reason"]


def test_a_redirect_to_a_private_address_is_not_followed(
    client: TestClient[Any], tenant: SsoTenant, server: StandInServer
) -> None:
    issuer = StandInIssuer(server, "redirecting")
    target = server.url(LOOPBACK_HOST, "/metadata/.well-known/openid-configuration")
    issuer.serve(
        "/redirecting/.well-known/openid-configuration",
        lambda: Reply(302, {"Location": target}),
    )
    server.routes[(LOOPBACK_HOST, "/metadata/.well-known/openid-configuration")] = lambda: (
        Reply.json(issuer.document)
    )
    tenant.configure(issuer.url)
    token = issuer.mint(sub="x", aud=tenant.client_id, email="a@example.com")
    assert_told_nothing(call_with(client, token), UNVERIFIABLE)
    assert len(issuer.hits()) == 1
    assert server.hits_on(LOOPBACK_HOST) == []


def test_endpoints_on_another_host_need_that_host_listed(
    client: TestClient[Any], tenant: SsoTenant, server: StandInServer
) -> None:
    issuer = StandInIssuer(server, "split")
    issuer.document["jwks_uri"] = server.url(OTHER_HOST, "/split-keys")
    issuer.serve("/split-keys", lambda: Reply.json(issuer.jwks()), host=OTHER_HOST)
    tenant.configure(issuer.url)
    member_id = tenant.add_member("carol")
    token = issuer.mint(sub="c1", aud=tenant.client_id, email="carol@example.com")
    assert_told_nothing(call_with(client, token, f"/v1/members/{member_id}"), UNVERIFIABLE)
    assert server.hits_on(OTHER_HOST) == []
    # Once the tenant admin lists the host, the keys are fetched from it.
    tenant.configure(issuer.url, allowed_hosts=[OTHER_HOST])
    accepted = call_with(client, token, f"/v1/members/{member_id}")
    assert accepted.status_code == 200, accepted.text
    assert len(server.hits_on(OTHER_HOST)) == 1


def test_an_oversized_jwks_is_refused(
    client: TestClient[Any], tenant: SsoTenant, server: StandInServer, log_lines: io.StringIO
) -> None:
    issuer = StandInIssuer(server, "oversized")
    padding = {"keys": issuer.jwks()["keys"], "padding": "x" * 300_000}
    issuer.serve("/oversized/jwks", lambda: Reply.json(padding))
    tenant.configure(issuer.url)
    token = issuer.mint(sub="x", aud=tenant.client_id, email="a@example.com")
    assert_told_nothing(call_with(client, token), UNVERIFIABLE)
    [line] = logged(log_lines, "identity_provider.refused")
    assert line["step"] == "jwks"
    assert "over 262144" in line["reason"]


def test_a_slow_jwks_is_given_up(
    client: TestClient[Any], tenant: SsoTenant, server: StandInServer, log_lines: io.StringIO
) -> None:
    issuer = StandInIssuer(server, "slow")
    # A byte every 0.2 s: never idle long enough for a read timeout, never done in time.
    issuer.serve("/slow/jwks", lambda: Reply(200, {}, [b"{"] + [b" "] * 30, pause=0.2))
    tenant.configure(issuer.url)
    token = issuer.mint(sub="x", aud=tenant.client_id, email="a@example.com")
    assert_told_nothing(call_with(client, token), UNVERIFIABLE)
    [line] = logged(log_lines, "identity_provider.refused")
    assert "no whole answer within 1 s" in line["reason"]


def test_what_the_idp_answered_is_never_echoed(
    client: TestClient[Any], tenant: SsoTenant, server: StandInServer, log_lines: io.StringIO
) -> None:
    issuer = StandInIssuer(server, "broken")
    issuer.serve(
        "/broken/.well-known/openid-configuration",
        lambda: Reply(500, {}, [b"Internal Server Error at db.internal:5432"]),
    )
    tenant.configure(issuer.url)
    token = issuer.mint(sub="x", aud=tenant.client_id, email="a@example.com")
    answer = call_with(client, token)
    assert_told_nothing(answer, UNVERIFIABLE)
    assert "5432" not in answer.text
    assert "Internal Server Error" not in answer.text
    [line] = logged(log_lines, "identity_provider.refused")
    assert "answered 500" in line["reason"]
    # Asked again at once, the broken IdP is not contacted again (it failed a moment ago).
    assert_told_nothing(call_with(client, token), UNVERIFIABLE)
    assert len(issuer.hits()) == 1


def test_sign_in_tells_nothing_about_an_unreachable_idp(
    client: TestClient[Any], tenant: SsoTenant, server: StandInServer
) -> None:
    issuer = StandInIssuer(server, "down")
    issuer.serve("/down/.well-known/openid-configuration", lambda: Reply(503, {}, [b"down"]))
    tenant.configure(issuer.url)
    client.cookies.clear()
    answer = client.get(f"/auth/{tenant.slug}/login", follow_redirects=False)
    assert_told_nothing(answer, IDP_UNAVAILABLE, status=502)


def test_a_failed_code_exchange_tells_nothing_about_the_idp(
    client: TestClient[Any], tenant: SsoTenant, server: StandInServer, log_lines: io.StringIO
) -> None:
    issuer = StandInIssuer(server, "exchange")
    issuer.serve(
        "/exchange/token",
        lambda: Reply.json(
            {"error": "invalid_grant", "error_description": "code unknown at 10.0.0.7"}, 400
        ),
    )
    tenant.configure(issuer.url)
    client.cookies.clear()
    login = client.get(f"/auth/{tenant.slug}/login", follow_redirects=False)
    assert login.status_code == 302, login.text
    location = urlsplit(login.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{issuer.url}/authorize"
    state = parse_qs(location.query)["state"][0]
    callback = client.get(
        f"/auth/{tenant.slug}/callback",
        params={"code": "the-code", "state": state},
        follow_redirects=False,
    )
    assert_told_nothing(callback, SIGN_IN_FAILED)
    assert "10.0.0.7" not in callback.text
    # The exchange went out as it should: a POST with the client's credentials and PKCE.
    [(method, _, _)] = [hit for hit in issuer.hits() if hit[2].endswith("/token")]
    assert method == "POST"
    sent = parse_qs(
        server.bodies[server.hits.index(("POST", IDP_HOST, "/exchange/token"))].decode()
    )
    assert sent["grant_type"] == ["authorization_code"]
    assert sent["code"] == ["the-code"]
    assert sent["code_verifier"][0]
    [line] = logged(log_lines, "identity_provider.refused")
    assert (line["step"], line["tenant_ids"]) == ("token", [str(tenant.tenant_id)])
    assert line["reason"] == "the token endpoint answered 400 invalid_grant"
    # The service logs neither the client secret nor the code (the test's own client,
    # logger "httpx", logs the URL it calls).
    service_lines = [line for line in log_lines.getvalue().splitlines() if '"httpx"' not in line]
    assert not [line for line in service_lines if "s3cret" in line or "the-code" in line]


def test_sign_out_never_sends_people_to_an_unlisted_host(
    client: TestClient[Any], tenant: SsoTenant, server: StandInServer
) -> None:
    issuer = StandInIssuer(server, "signout")
    issuer.document["end_session_endpoint"] = f"https://{OTHER_HOST}/signout/bye"
    tenant.configure(issuer.url)
    client.cookies.clear()
    assert client.post(f"/auth/{tenant.slug}/logout", follow_redirects=False).status_code == 204
    tenant.configure(issuer.url, allowed_hosts=[OTHER_HOST])
    client.cookies.clear()
    listed = client.post(f"/auth/{tenant.slug}/logout", follow_redirects=False)
    assert listed.status_code == 303
    assert listed.headers["location"].startswith(f"https://{OTHER_HOST}/signout/bye?")
