"""Tokens built to hurt: deeply nested JSON, huge tokens, bytes that are not UTF-8.

Each is refused with 401 problem+json before any key is looked up, on the API and on the
SCIM mount (which authenticates its own requests with the same verifier).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from tests.conftest import TEST_ISSUER
from tests.helpers import PROBLEM, bearer, fetch_token, register_operator
from tests.live_server import live_server
from training.bootstrap import Services
from training.identity.authentication import TokenRejected, verify_access_token
from training.identity.keys import RELOAD_COOLDOWN, KeyRing, LoadedKeys, rotate_signing_key
from training.infra.database import Database
from training.infra.secretbox import SecretBox

DEPTH = 1500


def segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


HEADER = segment(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": "k"}).encode())
PAYLOAD = segment(json.dumps({"iss": "https://training.test", "sub": "x"}).encode())
NESTED = ("[" * DEPTH + "]" * DEPTH).encode()
NESTED_OBJECT = ('{"a":' * DEPTH + "1" + "}" * DEPTH).encode()

HOSTILE_TOKENS = {
    "nested header": f"{segment(NESTED)}.{PAYLOAD}.c2ln",
    "nested payload": f"{HEADER}.{segment(NESTED)}.c2ln",
    "nested object in the payload": f"{HEADER}.{segment(NESTED_OBJECT)}.c2ln",
    "nested claim": HEADER
    + "."
    + segment(('{"iss":"https://training.test","x":' + "[" * 40 + "]" * 40 + "}").encode())
    + ".c2ln",
    "huge token": f"{HEADER}.{'A' * 20_000}.c2ln",
    "non-UTF-8 header": segment(b'{"alg":"RS256","kid":"\xff\xfe"}') + f".{PAYLOAD}.c2ln",
    "non-UTF-8 payload": f"{HEADER}." + segment(b'{"iss":"\xc3\x28"}') + ".c2ln",
    "not base64": f"{HEADER}.{PAYLOAD}!*.c2ln",
    "two segments": f"{HEADER}.{PAYLOAD}",
    "a JSON list as header": f"{segment(b'[1]')}.{PAYLOAD}.c2ln",
    "empty segments": "..",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TOKENS))
def test_a_hostile_bearer_token_gets_401(client: TestClient[Any], case: str) -> None:
    response = client.get(
        "/v1/tenants", headers={"Authorization": f"Bearer {HOSTILE_TOKENS[case]}"}
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM


def test_raw_bytes_that_are_not_text_get_401(client: TestClient[Any]) -> None:
    raw = b"Bearer " + HEADER.encode() + b".\xff\xfe\x80." + b"\xc3\x28"
    response = client.get("/v1/tenants", headers={"Authorization": raw})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("case", ["nested header", "nested payload", "huge token"])
def test_scim_refuses_hostile_tokens_with_a_scim_401(client: TestClient[Any], case: str) -> None:
    response = client.get(
        f"/scim/v2/{uuid.uuid4()}/Users",
        headers={"Authorization": f"Bearer {HOSTILE_TOKENS[case]}"},
    )
    assert response.status_code == 401, response.text
    assert response.json()["status"] == "401"


# -- Made-up key ids --------------------------------------------------------------------------


def garbage_token(issuer: str = TEST_ISSUER) -> str:
    """A plausible header naming a random kid, made-up claims and a garbage signature (the
    outside probe's garbage body is refused even before the kid is looked at)."""
    header = {"alg": "RS256", "typ": "at+jwt", "kid": secrets.token_hex(16)}
    claims = {"iss": issuer, "sub": secrets.token_hex(8), "exp": 2**31}
    return ".".join(
        [segment(json.dumps(header).encode()), segment(json.dumps(claims).encode()), "x" * 342]
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountedKeyRing(KeyRing):
    """The real key ring, counting how often it reads the keys from the database."""

    def __init__(self, conninfo: str, box: SecretBox, clock: Clock) -> None:
        super().__init__(conninfo, box, clock=clock)
        self.loads = 0

    def _load(self) -> LoadedKeys:
        self.loads += 1
        return super()._load()


def refused(token: str, ring: KeyRing, services: Services) -> bool:
    try:
        verify_access_token(
            token, ring, issuer=services.settings.issuer, audience=services.settings.audience
        )
    except TokenRejected:
        return True
    return False


def test_unknown_kids_reload_the_keys_at_most_once_per_cooldown(services: Services) -> None:
    clock = Clock()
    ring = CountedKeyRing(
        services.database.app_url, SecretBox.from_settings(services.settings), clock
    )
    loaded = ring.current()
    assert ring.loads == 1
    # The first unknown kid after a quiet spell reloads (it may be a rotation elsewhere)...
    assert all(refused(garbage_token(), ring, services) for _ in range(200))
    assert ring.loads == 2
    # ...reusing the keys it had imported: importing a private key stalls the process.
    assert ring.current().signing_key is loaded.signing_key
    # ...the next ones within the cooldown do not, however many there are: the keys at hand
    # decide, so the API refuses them without leaving the event loop.
    clock.now += RELOAD_COOLDOWN - 0.1
    assert ring.at_hand(secrets.token_hex(16)) is ring.current()
    assert all(refused(garbage_token(), ring, services) for _ in range(200))
    assert ring.loads == 2
    clock.now += 0.1
    assert ring.at_hand(secrets.token_hex(16)) is None  # a reload is due: not at hand
    assert all(refused(garbage_token(), ring, services) for _ in range(200))
    assert ring.loads == 3


def test_unknown_kids_from_many_threads_cause_one_reload(services: Services) -> None:
    clock = Clock()
    ring = CountedKeyRing(
        services.database.app_url, SecretBox.from_settings(services.settings), clock
    )
    ring.current()
    clock.now += RELOAD_COOLDOWN
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: refused(garbage_token(), ring, services), range(400)))
    assert all(results)
    assert ring.loads == 2


def test_a_rotation_in_another_process_is_learned_within_the_cooldown(
    services: Services, client: TestClient[Any]
) -> None:
    clock = Clock()
    box = SecretBox.from_settings(services.settings)
    ring = CountedKeyRing(services.database.app_url, box, clock)
    assert refused(garbage_token(), ring, services)  # a stranger just forced a reload
    loads = ring.loads

    new_kid = rotate_signing_key(services.database.admin_url, box)  # `training keys rotate`
    services.keys.reload()  # the process that issues the token knows its new key
    token = fetch_token(client, register_operator(services))
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))["kid"] == new_kid

    # Within the cooldown the new kid is not looked up yet: refused like a bad signature.
    assert refused(token, ring, services)
    assert ring.loads == loads
    clock.now += RELOAD_COOLDOWN
    claims = verify_access_token(
        token, ring, issuer=services.settings.issuer, audience=services.settings.audience
    )
    assert claims["client_id"].startswith("op_")
    assert ring.loads == loads + 1
    # Known from now on: no more loads for it.
    for _ in range(20):
        verify_access_token(
            token, ring, issuer=services.settings.issuer, audience=services.settings.audience
        )
    assert ring.loads == loads + 1


def test_readers_keep_deciding_while_the_keys_reload(
    services: Services, client: TestClient[Any]
) -> None:
    """A reload holds no lock and makes no one wait: while a thread is inside _load, a known
    kid verifies and another unknown kid is refused at once."""
    box = SecretBox.from_settings(services.settings)
    token = fetch_token(client, register_operator(services))
    inside = threading.Event()
    release = threading.Event()

    class SlowRing(KeyRing):
        slow = False

        def _load(self) -> LoadedKeys:
            if self.slow:
                inside.set()
                release.wait(30)
            return super()._load()

    ring = SlowRing(services.database.app_url, box)
    ring.current()
    ring.slow = True
    with ThreadPoolExecutor(max_workers=1) as pool:
        reloading = pool.submit(refused, garbage_token(), ring, services)
        assert inside.wait(30)
        try:
            claims = verify_access_token(
                token, ring, issuer=services.settings.issuer, audience=services.settings.audience
            )
            assert claims["client_id"].startswith("op_")
            assert ring.at_hand(secrets.token_hex(16)) is not None  # decided without waiting
            assert refused(garbage_token(), ring, services)
            assert not reloading.done()
        finally:
            release.set()
        assert reloading.result(30)


# -- Strangers, per client address, over real HTTP -------------------------------------------

ANONYMOUS_LIMIT = 10
TOKEN_LIMIT = 5
PROXY = "127.0.0.71"


class HeldRefusals:
    """Records how long each 429 to a stranger would have been held back, without waiting."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


@dataclass(frozen=True)
class Served:
    base_url: str
    services: Services
    held: HeldRefusals


@pytest.fixture(scope="module")
def served(database: Database) -> Iterator[Served]:
    """uvicorn on loopback, so each test's client can come from an address of its own."""
    with live_server(
        database,
        issuer_on_loopback=True,
        rate_limit_anonymous=f"{ANONYMOUS_LIMIT}/60",
        rate_limit_token=f"{TOKEN_LIMIT}/60",
        trusted_proxies=(PROXY,),
    ) as server:
        held = HeldRefusals()
        # No request has reached the server yet: every refusal is recorded, none waits.
        server.app.state.address_limits.pause = held.pause
        yield Served(server.base_url, server.services, held)


def http_from(served: Served, address: str) -> httpx.Client:
    """A client whose connections leave from ``address`` (any 127.x.y.z is loopback)."""
    return httpx.Client(
        base_url=served.base_url,
        transport=httpx.HTTPTransport(local_address=address),
        timeout=30.0,
    )


def operator_token(served: Served) -> str:
    credentials = register_operator(served.services)
    with http_from(served, "127.0.0.1") as http:
        response = http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials.client_id, credentials.client_secret),
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def assert_rate_limited(response: httpx.Response, media_type: str = PROBLEM) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith(media_type)
    assert 1 <= int(response.headers["retry-after"]) <= 60


def test_an_address_that_keeps_failing_gets_429_and_no_one_else_does(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_up: list[str] = []
    at_hand = served.services.keys.at_hand

    def counted(kid: str) -> LoadedKeys | None:
        looked_up.append(kid)
        return at_hand(kid)

    monkeypatch.setattr(served.services.keys, "at_hand", counted)
    good = operator_token(served)
    with http_from(served, "127.0.0.21") as attacker:
        statuses = [
            attacker.get("/v1/tenants", headers=bearer(garbage_token(served.base_url))).status_code
            for _ in range(ANONYMOUS_LIMIT)
        ]
        assert statuses == [401] * ANONYMOUS_LIMIT
        assert len(looked_up) == ANONYMOUS_LIMIT
        held_before = len(served.held.pauses)
        for _ in range(20):
            refused = attacker.get("/v1/tenants", headers=bearer(garbage_token(served.base_url)))
            assert_rate_limited(refused)
        assert len(looked_up) == ANONYMOUS_LIMIT  # refused before the token was read
        # Each refusal was held back (up to a second) before it was sent.
        pauses = served.held.pauses[held_before:]
        assert len(pauses) == 20
        assert all(0 < pause <= 1.0 for pause in pauses)
        # The address is refused as a whole while it has no share left, good token or not.
        assert_rate_limited(attacker.get("/v1/tenants", headers=bearer(good)))
    with http_from(served, "127.0.0.22") as legitimate:
        for _ in range(3 * ANONYMOUS_LIMIT):
            assert legitimate.get("/v1/tenants", headers=bearer(good)).status_code == 200
    with http_from(served, "127.0.0.23") as another_stranger:
        refused = another_stranger.get("/v1/tenants", headers=bearer(garbage_token()))
        assert refused.status_code == 401
        assert refused.headers["content-type"] == PROBLEM


def test_requests_without_a_token_count_as_failures(served: Served) -> None:
    with http_from(served, "127.0.0.24") as stranger:
        statuses = [stranger.get("/v1/tenants").status_code for _ in range(ANONYMOUS_LIMIT)]
        assert statuses == [401] * ANONYMOUS_LIMIT
        assert_rate_limited(stranger.get("/v1/tenants"))
        assert_rate_limited(stranger.post("/v1/tenants", json={}))


def test_the_token_endpoint_is_limited_per_address(served: Served) -> None:
    credentials = register_operator(served.services)
    wrong = (credentials.client_id, "not-the-secret")
    form = {"grant_type": "client_credentials"}
    with http_from(served, "127.0.0.31") as guesser:
        statuses = [
            guesser.post("/oauth2/token", data=form, auth=wrong).status_code
            for _ in range(TOKEN_LIMIT)
        ]
        assert statuses == [401] * TOKEN_LIMIT
        assert_rate_limited(guesser.post("/oauth2/token", data=form, auth=wrong))
        right = (credentials.client_id, credentials.client_secret)
        assert_rate_limited(guesser.post("/oauth2/token", data=form, auth=right))
    with http_from(served, "127.0.0.32") as integration:
        response = integration.post(
            "/oauth2/token", data=form, auth=(credentials.client_id, credentials.client_secret)
        )
        assert response.status_code == 200, response.text


def test_calendar_feeds_and_sign_in_are_limited_per_address(served: Served) -> None:
    feed = f"/calendar/{uuid.uuid4()}/{uuid.uuid4()}/guess.ics"
    with http_from(served, "127.0.0.41") as prober:
        statuses = [prober.get(feed).status_code for _ in range(ANONYMOUS_LIMIT)]
        assert statuses == [404] * ANONYMOUS_LIMIT
        assert_rate_limited(prober.get(feed))
        # The same share covers single sign-on and the discovery documents.
        assert_rate_limited(prober.get("/auth/acme/login", follow_redirects=False))
        assert_rate_limited(prober.get("/auth/acme/callback?code=x&state=y"))
        assert_rate_limited(prober.get("/.well-known/jwks.json"))
    with http_from(served, "127.0.0.42") as someone_else:
        assert someone_else.get(feed).status_code == 404
        assert someone_else.get("/.well-known/jwks.json").status_code == 200


def test_health_checks_are_never_limited(served: Served) -> None:
    with http_from(served, "127.0.0.51") as balancer:
        for _ in range(ANONYMOUS_LIMIT):
            balancer.get("/v1/tenants")
        assert_rate_limited(balancer.get("/v1/tenants"))
        for _ in range(3 * ANONYMOUS_LIMIT):
            assert balancer.get("/healthz").status_code == 200
            assert balancer.get("/readyz").status_code != 429  # 503 says "not ready"


def test_scim_failures_count_and_are_refused_as_scim_errors(served: Served) -> None:
    path = f"/scim/v2/{uuid.uuid4()}/Users"
    with http_from(served, "127.0.0.61") as stranger:
        for _ in range(ANONYMOUS_LIMIT):
            response = stranger.get(path, headers=bearer(garbage_token()))
            assert response.status_code == 401
            assert response.json()["status"] == "401"
        refused = stranger.get(path, headers=bearer(garbage_token()))
        assert_rate_limited(refused, "application/scim+json")
        assert refused.json()["status"] == "429"


def test_forwarded_for_names_the_caller_only_behind_a_trusted_proxy(served: Served) -> None:
    with http_from(served, PROXY) as proxy:
        # Failures forwarded for one caller use up that caller's share, not the proxy's.
        for _ in range(ANONYMOUS_LIMIT):
            proxy.get("/v1/tenants", headers={"X-Forwarded-For": "198.51.100.1"})
        assert_rate_limited(proxy.get("/v1/tenants", headers={"X-Forwarded-For": "198.51.100.1"}))
        # What the caller wrote itself (left of the hop the proxy added) does not count.
        assert_rate_limited(
            proxy.get("/v1/tenants", headers={"X-Forwarded-For": "203.0.113.5, 198.51.100.1"})
        )
        assert (
            proxy.get("/v1/tenants", headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 401
        )
    with http_from(served, "127.0.0.72") as untrusted:
        for _ in range(ANONYMOUS_LIMIT):
            untrusted.get("/v1/tenants", headers={"X-Forwarded-For": "198.51.100.3"})
        # An untrusted peer cannot pick a fresh address for itself.
        assert_rate_limited(
            untrusted.get("/v1/tenants", headers={"X-Forwarded-For": "198.51.100.4"})
        )
