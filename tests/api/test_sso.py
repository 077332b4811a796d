"""Single sign-on against real OpenID Connect providers (two oidc-provider-mock servers).

Each tenant has its own IdP. The mock does not enforce PKCE, so the tests check that OUR
side refuses a verifier that does not match the challenge it sent.

The IdPs here are plain HTTP on loopback, which only the development outbound policy
allows: this module's app runs with it (the rest of the settings stay those of the tests,
so cookies are still Secure). ``test_sso_outbound.py`` tests the production policy.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from litestar.testing import TestClient
from oidc_provider_mock import run_server_in_thread

from tests.conftest import TEST_ISSUER
from tests.helpers import ALL_SCOPES, PROBLEM, bearer, fetch_token, register_tenant_with_client
from training.bootstrap import Services
from training.identity.handlers.sso import PENDING_COOKIE, PENDING_PURPOSE, SESSION_COOKIE
from training.identity.sign_in import runtime_of
from training.infra.outbound import OutboundPolicy


@pytest.fixture(scope="module", autouse=True)
def development_idps(client: TestClient[Any], services: Services) -> None:
    """IdPs on this machine, over plain HTTP: what the development policy allows."""
    runtime_of(client.app.state, services.settings).providers.policy = OutboundPolicy(
        development=True
    )


@pytest.fixture(scope="module")
def idp_a() -> Iterator[str]:
    with run_server_in_thread(port=0) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def idp_b() -> Iterator[str]:
    with run_server_in_thread(port=0) as server:
        yield f"http://localhost:{server.server_port}"


class Tenant:
    def __init__(self, client: TestClient[Any], services: Services, label: str) -> None:
        self.client = client
        self.slug = f"{label}-{uuid.uuid4().hex[:8]}"
        self.tenant_id, credentials = register_tenant_with_client(services, self.slug, ALL_SCOPES)
        self.token = fetch_token(client, credentials)
        self.domain = f"{self.slug}.test"

    def configure(self, issuer: str, **fields: Any) -> httpx.Response:
        body = {
            "issuer": issuer,
            "client_id": f"training-{self.slug}",
            "client_secret": f"s3cret-{self.slug}",
            "allowed_domains": [self.domain],
            "jit": False,
            **fields,
        }
        response = self.client.put("/v1/sso", json=body, headers=bearer(self.token))
        assert response.status_code == 200, response.text
        return response

    def add_member(self, local: str, roles: tuple[str, ...] = ("engineer",)) -> str:
        body = {
            "external_id": f"{local}-{uuid.uuid4().hex[:6]}",
            "display_name": local.title(),
            "email": f"{local}@{self.domain}",
            "roles": list(roles),
        }
        response = self.client.post("/v1/members", json=body, headers=bearer(self.token))
        assert response.status_code == 201, response.text
        member_id = str(response.json()["member_id"])
        # Wait until the members view holds them, so later reads without a position see them.
        headers = {**bearer(self.token), "Training-Position": response.headers["Training-Position"]}
        assert self.client.get(f"/v1/members/{member_id}", headers=headers).status_code == 200
        return member_id


@pytest.fixture(scope="module")
def tenants(
    client: TestClient[Any], services: Services, idp_a: str, idp_b: str, development_idps: None
) -> tuple[Tenant, Tenant]:
    a = Tenant(client, services, "acme")
    b = Tenant(client, services, "globex")
    a.configure(idp_a)
    b.configure(idp_b, jit=True, group_roles={"training-admins": ["tenant_admin"]})
    return a, b


def start(client: TestClient[Any], slug: str) -> str:
    client.cookies.clear()
    response = client.get(f"/auth/{slug}/login", follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def approve(authorize_url: str, sub: str) -> str:
    """Posts the mock's approval form; returns our callback path with code and state."""
    answer = httpx.post(authorize_url, data={"sub": sub}, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    callback = urlsplit(answer.headers["location"])
    assert f"{callback.scheme}://{callback.netloc}" == TEST_ISSUER
    return f"{callback.path}?{callback.query}"


def sign_in(client: TestClient[Any], slug: str, sub: str) -> httpx.Response:
    return client.get(approve(start(client, slug), sub), follow_redirects=False)


def tamper_pending(client: TestClient[Any], services: Services, **changes: str) -> None:
    runtime = runtime_of(client.app.state, services.settings)
    pending = runtime.cookies.open(PENDING_PURPOSE, client.cookies[PENDING_COOKIE])
    assert pending is not None
    pending.update(changes)
    pending.pop("exp")
    sealed = runtime.cookies.seal(PENDING_PURPOSE, pending, 600)
    client.cookies.clear()
    client.cookies.set(PENDING_COOKIE, sealed, domain="training.test", path="/auth/")


def test_the_login_redirects_with_pkce_state_and_nonce(
    client: TestClient[Any], tenants: tuple[Tenant, Tenant], idp_a: str
) -> None:
    a, _ = tenants
    location = start(client, a.slug)
    url = httpx.URL(location)
    assert str(url).startswith(f"{idp_a}/oauth2/authorize")
    params = url.params
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"]
    assert params["state"]
    assert params["nonce"]
    assert params["redirect_uri"] == f"{TEST_ISSUER}/auth/{a.slug}/callback"
    assert params["client_id"] == f"training-{a.slug}"
    assert "openid" in params["scope"].split()


def test_full_sign_in_for_both_tenants_starts_a_member_session(
    client: TestClient[Any], tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    alice = a.add_member("alice")
    bob = b.add_member("bob")
    for tenant, local, member_id in ((a, "alice", alice), (b, "bob", bob)):
        response = sign_in(client, tenant.slug, f"{local}@{tenant.domain}")
        assert response.status_code == 200, response.text
        assert response.json()["member_id"] == member_id
        assert response.json()["tenant_id"] == str(tenant.tenant_id)
        cookie = next(
            h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
        )
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert "secure" in flags  # the tests run with environment "test", not development
        assert "path=/" in flags
        # The session cookie alone authenticates the person, like a member's token.
        me = client.get(f"/v1/members/{member_id}")
        assert me.status_code == 200, me.text
        assert me.json()["member_id"] == member_id
    # Bob's session does not reach Alice's tenant.
    assert client.get(f"/v1/members/{alice}").status_code in (403, 404)
    # Nor does an altered cookie authenticate anyone.
    client.cookies.set(SESSION_COOKIE, "forged", domain="training.test", path="/")
    assert client.get(f"/v1/members/{bob}").status_code == 401


def test_a_browser_lands_on_the_page_it_started_from_and_only_on_this_site(
    client: TestClient[Any], tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    a.add_member("nora")
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for asked, landed in (("/track?tab=next", "/track?tab=next"), ("//evil.example/x", "/")):
        client.cookies.clear()
        login = client.get(f"/auth/{a.slug}/login", params={"next": asked}, follow_redirects=False)
        assert login.status_code == 302, login.text
        callback = approve(login.headers["location"], f"nora@{a.domain}")
        response = client.get(callback, headers=browser, follow_redirects=False)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == landed
        assert any(h.startswith(SESSION_COOKIE) for h in response.headers.get_list("set-cookie"))


def test_a_callback_replayed_under_the_other_tenant_is_refused(
    client: TestClient[Any], tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    a.add_member("carol")
    callback = approve(start(client, a.slug), f"carol@{a.domain}")
    replayed = callback.replace(f"/auth/{a.slug}/", f"/auth/{b.slug}/")
    response = client.get(replayed, follow_redirects=False)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert SESSION_COOKIE not in response.cookies


def test_a_wrong_state_is_refused(client: TestClient[Any], tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    a.add_member("dave")
    callback = approve(start(client, a.slug), f"dave@{a.domain}")
    path, _, query = callback.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    params["state"] = "not-the-state"
    response = client.get(path, params=params, follow_redirects=False)
    assert response.status_code == 401
    assert "state" in response.json()["detail"]
    # Without the sign-in cookie there is nothing to compare with either.
    client.cookies.clear()
    assert client.get(callback, follow_redirects=False).status_code == 401


def test_a_wrong_nonce_is_refused(
    client: TestClient[Any], services: Services, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    a.add_member("erin")
    callback = approve(start(client, a.slug), f"erin@{a.domain}")
    # The IdP put the nonce of the real request in the ID token; we now expect another.
    tamper_pending(client, services, nonce="a-nonce-we-never-sent")
    response = client.get(callback, follow_redirects=False)
    assert response.status_code == 401
    assert "nonce" in response.json()["detail"]


def test_a_wrong_pkce_verifier_is_refused_on_our_side(
    client: TestClient[Any], services: Services, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    a.add_member("frank")
    callback = approve(start(client, a.slug), f"frank@{a.domain}")
    tamper_pending(client, services, verifier="x" * 64)
    response = client.get(callback, follow_redirects=False)
    assert response.status_code == 401
    assert "PKCE" in response.json()["detail"]


def test_an_unknown_email_without_jit_is_forbidden(
    client: TestClient[Any], tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    response = sign_in(client, a.slug, f"nobody@{a.domain}")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)


def test_a_disallowed_email_domain_is_forbidden(
    client: TestClient[Any], tenants: tuple[Tenant, Tenant]
) -> None:
    _, b = tenants  # JIT is on for b: the domain check comes first
    response = sign_in(client, b.slug, "mallory@evil.test")
    assert response.status_code == 403
    assert "domain" in response.json()["detail"]


def test_jit_provisions_a_member_with_roles_from_groups(
    client: TestClient[Any], services: Services, tenants: tuple[Tenant, Tenant], idp_b: str
) -> None:
    def caught_up() -> dict[str, str]:
        # Reads wait until the members view holds the member just provisioned.
        return {"Training-Position": str(services.app.recorder.max_notification_id())}

    _, b = tenants
    sub = f"gina@{b.domain}"
    claims = {"email": sub, "name": "Gina", "groups": ["training-admins", "other"]}
    assert httpx.put(f"{idp_b}/users/{sub}", json=claims).status_code == 204
    response = sign_in(client, b.slug, sub)
    assert response.status_code == 200, response.text
    member_id = response.json()["member_id"]
    me = client.get(f"/v1/members/{member_id}", headers=caught_up())
    assert me.status_code == 200, me.text
    assert me.json()["roles"] == ["tenant_admin"]
    # Without a mapped group the default role is engineer; a second sign-in finds the member.
    plain = f"hank@{b.domain}"
    first = sign_in(client, b.slug, plain)
    assert first.status_code == 200, first.text
    plain_member = client.get(f"/v1/members/{first.json()['member_id']}", headers=caught_up())
    assert plain_member.status_code == 200, plain_member.text
    assert plain_member.json()["roles"] == ["engineer"]


def test_logout_clears_the_session_and_redirects_to_the_idp(
    client: TestClient[Any], tenants: tuple[Tenant, Tenant], idp_a: str
) -> None:
    a, _ = tenants
    a.add_member("ivan")
    assert sign_in(client, a.slug, f"ivan@{a.domain}").status_code == 200
    response = client.post(f"/auth/{a.slug}/logout", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{idp_a}/oauth2/end_session")
    cleared = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)
    )
    assert "max-age=0" in cleared.lower() or "expires=" in cleared.lower()


def test_the_configuration_never_shows_the_secret(
    client: TestClient[Any], services: Services, tenants: tuple[Tenant, Tenant]
) -> None:
    a, _ = tenants
    response = client.get("/v1/sso", headers=bearer(a.token))
    assert response.status_code == 200
    body = response.json()
    assert "client_secret" not in body
    assert f"s3cret-{a.slug}" not in response.text
    assert body["redirect_uri"] == f"{TEST_ISSUER}/auth/{a.slug}/callback"
    # Nor is it anywhere in the stored events.
    for notification in services.app.recorder.select_notifications(1, 100000):
        assert f"s3cret-{a.slug}".encode() not in notification.state


def test_a_configuration_with_a_nul_character_is_refused(
    client: TestClient[Any], services: Services, idp_a: str
) -> None:
    # PostgreSQL refuses NUL in text; the connection would have stopped the views.
    tenant = Tenant(client, services, "nul")
    before = services.app.recorder.max_notification_id()
    base = {
        "issuer": idp_a,
        "client_id": "training",
        "client_secret": "s3cret",
        "allowed_domains": [tenant.domain],
    }
    for field, value in (
        ("client_id", "train\x00ing"),
        ("allowed_domains", ["a\x00.test"]),
        ("group_roles", {"admins\x00": ["tenant_admin"]}),
    ):
        body = {**base, field: value}
        refused = client.put("/v1/sso", json=body, headers=bearer(tenant.token))
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == PROBLEM
    assert services.app.recorder.max_notification_id() == before


# ------------------------------------------------------------------ bearer JWTs from an IdP


class TinyIssuers:
    """Serves discovery and a JWKS for several issuers (``/{name}``), from one port."""

    def __init__(self) -> None:
        self.keys: dict[str, list[RSAKey]] = {}
        issuers = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name, _, rest = self.path.strip("/").partition("/")
                base = issuers.url(name)
                if name not in issuers.keys:
                    body: dict[str, Any] | None = None
                elif rest == ".well-known/openid-configuration":
                    body = {
                        "issuer": base,
                        "authorization_endpoint": f"{base}/authorize",
                        "token_endpoint": f"{base}/token",
                        "jwks_uri": f"{base}/jwks",
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }
                elif rest == "jwks":
                    body = KeySet(issuers.keys[name]).as_dict(private=False)
                else:
                    body = None
                payload = json.dumps(body).encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/{name}"

    def add(self, name: str) -> RSAKey:
        key = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex})
        self.keys.setdefault(name, []).append(key)
        return key

    def mint(self, name: str, key: RSAKey, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url(name), "iat": now, "exp": now + 300, **claims}
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "at+jwt"}, body, key)


@pytest.fixture(scope="module")
def issuers() -> Iterator[TinyIssuers]:
    served = TinyIssuers()
    try:
        yield served
    finally:
        served.server.shutdown()


def test_bearer_jwts_from_the_tenants_idp(
    client: TestClient[Any], services: Services, issuers: TinyIssuers
) -> None:
    c = Tenant(client, services, "initech")
    d = Tenant(client, services, "umbrella")
    key_c = issuers.add("c")
    key_d = issuers.add("d")
    c.configure(issuers.url("c"), audience="api://initech-training")
    d.configure(issuers.url("d"))
    carol = c.add_member("carol")
    dora = d.add_member("dora")
    client.cookies.clear()
    aud_c = "api://initech-training"

    token = issuers.mint("c", key_c, sub="x1", aud=aud_c, email=f"carol@{c.domain}")
    response = client.get(f"/v1/members/{carol}", headers=bearer(token))
    assert response.status_code == 200, response.text

    # The email (or an email sub) is enough.
    token = issuers.mint("c", key_c, sub=f"carol@{c.domain}", aud=aud_c)
    assert client.get(f"/v1/members/{carol}", headers=bearer(token)).status_code == 200

    # Tenant C's issuer cannot vouch for a person of tenant D ...
    token = issuers.mint("c", key_c, sub="x2", aud=aud_c, email=f"dora@{d.domain}")
    assert client.get(f"/v1/members/{dora}", headers=bearer(token)).status_code == 401
    # ... nor can a token for D's audience signed by C's key pass as D's.
    token = issuers.mint("c", key_c, sub="x3", aud=f"training-{d.slug}", email=f"dora@{d.domain}")
    assert client.get(f"/v1/members/{dora}", headers=bearer(token)).status_code == 401
    forged = jwt.encode(
        {"alg": "RS256", "kid": key_c.kid},
        {
            "iss": issuers.url("d"),
            "aud": f"training-{d.slug}",
            "sub": "x4",
            "email": f"dora@{d.domain}",
            "exp": int(time.time()) + 300,
        },
        key_c,
    )
    assert client.get(f"/v1/members/{dora}", headers=bearer(forged)).status_code == 401
    # D's own token works for D.
    token = issuers.mint("d", key_d, sub="x5", aud=f"training-{d.slug}", email=f"dora@{d.domain}")
    assert client.get(f"/v1/members/{dora}", headers=bearer(token)).status_code == 200

    # Wrong audience, expired, unknown member, unknown issuer: refused.
    for bad in (
        issuers.mint("c", key_c, sub="x", aud="someone-else", email=f"carol@{c.domain}"),
        issuers.mint("c", key_c, sub="x", aud=aud_c, email=f"carol@{c.domain}", exp=1),
        issuers.mint("c", key_c, sub="x", aud=aud_c, email=f"nobody@{c.domain}"),
        issuers.mint("nowhere", key_c, sub="x", aud=aud_c, email=f"carol@{c.domain}"),
    ):
        assert client.get(f"/v1/members/{carol}", headers=bearer(bad)).status_code == 401

    # No email claim (Entra ID's access tokens by default): the directory's object id finds
    # the member whose external id it is (SCIM provisioning with externalId = oid).
    carol_key = client.get(f"/v1/members/{carol}", headers=bearer(c.token)).json()["external_id"]
    token = issuers.mint("c", key_c, sub="pairwise-x7", aud=aud_c, oid=carol_key)
    assert client.get(f"/v1/members/{carol}", headers=bearer(token)).status_code == 200
    token = issuers.mint("c", key_c, sub=carol_key, aud=aud_c)
    assert client.get(f"/v1/members/{carol}", headers=bearer(token)).status_code == 200
    # ... but only within the issuer's own tenant, and never an unknown id.
    dora_key = client.get(f"/v1/members/{dora}", headers=bearer(d.token)).json()["external_id"]
    for bad in (
        issuers.mint("c", key_c, sub="pairwise-x8", aud=aud_c, oid=dora_key),
        issuers.mint("c", key_c, sub="pairwise-x9", aud=aud_c, oid="no-such-person"),
    ):
        refused = client.get(f"/v1/members/{carol}", headers=bearer(bad))
        assert refused.status_code == 401
        assert "oid" in refused.json()["detail"]

    # A key rotated in at the IdP is found by refetching the JWKS once.
    rotated = issuers.add("c")
    token = issuers.mint("c", rotated, sub="x6", aud=aud_c, email=f"carol@{c.domain}")
    assert client.get(f"/v1/members/{carol}", headers=bearer(token)).status_code == 200
