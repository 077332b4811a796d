"""Talking to tenants' OpenID Connect providers: discovery, JWKS, and sealed cookies.

``OidcProviders`` caches each issuer's discovery document and JWKS for ``ttl`` seconds. A
token whose ``kid`` is not in the cached set makes it fetch the JWKS again, once, so a key
rotation at the IdP is picked up at once without letting every unknown ``kid`` hammer it
(at most one forced refetch per issuer every ``refetch_cooldown`` seconds).

Keys are only ever taken from the issuer's JWKS, never from a token's header (``jwk``,
``jku``, ``x5u`` are ignored), and the algorithm must be in an allow-list.

``CookieSealer`` seals small JSON payloads (sign-in state, sessions) with the service's
``SecretBox`` (AES-GCM, so they are both confidential and tamper-evident), bound to a purpose
and carrying their own expiry.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from cryptography.exceptions import InvalidTag
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from psycopg import AsyncConnection

from training.infra.secretbox import SecretBox

DEFAULT_TTL = 300.0
DEFAULT_ALGORITHMS = ("RS256",)
# Asymmetric algorithms only: an IdP's tokens are never checked with a shared secret.
ACCEPTABLE_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
HTTP_TIMEOUT = 5.0


class OidcError(Exception):
    """The IdP could not be reached, answered nonsense, or a token did not verify."""


@dataclass
class _Cached:
    value: Any
    fetched_at: float


class OidcProviders:
    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        refetch_cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.ttl = ttl
        self.refetch_cooldown = refetch_cooldown
        self.clock = clock
        self.transport = transport
        self._discovery: dict[str, _Cached] = {}
        self._jwks: dict[str, _Cached] = {}
        self._forced: dict[str, float] = {}
        self.fetches: list[str] = []  # what was fetched, for tests and logs

    async def _get_json(self, url: str) -> dict[str, Any]:
        self.fetches.append(url)
        try:
            async with httpx.AsyncClient(
                timeout=HTTP_TIMEOUT, transport=self.transport, follow_redirects=False
            ) as http:
                response = await http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise OidcError(f"the identity provider did not answer {url}: {error}") from None
        if not isinstance(body, dict):
            raise OidcError(f"{url} did not return a JSON object")
        return body

    def _fresh(self, cached: _Cached | None) -> bool:
        return cached is not None and self.clock() - cached.fetched_at < self.ttl

    async def discovery(self, issuer: str) -> dict[str, Any]:
        issuer = issuer.rstrip("/")
        cached = self._discovery.get(issuer)
        if cached is not None and self._fresh(cached):
            return dict(cached.value)
        document = await self._get_json(f"{issuer}/.well-known/openid-configuration")
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise OidcError("the discovery document names another issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(name), str):
                raise OidcError(f"the discovery document has no {name}")
        self._discovery[issuer] = _Cached(document, self.clock())
        return dict(document)

    async def _fetch_jwks(self, issuer: str) -> KeySet:
        document = await self.discovery(issuer)
        body = await self._get_json(str(document["jwks_uri"]))
        try:
            keys = KeySet.import_key_set(body)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as error:
            raise OidcError(f"the JWKS of {issuer} is not valid: {error}") from None
        self._jwks[issuer] = _Cached(keys, self.clock())
        return keys

    async def key_set(self, issuer: str, kid: str | None = None) -> KeySet:
        """The issuer's keys; refetched once when ``kid`` is not among the cached ones."""
        issuer = issuer.rstrip("/")
        cached = self._jwks.get(issuer)
        if cached is None or not self._fresh(cached):
            return await self._fetch_jwks(issuer)
        keys: KeySet = cached.value
        if kid is not None and not _has_kid(keys, kid):
            last = self._forced.get(issuer)
            if last is None or self.clock() - last >= self.refetch_cooldown:
                self._forced[issuer] = self.clock()
                return await self._fetch_jwks(issuer)
        return keys

    @staticmethod
    def algorithms(
        document: dict[str, Any], field: str = "id_token_signing_alg_values_supported"
    ) -> list[str]:
        """The algorithms to accept: what discovery announces, asymmetric ones only."""
        announced = document.get(field)
        if not isinstance(announced, list) or not announced:
            return list(DEFAULT_ALGORITHMS)
        allowed = [str(a) for a in announced if str(a) in ACCEPTABLE_ALGORITHMS]
        return allowed or list(DEFAULT_ALGORITHMS)

    async def decode(self, raw: str, issuer: str, algorithms: list[str]) -> jwt.Token:
        """Signature and algorithm checked with the issuer's JWKS; claims are the caller's job."""
        try:
            header = extract_compact(raw.encode()).protected
        except (JoseError, ValueError):
            raise OidcError("the token is not a JWT") from None
        if header.get("alg") not in algorithms:
            raise OidcError("the token's algorithm is not accepted")
        kid = header.get("kid")
        keys = await self.key_set(issuer, str(kid) if kid is not None else None)
        try:
            return jwt.decode(raw, keys, algorithms=algorithms)
        except (JoseError, ValueError) as error:
            raise OidcError(f"the token does not verify: {error}") from None


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def peek_claims(raw: str) -> dict[str, Any]:
    """A JWT's claims WITHOUT verification, only to pick which issuer's keys to use."""
    try:
        payload = json.loads(extract_compact(raw.encode()).payload)
    except (JoseError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


class CookieSealer:
    def __init__(self, box: SecretBox, clock: Callable[[], float] = time.time) -> None:
        self.box = box
        self.clock = clock

    def seal(self, purpose: str, payload: dict[str, Any], ttl: int) -> str:
        body = {**payload, "exp": int(self.clock()) + ttl}
        sealed = self.box.seal(json.dumps(body).encode(), context=_context(purpose))
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, purpose: str, value: str) -> dict[str, Any] | None:
        """The payload, or None when the value was forged, altered, expired or is garbage."""
        try:
            sealed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            body = json.loads(self.box.open(sealed, context=_context(purpose)))
        except (InvalidTag, ValueError, TypeError):
            return None
        if not isinstance(body, dict) or not isinstance(body.get("exp"), int):
            return None
        if body["exp"] < self.clock():
            return None
        return body


def _context(purpose: str) -> bytes:
    return b"training-sso-cookie:" + purpose.encode()


def secret_context(tenant_id: UUID) -> bytes:
    """Binds a sealed IdP client secret to its tenant."""
    return b"training-sso-client-secret:" + tenant_id.bytes


def seal_client_secret(box: SecretBox, tenant_id: UUID, secret: str) -> str:
    return base64.b64encode(box.seal(secret.encode(), context=secret_context(tenant_id))).decode()


def open_client_secret(box: SecretBox, tenant_id: UUID, sealed: str) -> str:
    return box.open(base64.b64decode(sealed), context=secret_context(tenant_id)).decode()


async def member_ids_with_email(
    conn: AsyncConnection[Any], tenant_id: UUID, email: str
) -> list[UUID]:
    """Members of ``tenant_id`` whose email is ``email`` (the session is tenant-scoped too)."""
    cursor = await conn.execute(
        "SELECT member_id FROM training.people WHERE tenant_id = %s AND lower(email) = lower(%s) "
        "ORDER BY updated_at DESC",
        (tenant_id, email.strip()),
    )
    return [row[0] for row in await cursor.fetchall()]
