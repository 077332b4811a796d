"""The SSO connection aggregate, the IdP caches and the sealed cookies."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import httpx
import pytest
from joserfc.jwk import KeySet, RSAKey

from training.application.mapper import MsgspecMapper, PassThroughTranscoder
from training.domain.access import Role
from training.domain.errors import RuleViolated
from training.domain.sso import SsoConnection
from training.infra.oidc import (
    CookieSealer,
    OidcProviders,
    open_client_secret,
    seal_client_secret,
)
from training.infra.secretbox import SecretBox

TENANT = uuid.uuid4()
SECRET = "the-very-secret-client-secret"


def configure(box: SecretBox, **fields: Any) -> SsoConnection:
    values: dict[str, Any] = {
        "tenant_id": TENANT,
        "issuer": "https://login.example.com/tenant/v2.0/",
        "client_id": "training",
        "sealed_secret": seal_client_secret(box, TENANT, SECRET),
        "allowed_domains": ("Example.COM", "@corp.example.com"),
        "jit": True,
        "group_roles": {"admins": ("tenant_admin",), "hr": ("hr_manager", "manager")},
    }
    values.update(fields)
    return SsoConnection.configure(**values)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(os.urandom(32))


def test_the_secret_is_never_in_an_event(box: SecretBox) -> None:
    connection = configure(box)
    connection.reconfigure(
        issuer=connection.issuer,
        client_id="training-2",
        sealed_secret=seal_client_secret(box, TENANT, SECRET + "-2"),
        allowed_domains=connection.allowed_domains,
        jit=False,
        group_roles={},
    )
    mapper = MsgspecMapper(transcoder=PassThroughTranscoder())
    events = connection.collect_events()
    assert [type(e).__name__ for e in events] == ["Configured", "Reconfigured"]
    for event in events:
        stored = mapper.to_stored_event(event)
        assert SECRET.encode() not in stored.state
        assert SECRET not in repr(event)
    assert open_client_secret(box, TENANT, connection.sealed_secret) == SECRET + "-2"
    # Sealed for one tenant, it does not open for another.
    with pytest.raises(Exception):  # noqa: B017 (cryptography's InvalidTag)
        open_client_secret(box, uuid.uuid4(), connection.sealed_secret)


def test_configuration_is_cleaned(box: SecretBox) -> None:
    connection = configure(box)
    assert connection.issuer == "https://login.example.com/tenant/v2.0"
    assert connection.allowed_domains == ("corp.example.com", "example.com")
    assert connection.group_roles == {"admins": ("tenant_admin",), "hr": ("hr_manager", "manager")}
    assert connection.token_audience == "training"
    assert configure(box, audience="api://x").token_audience == "api://x"
    assert connection.id == SsoConnection.create_id(TENANT)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"issuer": "http://idp.example.com"}, "issuer"),  # plain HTTP off this machine
        ({"issuer": "not a url"}, "issuer"),
        ({"issuer": "https://idp.example.com/?x=1"}, "issuer"),
        ({"client_id": "  "}, "client_id"),
        ({"sealed_secret": ""}, "client_secret"),
        ({"allowed_domains": ()}, "allowed_domains"),
        ({"allowed_domains": ("not_a domain",)}, "allowed_domains"),
        ({"group_roles": {"admins": ("root",)}}, "group_roles"),
        ({"group_roles": {"admins": ()}}, "group_roles"),
    ],
)
def test_invalid_configuration_is_refused(
    box: SecretBox, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(RuleViolated) as caught:
        configure(box, **fields)
    assert caught.value.field == field


def test_local_http_issuers_are_allowed_for_development(box: SecretBox) -> None:
    assert configure(box, issuer="http://localhost:9411").issuer == "http://localhost:9411"
    assert configure(box, issuer="http://127.0.0.1:1/x").issuer == "http://127.0.0.1:1/x"


def test_emails_and_roles(box: SecretBox) -> None:
    connection = configure(box)
    assert connection.allows_email("Ann@Example.com")
    assert connection.allows_email("bo@corp.example.com")
    assert not connection.allows_email("eve@evil.example.com")
    assert not connection.allows_email("example.com")
    assert connection.roles_for(["hr", "unknown"]) == (Role.HR_MANAGER, Role.MANAGER)
    assert connection.roles_for([]) == (Role.ENGINEER,)


class FakeIdP:
    def __init__(self) -> None:
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
        self.calls: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json={
                    "issuer": "https://idp.test",
                    "authorization_endpoint": "https://idp.test/authorize",
                    "token_endpoint": "https://idp.test/token",
                    "jwks_uri": "https://idp.test/jwks",
                    "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
                },
            )
        return httpx.Response(200, json=KeySet(self.keys).as_dict(private=False))


def test_discovery_and_jwks_are_cached_with_a_ttl_and_refetched_once() -> None:
    asyncio.run(_cache_scenario())


async def _cache_scenario() -> None:
    idp = FakeIdP()
    now = [0.0]
    providers = OidcProviders(
        ttl=300,
        refetch_cooldown=30,
        clock=lambda: now[0],
        transport=httpx.MockTransport(idp.handle),
    )
    meta = await providers.discovery("https://idp.test/")
    # Symmetric and "none" algorithms announced by an IdP are never accepted.
    assert OidcProviders.algorithms(meta) == ["RS256"]
    await providers.key_set("https://idp.test", "k1")
    await providers.key_set("https://idp.test", "k1")
    assert idp.calls == ["/.well-known/openid-configuration", "/jwks"]
    # An unknown kid refetches the JWKS once, and finds a rotated key.
    idp.keys.append(RSAKey.generate_key(2048, parameters={"kid": "k2"}))
    keys = await providers.key_set("https://idp.test", "k2")
    assert {k.kid for k in keys.keys} == {"k1", "k2"}
    assert idp.calls.count("/jwks") == 2
    # Another unknown kid soon after does not hammer the IdP.
    await providers.key_set("https://idp.test", "k3")
    assert idp.calls.count("/jwks") == 2
    # After the TTL, everything is fetched again.
    now[0] = 301
    await providers.key_set("https://idp.test", "k1")
    assert idp.calls.count("/jwks") == 3
    assert idp.calls.count("/.well-known/openid-configuration") == 2


def test_sealed_cookies_refuse_tampering_expiry_and_other_purposes(box: SecretBox) -> None:
    now = [1000.0]
    cookies = CookieSealer(box, clock=lambda: now[0])
    value = cookies.seal("session", {"member_id": "m"}, 60)
    assert cookies.open("session", value) == {"member_id": "m", "exp": 1060}
    assert cookies.open("pending-sign-in", value) is None
    assert (
        cookies.open("session", value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]) is None
    )
    assert cookies.open("session", "garbage!") is None
    now[0] = 1061
    assert cookies.open("session", value) is None
