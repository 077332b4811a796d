"""The SSO connection aggregate, the IdP caches and the sealed cookies."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from joserfc.jwk import KeySet, RSAKey

from tests.stand_in_idp import Reply, StandInServer, running
from training.core.access import Role
from training.core.errors import RuleViolated
from training.core.mapper import MsgspecMapper, PassThroughTranscoder
from training.identity.domain import SsoConnection
from training.identity.oidc import (
    UNVERIFIABLE,
    CookieSealer,
    IssuerContext,
    OidcError,
    OidcProviders,
    json_object,
    open_client_secret,
    peek_claims,
    seal_client_secret,
)
from training.infra.outbound import OutboundPolicy
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
        ({"allowed_hosts": ("10.0.0.1",)}, "allowed_hosts"),
        ({"allowed_hosts": ("keys.example.com:8443",)}, "allowed_hosts"),
        ({"allowed_hosts": ("https://keys.example.com",)}, "allowed_hosts"),
        ({"allowed_hosts": tuple(f"h{i}.example.com" for i in range(11))}, "allowed_hosts"),
    ],
)
def test_invalid_configuration_is_refused(
    box: SecretBox, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(RuleViolated) as caught:
        configure(box, **fields)
    assert caught.value.field == field


def test_allowed_hosts_are_cleaned(box: SecretBox) -> None:
    connection = configure(box, allowed_hosts=("Keys.Example.com.", "www.googleapis.com"))
    assert connection.allowed_hosts == ("keys.example.com", "www.googleapis.com")
    assert configure(box).allowed_hosts == ()


# What version 1 of the events stored, before allowed_hosts existed.
OLD_CONFIGURED = StoredEvent(
    originator_id=uuid.UUID("f6b032fb-0ddb-5ee3-be43-c53c2987cce8"),
    originator_version=1,
    topic="training.sso:SsoConnection.Configured",
    state=b'{"timestamp":"2026-12-07T01:35:22.631437Z","originator_topic":"training.sso:SsoConnection","actor":"","request_id":"","tenant_id":"6f1c2a4e-0000-4000-8000-000000000001","issuer":"https://login.example.com/t/v2.0","client_id":"training","sealed_secret":"c2VhbGVk","allowed_domains":["example.com"],"jit":true,"group_roles":{"admins":["tenant_admin"]},"audience":null}',
)
OLD_RECONFIGURED = StoredEvent(
    originator_id=uuid.UUID("f6b032fb-0ddb-5ee3-be43-c53c2987cce8"),
    originator_version=2,
    topic="training.sso:SsoConnection.Reconfigured",
    state=b'{"timestamp":"2026-12-07T01:35:22.631613Z","actor":"","request_id":"","tenant_id":null,"issuer":"https://login.example.com/t/v2.0","client_id":"training-2","sealed_secret":"c2VhbGVk","allowed_domains":["example.com"],"jit":false,"group_roles":{},"audience":"api://x"}',
)


def test_connections_stored_before_allowed_hosts_read_as_listing_none() -> None:
    mapper = MsgspecMapper(transcoder=PassThroughTranscoder())
    events = [mapper.to_domain_event(e) for e in (OLD_CONFIGURED, OLD_RECONFIGURED)]
    assert [type(e).__name__ for e in events] == ["Configured", "Reconfigured"]
    connection: Any = None
    for event in events:
        connection = event.mutate(connection)  # type: ignore[attr-defined]
    assert isinstance(connection, SsoConnection)
    assert connection.allowed_hosts == ()
    assert (connection.client_id, connection.audience) == ("training-2", "api://x")
    # Written again, they carry their version and are not upcast a second time.
    rewritten = mapper.to_stored_event(events[1])
    assert b'"class_version":2' in rewritten.state
    assert mapper.to_domain_event(rewritten) == events[1]


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
    """A plain HTTP issuer on 127.0.0.1 (the development policy allows it)."""

    def __init__(self, server: StandInServer, name: str) -> None:
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
        self.server = server
        self.name = name
        self.issuer = server.url("127.0.0.1", f"/{name}", scheme="http")
        self.document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
        }
        routes = server.routes
        routes[("127.0.0.1", f"/{name}/.well-known/openid-configuration")] = lambda: Reply.json(
            self.document
        )
        routes[("127.0.0.1", f"/{name}/jwks")] = lambda: Reply.json(
            KeySet(self.keys).as_dict(private=False)
        )

    @property
    def calls(self) -> list[str]:
        prefix = f"/{self.name}"
        return [
            path.removeprefix(prefix) for _, _, path in self.server.hits if path.startswith(prefix)
        ]


@pytest.fixture(scope="module")
def local_server() -> Iterator[StandInServer]:
    yield from running(StandInServer(None))


def test_discovery_and_jwks_are_cached_with_a_ttl_and_refetched_once(
    local_server: StandInServer,
) -> None:
    asyncio.run(_cache_scenario(FakeIdP(local_server, "cache")))


async def _cache_scenario(idp: FakeIdP) -> None:
    now = [0.0]
    providers = OidcProviders(
        policy=OutboundPolicy(development=True),
        ttl=300,
        refetch_cooldown=30,
        clock=lambda: now[0],
    )
    issuer = idp.issuer
    meta = await providers.discovery(issuer + "/")
    # Symmetric and "none" algorithms announced by an IdP are never accepted.
    assert OidcProviders.algorithms(meta) == ["RS256"]
    await providers.key_set(issuer, "k1")
    await providers.key_set(issuer, "k1")
    assert idp.calls == ["/.well-known/openid-configuration", "/jwks"]
    # An unknown kid refetches the JWKS once, and finds a rotated key.
    idp.keys.append(RSAKey.generate_key(2048, parameters={"kid": "k2"}))
    keys = await providers.key_set(issuer, "k2")
    assert {k.kid for k in keys.keys} == {"k1", "k2"}
    assert idp.calls.count("/jwks") == 2
    # Another unknown kid soon after does not hammer the IdP.
    await providers.key_set(issuer, "k3")
    assert idp.calls.count("/jwks") == 2
    # After the TTL, everything is fetched again.
    now[0] = 301
    await providers.key_set(issuer, "k1")
    assert idp.calls.count("/jwks") == 3
    assert idp.calls.count("/.well-known/openid-configuration") == 2


def test_endpoints_elsewhere_need_the_host_listed(local_server: StandInServer) -> None:
    idp = FakeIdP(local_server, "elsewhere")
    other = local_server.url("localhost", "/elsewhere/jwks", scheme="http")
    idp.document["jwks_uri"] = other
    local_server.routes[("localhost", "/elsewhere/jwks")] = lambda: Reply.json(
        KeySet(idp.keys).as_dict(private=False)
    )

    async def scenario() -> None:
        providers = OidcProviders(policy=OutboundPolicy(development=True))
        with pytest.raises(OidcError) as caught:
            await providers.key_set(idp.issuer, "k1")
        assert "neither the issuer's host" in caught.value.reason
        assert str(caught.value) == UNVERIFIABLE
        assert not [hit for hit in local_server.hits if hit[1] == "localhost"]
        # The same document passes for a connection that lists the host.
        listed = IssuerContext.of([TENANT], ["localhost"])
        keys = await providers.key_set(idp.issuer, "k1", listed)
        assert [k.kid for k in keys.keys] == ["k1"]
        # Elsewhere, the endpoints the service never fetches are left out, never used.
        idp.document["end_session_endpoint"] = "http://sign-out.example.com/bye"
        idp.document["userinfo_endpoint"] = "ftp://graph.example.com/userinfo"
        providers = OidcProviders(policy=OutboundPolicy(development=True))
        document = await providers.discovery(idp.issuer, listed)
        assert "end_session_endpoint" not in document
        assert "userinfo_endpoint" not in document
        assert document["jwks_uri"] == other
        # A token endpoint elsewhere refuses the whole document.
        idp.document["token_endpoint"] = "http://tokens.example.com/token"
        providers = OidcProviders(policy=OutboundPolicy(development=True))
        with pytest.raises(OidcError) as caught:
            await providers.discovery(idp.issuer, listed)
        assert "token_endpoint" in caught.value.reason

    asyncio.run(scenario())


def test_a_deeply_nested_discovery_document_is_refused(local_server: StandInServer) -> None:
    path = "/deep/.well-known/openid-configuration"
    local_server.routes[("127.0.0.1", path)] = lambda: Reply(200, {}, [b"[" * 5000 + b"]" * 5000])
    issuer = local_server.url("127.0.0.1", "/deep", scheme="http")

    async def scenario() -> None:
        providers = OidcProviders(policy=OutboundPolicy(development=True))
        with pytest.raises(OidcError) as caught:
            await providers.discovery(issuer)
        assert "JSON object" in caught.value.reason

    asyncio.run(scenario())


def test_the_public_message_of_an_oidc_error_names_nothing_remote() -> None:
    error = OidcError(reason="GET https://10.0.0.1:8443/jwks: answered 500")
    assert str(error) == UNVERIFIABLE
    assert "10.0.0.1" not in repr(error)
    assert "500" not in str(error)
    assert error.reason.endswith("answered 500")


def _unsigned(payload: bytes) -> str:
    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = segment(b'{"alg": "RS256"}')
    return f"{header}.{segment(payload)}.{segment(b'sig')}"


def test_peek_claims_refuses_deeply_nested_payloads() -> None:
    assert peek_claims(_unsigned(b"[" * 1500 + b"]" * 1500)) == {}
    assert peek_claims(_unsigned(b'{"a":' * 1500 + b"1" + b"}" * 1500)) == {}
    assert peek_claims(_unsigned(b'{"a":' * 40 + b"1" + b"}" * 40)) == {}
    assert peek_claims(_unsigned(b"not json")) == {}
    assert peek_claims(_unsigned(b'{"iss": "https://idp.example.com"}')) == {
        "iss": "https://idp.example.com"
    }


def test_json_objects_from_identity_providers_are_read_within_bounds() -> None:
    assert json_object(b'{"keys": [{"kid": "a"}]}') == {"keys": [{"kid": "a"}]}
    assert json_object(b"[1, 2]") is None
    assert json_object(b"\xff\xfe") is None
    assert json_object(b'{"a": ' * 2000 + b"1" + b"}" * 2000) is None


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


def test_a_client_secret_sealed_with_a_lost_key_is_a_clear_refusal_not_a_crash() -> None:
    tenant_id = uuid.uuid4()
    sealed = seal_client_secret(SecretBox(os.urandom(32)), tenant_id, "s3cret")
    replaced = SecretBox(os.urandom(32))  # keys rotate --replace-lost-secret-key
    with pytest.raises(OidcError) as refused:
        open_client_secret(replaced, tenant_id, sealed)
    assert "entered again" in str(refused.value)
    assert "InvalidTag" in refused.value.reason
