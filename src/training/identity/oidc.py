"""Talking to tenants' OpenID Connect providers: discovery, JWKS, the code exchange, cookies.

``OidcProviders`` caches each issuer's discovery document and JWKS for ``ttl`` seconds. A
token whose ``kid`` is not in the cached set makes it fetch the JWKS again, once, so a key
rotation at the IdP is picked up at once without letting every unknown ``kid`` hammer it
(at most one forced refetch per issuer every ``refetch_cooldown`` seconds). A failed fetch
is not retried for ``failure_cooldown`` seconds, so tokens naming a broken or slow issuer
cannot make the service wait on it for every request.

Every request goes through an ``OutboundPolicy`` (``infra.outbound``: https, public
addresses checked when connecting, no redirects, timeouts, a size cap). The endpoints a
discovery document names (``jwks_uri``, token, authorization, userinfo, end-session) must
be https (outside development) on the issuer's host, or on a host the tenant admin listed
(``allowed_hosts``): a document whose JWKS, token or authorization endpoint is elsewhere is
refused; a userinfo or end-session endpoint elsewhere is left out of it (the service never
fetches the first, and only sends browsers to the second).

Keys are only ever taken from the issuer's JWKS, never from a token's header (``jwk``,
``jku``, ``x5u`` are ignored), and the algorithm must be in an allow-list.

What goes wrong is logged (issuer, tenants, the remote status or error, never a token);
``str(OidcError)`` is what a caller may be told, and names no host, status or error of the
identity provider.

``CookieSealer`` seals small JSON payloads (sign-in state, sessions) with the service's
``SecretBox`` (AES-GCM, so they are both confidential and tamper-evident), bound to a purpose
and carrying their own expiry.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from cryptography.exceptions import InvalidTag
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from psycopg import AsyncConnection

from training.infra.outbound import OutboundError, OutboundPolicy, host_of
from training.infra.secretbox import SecretBox

log = structlog.get_logger("training.sso")

DEFAULT_TTL = 300.0
DEFAULT_ALGORITHMS = ("RS256",)
# Asymmetric algorithms only: an IdP's tokens are never checked with a shared secret.
ACCEPTABLE_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# The endpoints of a discovery document that must be on the issuer's (or a listed) host;
# without the required ones the document is refused, the others are left out.
ENDPOINTS = (
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "end_session_endpoint",
)
REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
MAX_KEYS = 64
# Far deeper than any discovery document, JWKS or token; far shallower than the recursion limit.
MAX_JSON_DEPTH = 32

UNVERIFIABLE = "the token could not be verified with the tenant's identity provider"


class OidcError(Exception):
    """The IdP could not be reached, answered nonsense, or a token did not verify.

    ``str()`` is the public message, safe to answer to anyone: it never names the IdP's
    host, status or error. ``reason`` says what happened, for the log.
    """

    def __init__(self, public: str = UNVERIFIABLE, *, reason: str | None = None) -> None:
        super().__init__(public)
        self.public = public
        self.reason = reason or public

    def __str__(self) -> str:
        return self.public


@dataclass(frozen=True)
class IssuerContext:
    """Who trusts an issuer (for the log), and the hosts they allow beyond the issuer's."""

    tenant_ids: tuple[UUID, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, tenant_ids: Collection[UUID], hosts: Collection[str]) -> IssuerContext:
        return cls(tuple(sorted(set(tenant_ids))), frozenset(h.lower() for h in hosts))


def _no_context(_: str) -> IssuerContext:
    return IssuerContext()


def json_object(data: bytes | str) -> dict[str, Any] | None:
    """A JSON object read from untrusted input, or None (malformed, not an object, too deep)."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or _deeper_than(value, MAX_JSON_DEPTH):
        return None
    return value


def _deeper_than(value: object, limit: int) -> bool:
    level = [value]
    for _ in range(limit):
        children: list[object] = []
        for item in level:
            members = item.values() if isinstance(item, dict) else item
            assert isinstance(members, Collection)
            children.extend(c for c in members if isinstance(c, dict | list))
        if not children:
            return False
        level = children
    return True


@dataclass
class _Cached:
    value: Any
    fetched_at: float


class OidcProviders:
    def __init__(
        self,
        *,
        policy: OutboundPolicy | None = None,
        issuer_context: Callable[[str], IssuerContext] = _no_context,
        ttl: float = DEFAULT_TTL,
        refetch_cooldown: float = 10.0,
        failure_cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or OutboundPolicy()
        self.issuer_context = issuer_context
        self.ttl = ttl
        self.refetch_cooldown = refetch_cooldown
        self.failure_cooldown = failure_cooldown
        self.clock = clock
        self._discovery: dict[str, _Cached] = {}
        self._jwks: dict[str, _Cached] = {}
        self._forced: dict[str, float] = {}
        self._failed: dict[str, float] = {}

    def _fail(
        self, step: str, issuer: str, context: IssuerContext, reason: str, public: str
    ) -> OidcError:
        log.warning(
            "identity_provider.refused",
            step=step,
            issuer=issuer,
            tenant_ids=[str(t) for t in context.tenant_ids],
            reason=reason,
        )
        return OidcError(public, reason=reason)

    async def _get_json(self, url: str, issuer: str, context: IssuerContext, step: str) -> Any:
        failed_at = self._failed.get(url)
        if failed_at is not None and self.clock() - failed_at < self.failure_cooldown:
            reason = f"{url} failed {self.clock() - failed_at:.0f} s ago; not asked again yet"
            raise OidcError(reason=reason)
        try:
            answer = await self.policy.fetch("GET", url, headers=[("Accept", "application/json")])
            if answer.status != 200:
                raise OutboundError(f"GET {url}: answered {answer.status}")
        except OutboundError as error:
            self._note_failure(url)
            raise self._fail(step, issuer, context, str(error), UNVERIFIABLE) from None
        body = json_object(answer.body)
        if body is None:
            self._note_failure(url)
            reason = f"{url} did not answer a JSON object (of at most {MAX_JSON_DEPTH} levels)"
            raise self._fail(step, issuer, context, reason, UNVERIFIABLE)
        self._failed.pop(url, None)
        return body

    def _note_failure(self, url: str) -> None:
        now = self.clock()
        expired = [u for u, at in self._failed.items() if now - at >= self.failure_cooldown]
        for old in expired:
            del self._failed[old]
        self._failed[url] = now

    def _fresh(self, cached: _Cached | None) -> bool:
        return cached is not None and self.clock() - cached.fetched_at < self.ttl

    def _context(self, issuer: str, context: IssuerContext | None) -> IssuerContext:
        return context if context is not None else self.issuer_context(issuer)

    async def discovery(self, issuer: str, context: IssuerContext | None = None) -> dict[str, Any]:
        """The issuer's discovery document, once its endpoints pass the policy and host check."""
        issuer = issuer.rstrip("/")
        context = self._context(issuer, context)
        try:
            self.policy.check_url(issuer)
        except OutboundError as error:
            raise self._fail(
                "discovery", issuer, context, f"issuer: {error}", UNVERIFIABLE
            ) from None
        cached = self._discovery.get(issuer)
        fresh = cached is None or not self._fresh(cached)
        if cached is not None and not fresh:
            document: dict[str, Any] = cached.value
        else:
            url = f"{issuer}/.well-known/openid-configuration"
            document = await self._get_json(url, issuer, context, "discovery")
            problem = _malformed(issuer, document)
            if problem is not None:
                raise self._fail("discovery", issuer, context, problem, UNVERIFIABLE)
            self._discovery[issuer] = _Cached(document, self.clock())
        usable = dict(document)
        for name, problem in self._misplaced_endpoints(issuer, document, context):
            if name in REQUIRED_ENDPOINTS and fresh:
                raise self._fail("discovery", issuer, context, problem, UNVERIFIABLE)
            if name in REQUIRED_ENDPOINTS:  # logged when the document was fetched
                raise OidcError(reason=problem)
            # Never fetched by the service (userinfo) or only a courtesy (sign-out): left
            # out rather than failing every sign-in.
            del usable[name]
            if fresh:
                log.info("identity_provider.endpoint_ignored", issuer=issuer, reason=problem)
        return usable

    def _misplaced_endpoints(
        self, issuer: str, document: dict[str, Any], context: IssuerContext
    ) -> list[tuple[str, str]]:
        """The endpoints that are not https (outside development) on an allowed host, and why."""
        hosts = {host_of(self.policy.check_url(issuer)), *context.allowed_hosts}
        misplaced = []
        for name in ENDPOINTS:
            value = document.get(name)
            if value is None and name not in REQUIRED_ENDPOINTS:
                continue
            try:
                host = host_of(self.policy.check_url(str(value)))
            except OutboundError as error:
                misplaced.append((name, f"the discovery document's {name}: {error}"))
                continue
            if host not in hosts:
                why = f"is on {host}, neither the issuer's host nor one of the allowed_hosts"
                misplaced.append((name, f"the discovery document's {name} {why}"))
        return misplaced

    async def _fetch_jwks(self, issuer: str, context: IssuerContext) -> KeySet:
        document = await self.discovery(issuer, context)
        body = await self._get_json(str(document["jwks_uri"]), issuer, context, "jwks")
        keys = body.get("keys")
        if not isinstance(keys, list) or len(keys) > MAX_KEYS:
            reason = f"the JWKS of {issuer} has no list of at most {MAX_KEYS} keys"
            raise self._fail("jwks", issuer, context, reason, UNVERIFIABLE)
        try:
            key_set = KeySet.import_key_set(body)
        except (JoseError, ValueError, KeyError, TypeError) as error:
            reason = f"the JWKS of {issuer} is not valid: {error}"
            raise self._fail("jwks", issuer, context, reason, UNVERIFIABLE) from None
        self._jwks[issuer] = _Cached(key_set, self.clock())
        return key_set

    async def key_set(
        self, issuer: str, kid: str | None = None, context: IssuerContext | None = None
    ) -> KeySet:
        """The issuer's keys; refetched once when ``kid`` is not among the cached ones."""
        issuer = issuer.rstrip("/")
        context = self._context(issuer, context)
        cached = self._jwks.get(issuer)
        if cached is None or not self._fresh(cached):
            return await self._fetch_jwks(issuer, context)
        keys: KeySet = cached.value
        if kid is not None and not _has_kid(keys, kid):
            last = self._forced.get(issuer)
            if last is None or self.clock() - last >= self.refetch_cooldown:
                self._forced[issuer] = self.clock()
                return await self._fetch_jwks(issuer, context)
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

    async def decode(
        self, raw: str, issuer: str, algorithms: list[str], context: IssuerContext | None = None
    ) -> jwt.Token:
        """Signature and algorithm checked with the issuer's JWKS; claims are the caller's job."""
        try:
            header = extract_compact(raw.encode()).protected
        except (JoseError, ValueError):
            raise OidcError("the token is not a JWT") from None
        if header.get("alg") not in algorithms:
            raise OidcError("the token's algorithm is not accepted")
        kid = header.get("kid")
        keys = await self.key_set(issuer, str(kid) if kid is not None else None, context)
        try:
            return jwt.decode(raw, keys, algorithms=algorithms)
        except (JoseError, ValueError, RecursionError) as error:
            reason = f"the token does not verify: {type(error).__name__}: {error}"
            raise OidcError(
                "the token's signature or content is not valid", reason=reason
            ) from None

    async def exchange_code(
        self,
        issuer: str,
        *,
        client_id: str,
        client_secret: str,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        context: IssuerContext | None = None,
    ) -> dict[str, Any]:
        """The token endpoint's answer to an authorization code (client_secret_basic, PKCE)."""
        issuer = issuer.rstrip("/")
        context = self._context(issuer, context)
        document = await self.discovery(issuer, context)
        endpoint = str(document["token_endpoint"])
        body = prepare_token_request(
            "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
        )
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
        }
        auth = ClientAuth(client_id, client_secret, "client_secret_basic")
        _, headers, body = auth.prepare("POST", endpoint, headers, body)
        public = "the sign-in could not be completed with the tenant's identity provider"
        try:
            answer = await self.policy.fetch(
                "POST", endpoint, headers=list(headers.items()), content=str(body).encode()
            )
        except OutboundError as error:
            raise self._fail("token", issuer, context, str(error), public) from None
        token = json_object(answer.body)
        if answer.status != 200 or token is None or "error" in token:
            error_code = str((token or {}).get("error", ""))[:64]
            reason = f"the token endpoint answered {answer.status} {error_code}".rstrip()
            raise self._fail("token", issuer, context, reason, public)
        return token


def _malformed(issuer: str, document: dict[str, Any]) -> str | None:
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        return "the discovery document names another issuer"
    for name in ENDPOINTS:
        value = document.get(name)
        if (value is not None or name in REQUIRED_ENDPOINTS) and not isinstance(value, str):
            return f"the discovery document has no {name}"
    return None


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def peek_claims(raw: str) -> dict[str, Any]:
    """A JWT's claims WITHOUT verification, only to pick which issuer's keys to use."""
    try:
        payload = extract_compact(raw.encode()).payload
    except (JoseError, ValueError):
        return {}
    return json_object(payload) or {}


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
    """The tenant's IdP client secret; ``OidcError`` when the service's key cannot open it.

    That happens after the service's secret key was replaced (``keys rotate
    --replace-lost-secret-key``): the tenant admin must enter the client secret again.
    """
    try:
        return box.open(base64.b64decode(sealed), context=secret_context(tenant_id)).decode()
    except (InvalidTag, ValueError) as error:
        raise OidcError(
            "single sign-on needs its client secret entered again by a tenant admin",
            reason=f"the sealed client secret does not open: {type(error).__name__}",
        ) from None


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
