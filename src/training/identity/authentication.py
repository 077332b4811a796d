"""Who is calling: bearer access tokens checked against our own signing keys.

A token is accepted only when its signature verifies with a key from our key ring (the key
is chosen by ``kid`` among our keys, never taken from the token), ``alg`` is RS256, ``typ``
is ``at+jwt``, and ``iss``, ``aud`` and ``exp`` are right. The tenant must be active and the
client not revoked at the time of the request, so suspending a tenant or revoking a client
takes effect at once rather than when its tokens expire.

Before any of that, a bearer token is read within bounds (``read_unverified``): at most
``MAX_TOKEN_BYTES``, three base64url segments, a header and claims that are JSON objects
nested at most ``MAX_JSON_DEPTH`` deep. Anything else is a 401 at once, so no parser further
on (joserfc's, the standard library's) meets a token that could exhaust its recursion, and a
kid we do not know is refused without verifying anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
import structlog
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
)
from litestar.concurrency import sync_to_thread
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from training.core.access import scopes_of
from training.core.application import TrainingApplication
from training.core.context import ActorKind
from training.core.http.principal import Principal
from training.core.read_store import ReadStore
from training.identity.handlers.sso import SESSION_COOKIE, SESSION_PURPOSE
from training.identity.keys import KeyRing, LoadedKeys
from training.identity.oidc import CookieSealer, OidcError, OidcProviders
from training.identity.sign_in import SsoRuntime, find_member, runtime_of
from training.infra.settings import Settings
from training.people.queries import member_in_force
from training.tenancy.domain import OPERATOR_SCOPE
from training.tenancy.queries import credentials_in_force

ALGORITHMS = ["RS256"]
TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
# Our tokens are under 1 KB; common proxies refuse header lines over 8 KB anyway.
MAX_TOKEN_BYTES = 8 * 1024
# Real claims nest two or three levels (an address, a list of groups).
MAX_JSON_DEPTH = 32
SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


class TokenRejected(Exception):
    pass


@dataclass(frozen=True)
class UnverifiedToken:
    """A compact JWT's header and claims as sent: NOT verified, only safe to look at."""

    header: dict[str, Any]
    claims: dict[str, Any]


def read_unverified(raw: str) -> UnverifiedToken:
    """Parses a compact JWT within bounds, or raises ``TokenRejected``; verifies nothing."""
    if len(raw) > MAX_TOKEN_BYTES:
        raise TokenRejected(f"the token is larger than {MAX_TOKEN_BYTES} bytes")
    parts = raw.split(".")
    if len(parts) != 3 or not all(SEGMENT.fullmatch(part) for part in parts):
        raise TokenRejected("the token is not a JWT")
    return UnverifiedToken(_json_object(parts[0]), _json_object(parts[1]))


def _json_object(segment: str) -> dict[str, Any]:
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = msgspec.json.decode(data)
    except (binascii.Error, ValueError, msgspec.DecodeError, RecursionError):
        raise TokenRejected("the token is not a JWT") from None
    if not isinstance(value, dict) or _deeper_than(value, MAX_JSON_DEPTH):
        raise TokenRejected("the token is not a JWT")
    return value


def _deeper_than(value: object, limit: int) -> bool:
    """Whether JSON ``value`` nests more than ``limit`` levels (iterative: no recursion)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
    return False


def verify_access_token(raw: str, keys: KeyRing, *, issuer: str, audience: str) -> dict[str, Any]:
    """The claims of one of our access tokens, or ``TokenRejected``; may read the keys."""
    kid = access_token_kid(read_unverified(raw))
    return verified_claims(raw, kid, keys.refresh_for(kid), issuer=issuer, audience=audience)


def access_token_kid(token: UnverifiedToken) -> str:
    """The kid of what looks like one of our access tokens (typ, alg and kid checked)."""
    header = token.header
    if header.get("typ") != TOKEN_TYPE:
        raise TokenRejected("the token is not an access token (typ at+jwt)")
    if header.get("alg") not in ALGORITHMS:
        raise TokenRejected("the token's algorithm is not accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("the token names no key (kid)")
    return kid


def verified_claims(
    raw: str, kid: str, loaded: LoadedKeys, *, issuer: str, audience: str
) -> dict[str, Any]:
    """Signature and claims checked against ``loaded``: CPU only, no I/O."""
    if not loaded.knows(kid):
        # Refused like a bad signature, without trying every key.
        raise TokenRejected("the token's signature does not verify")
    try:
        token = jwt.decode(raw, loaded.public_keys, algorithms=ALGORITHMS)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
        ).validate(token.claims)
    except ExpiredTokenError:
        raise TokenRejected("the token has expired") from None
    except BadSignatureError:
        raise TokenRejected("the token's signature does not verify") from None
    except ClaimError as error:
        raise TokenRejected(f"the token was refused: {error.description}") from None
    except (JoseError, ValueError, json.JSONDecodeError):
        raise TokenRejected("the token could not be verified") from None
    return dict(token.claims)


async def our_access_token_claims(
    keys: KeyRing, settings: Settings, raw: str, token: UnverifiedToken
) -> dict[str, Any]:
    """Verified on the event loop when the keys at hand decide (a known kid, or an unknown
    one while no reload is due: a signature check costs less than a hop to a thread), in a
    thread when the keys must be read first."""
    issuer, audience = settings.issuer, settings.audience
    kid = access_token_kid(token)
    loaded = keys.at_hand(kid)
    if loaded is not None:
        return verified_claims(raw, kid, loaded, issuer=issuer, audience=audience)
    return await sync_to_thread(verify_access_token, raw, keys, issuer=issuer, audience=audience)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """Who the claims name. A member's scopes come from their roles, read at request time."""
    scopes = frozenset(str(claims.get("scope", "")).split())
    tenant = claims.get("tenant_id")
    member = claims.get("member_id")
    client_id = claims.get("client_id")
    if member is not None:
        try:
            return Principal(ActorKind.MEMBER, str(UUID(str(member))), UUID(str(tenant)))
        except ValueError:
            raise TokenRejected("the token's member or tenant is not valid") from None
    if not client_id:
        raise TokenRejected("the token names no client")
    if tenant is None:
        if OPERATOR_SCOPE not in scopes:
            raise TokenRejected("the token names no tenant")
        return Principal(ActorKind.OPERATOR, str(client_id), None, scopes)
    try:
        tenant_id = UUID(str(tenant))
    except ValueError:
        raise TokenRejected("the token's tenant is not valid") from None
    return Principal(ActorKind.CLIENT, str(client_id), tenant_id, scopes - {OPERATOR_SCOPE})


def session_claims(cookies: CookieSealer, value: str) -> dict[str, Any]:
    """The member and tenant a sign-in session cookie names (sealed, so unforgeable)."""
    session = cookies.open(SESSION_PURPOSE, value)
    if session is None:
        raise TokenRejected("the session is not valid or has expired; sign in again")
    return {"member_id": session.get("member_id"), "tenant_id": session.get("tenant_id")}


async def tenant_idp_claims(
    app: TrainingApplication, store: ReadStore, runtime: SsoRuntime, raw: str, issuer: str
) -> dict[str, Any]:
    """Claims naming the member an access token from a tenant's identity provider stands for.

    The unverified ``issuer`` (the token's ``iss``) only selects an allow-listed tenant
    issuer (a configured SSO connection); the token is then verified with that issuer's JWKS
    (the key is never taken from the token), an algorithm it announces (asymmetric only,
    RS256 by default), the connection's audience, and ``exp``. Its email (or an email
    ``sub``) must be a member of that same tenant.
    """
    candidates = await sync_to_thread(runtime.directory.connections_for, app, issuer)
    if not candidates:
        raise TokenRejected("the token's issuer is not trusted")
    rejection = "the token was refused"
    for sso in candidates:
        try:
            meta = await runtime.providers.discovery(sso.issuer)
            token = await runtime.providers.decode(raw, sso.issuer, OidcProviders.algorithms(meta))
            jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": sso.issuer},
                aud={"essential": True, "value": sso.token_audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(token.claims)
        except OidcError as error:
            rejection = str(error)
            continue
        except ExpiredTokenError:
            rejection = "the token has expired"
            continue
        except ClaimError as error:
            rejection = f"the token was refused: {error.description}"
            continue
        member_id, refusal, _ = await find_member(app, store, sso, dict(token.claims))
        if member_id is None:
            raise TokenRejected(refusal or "no member of the tenant matches the token")
        return {"member_id": str(member_id), "tenant_id": str(sso.tenant_id)}
    raise TokenRejected(rejection)


class BearerAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        # A middleware is given no dependencies: it takes what the app wired from its state.
        wired = connection.app.state.services
        app: TrainingApplication = wired.app
        store: ReadStore = wired.store
        settings: Settings = wired.settings
        keys: KeyRing = wired.keys
        header = connection.headers.get("authorization", "")
        scheme, _, raw = header.partition(" ")
        token = raw.strip()
        session = connection.cookies.get(SESSION_COOKIE)
        try:
            if (scheme.lower() != "bearer" or not token) and session:
                # A session from single sign-on: a member, exactly like a member's token.
                runtime = runtime_of(connection.app.state, settings)
                claims = session_claims(runtime.cookies, session)
            elif scheme.lower() != "bearer" or not token:
                raise NotAuthorizedException(
                    detail="send an access token: Authorization: Bearer <token>"
                )
            elif (issuer := (unverified := read_unverified(token)).claims.get("iss")) not in (
                None,
                settings.issuer,
            ):
                # Not ours: perhaps an access token from a tenant's own identity provider.
                runtime = runtime_of(connection.app.state, settings)
                claims = await tenant_idp_claims(app, store, runtime, token, str(issuer))
            else:
                claims = await our_access_token_claims(keys, settings, token, unverified)
            principal = principal_from_claims(claims)
        except TokenRejected as error:
            raise NotAuthorizedException(detail=str(error)) from None
        if principal.kind is ActorKind.MEMBER:
            assert principal.tenant_id is not None
            standing = await sync_to_thread(
                member_in_force, app, principal.tenant_id, UUID(principal.subject)
            )
            if standing.refusal:
                raise NotAuthorizedException(detail=standing.refusal)
            principal = Principal(
                principal.kind,
                principal.subject,
                principal.tenant_id,
                scopes_of(standing.roles),
                frozenset(standing.roles),
            )
        else:
            refusal = await sync_to_thread(
                credentials_in_force, app, principal.subject, principal.tenant_id
            )
            if refusal:
                raise NotAuthorizedException(detail=refusal)
        structlog.contextvars.bind_contextvars(
            tenant_id=str(principal.tenant_id) if principal.tenant_id else None,
            actor=f"{principal.kind}:{principal.subject}",
        )
        return AuthenticationResult(user=principal, auth=claims)
