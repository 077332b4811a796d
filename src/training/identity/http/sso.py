"""Single sign-on over HTTP: configure a tenant's IdP, and the OpenID Connect code flow.

* ``PUT /v1/sso`` / ``GET /v1/sso`` (scope ``sso:admin``): the tenant's connection; the
  client secret is sealed before the command and never answered.
* ``GET /auth/{tenant_slug}/login``: starts the authorization code flow with PKCE (S256),
  ``state`` and ``nonce`` (the URL built with authlib); what the callback must check travels
  in a sealed, HttpOnly, 10-minute cookie.
* ``GET /auth/{tenant_slug}/callback``: checks state and tenant, checks the PKCE verifier
  against the challenge we sent, exchanges the code with that verifier (through the outbound
  policy, like every request to the IdP: ``infra.outbound``), validates the ID
  token (signature with the issuer's JWKS; iss, aud, exp, iat, nonce, at_hash), checks the
  email domain, finds the member by email (or provisions one when JIT is on) and answers
  ``200 {"member_id", "tenant_id", "expires_at"}`` with a sealed session cookie
  (HttpOnly, SameSite=Lax, Secure outside development). The API accepts that cookie like a
  member's bearer token.
* ``POST /auth/{tenant_slug}/logout``: clears the session; ``303`` to the IdP's
  ``end_session_endpoint`` when it has one, else ``204``.

When the IdP cannot be reached, or answers something unusable, the client is told so in
general words (502 at sign-in, 401 at the callback); what happened is in the log.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
import structlog
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc.errors import JoseError
from litestar import Controller, Request, Response, get, post, put
from litestar.concurrency import sync_to_thread
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
)
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Redirect

from training.core.access import Role, Scope
from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.errors import RuleViolated
from training.core.http.commands import Commands, answer
from training.core.http.dependencies import request_id_of
from training.core.http.params import NO_NUL, text
from training.core.http.principal import Principal, requires_scope, requires_tenant
from training.core.http.reads import Reads
from training.core.outcome import Outcome
from training.core.web.pages import safe_next
from training.identity.domain import SsoConnection
from training.identity.handlers.sso import (
    PENDING_COOKIE,
    PENDING_PURPOSE,
    PENDING_TTL,
    SESSION_TTL,
    ConfigureSso,
    SsoSnapshot,
    sso_connection,
    tenant_slug,
)
from training.identity.oidc import (
    OidcError,
    OidcProviders,
    open_client_secret,
    seal_client_secret,
)
from training.identity.sign_in import (
    SsoRuntime,
    clear_session,
    issuer_context,
    member_for,
    runtime_of,
    secure_cookies,
    start_session,
)
from training.infra.outbound import OutboundError
from training.infra.settings import Settings
from training.tenancy.domain import SLUG_PATTERN, Tenant

log = structlog.get_logger(__name__)

SCOPE = "openid email profile"
ID_TOKEN_LEEWAY = 60
IDP_UNAVAILABLE = "the tenant's identity provider is not available for sign-in"


def _sso_runtime(state: State, settings: NamedDependency[Settings]) -> SsoRuntime:
    """The process's sign-in runtime: made on first use, then kept on the app's state."""
    return runtime_of(state, settings)


# What the routes of this module are given besides the app's dependencies.
SSO_DEPENDENCIES = {"sso_runtime": Provide(_sso_runtime, sync_to_thread=False)}


# ------------------------------------------------------------------ configuration (admin)

Text = Annotated[str, text(max_length=512)]


HostName = Annotated[str, msgspec.Meta(min_length=1, max_length=253, pattern=NO_NUL)]


class SsoIn(msgspec.Struct, forbid_unknown_fields=True):
    """``client_secret`` may be left out to keep the one already configured.

    ``issuer`` must be https on a public host (outside development). ``allowed_hosts`` lists
    the hosts, besides the issuer's, that the IdP's discovery document may send us to (its
    JWKS, token, userinfo and sign-out endpoints).
    """

    issuer: Text
    client_id: Text
    allowed_domains: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=253, pattern=NO_NUL)]],
        msgspec.Meta(min_length=1, max_length=50),
    ]
    client_secret: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=4096, pattern=NO_NUL)] | None
    ) = None
    jit: bool = False
    group_roles: dict[Text, Annotated[list[Role], msgspec.Meta(min_length=1)]] = msgspec.field(
        default_factory=dict
    )
    audience: Text | None = None
    allowed_hosts: Annotated[list[HostName], msgspec.Meta(max_length=10)] = msgspec.field(
        default_factory=list
    )


class SsoOut(msgspec.Struct):
    tenant_id: UUID
    issuer: str
    client_id: str
    allowed_domains: list[str]
    jit: bool
    group_roles: dict[str, list[str]]
    audience: str | None
    allowed_hosts: list[str]
    version: int
    redirect_uri: str
    login_url: str
    logout_url: str


def sso_out(snapshot: SsoSnapshot, settings: Settings, slug: str) -> SsoOut:
    """The connection as configured, with the URLs the tenant gives its identity provider."""
    base = f"{settings.issuer}/auth/{slug}"
    return SsoOut(
        snapshot.tenant_id,
        snapshot.issuer,
        snapshot.client_id,
        list(snapshot.allowed_domains),
        snapshot.jit,
        {group: list(roles) for group, roles in snapshot.group_roles.items()},
        snapshot.audience,
        list(snapshot.allowed_hosts),
        snapshot.version,
        redirect_uri=f"{base}/callback",
        login_url=f"{base}/login",
        logout_url=f"{base}/logout",
    )


async def configure_sso(
    commands: Commands, sso_runtime: SsoRuntime, tenant_id: UUID, data: SsoIn
) -> Outcome[SsoSnapshot]:
    """Configures the tenant's connection (the API's PUT and the admin page alike): the issuer
    looked at first, the client secret sealed before the command, the issuer directory
    forgotten after it."""
    try:
        # A first look at the form; the real guard checks addresses when connecting.
        sso_runtime.providers.policy.check_url(data.issuer.strip())
    except OutboundError as error:
        raise RuleViolated(f"the issuer is refused: {error}", field="issuer") from None
    sealed = (
        seal_client_secret(sso_runtime.box, tenant_id, data.client_secret)
        if data.client_secret
        else None
    )
    command = ConfigureSso(
        issuer=data.issuer,
        client_id=data.client_id,
        sealed_secret=sealed,
        allowed_domains=tuple(data.allowed_domains),
        jit=data.jit,
        group_roles={g: tuple(str(r) for r in roles) for g, roles in data.group_roles.items()},
        audience=data.audience,
        allowed_hosts=tuple(data.allowed_hosts),
    )
    outcome = await commands.run(command)
    sso_runtime.directory.invalidate()
    return outcome


class SsoController(Controller):
    path = "/v1/sso"
    tags = ["Single sign-on"]
    security = [{"bearer": []}]
    dependencies = SSO_DEPENDENCIES

    @put(
        "/",
        guards=[requires_tenant, requires_scope(Scope.SSO_ADMIN)],
        operation_id="configureSso",
        summary="Configure sign-in with the tenant's OpenID Connect provider",
        description="The client secret is stored encrypted and never returned. Leave it out "
        "to keep the one configured. The issuer must use https and be on a public host; the "
        "endpoints its discovery document names must be on the issuer's host or in "
        "`allowed_hosts`.",
    )
    async def configure(
        self,
        commands: NamedDependency[Commands],
        app: NamedDependency[TrainingApplication],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        sso_runtime: NamedDependency[SsoRuntime],
        data: JSONBody[SsoIn],
    ) -> Response[SsoOut]:
        tenant_id = principal.tenant_id
        assert tenant_id is not None
        outcome = await configure_sso(commands, sso_runtime, tenant_id, data)
        snapshot: SsoSnapshot = outcome.result
        slug = await sync_to_thread(tenant_slug, app, tenant_id)
        return answer(outcome, sso_out(snapshot, settings, slug), version=snapshot.version)

    @get(
        "/",
        guards=[requires_tenant, requires_scope(Scope.SSO_ADMIN)],
        operation_id="getSso",
        summary="The tenant's sign-in configuration (no secret)",
    )
    async def read(
        self,
        app: NamedDependency[TrainingApplication],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> SsoOut:
        tenant_id = principal.tenant_id
        assert tenant_id is not None
        connection = await _configured_connection(app, tenant_id)
        slug = await sync_to_thread(tenant_slug, app, tenant_id)
        return sso_out(SsoSnapshot.of(connection), settings, slug)


# ------------------------------------------------------------------ the code flow


class SignedIn(msgspec.Struct):
    member_id: UUID
    tenant_id: UUID
    expires_at: int


def _tenant_id_of_slug(slug: str) -> UUID:
    if not SLUG_PATTERN.match(slug):
        raise NotFoundException(detail="no such tenant")
    return Tenant.create_id(slug)


def _redirect_uri(settings: Settings, slug: str) -> str:
    return f"{settings.issuer}/auth/{slug}/callback"


async def _configured_connection(app: TrainingApplication, tenant_id: UUID) -> SsoConnection:
    """The tenant's connection; 404 when the tenant has none (or is suspended)."""
    connection = await sync_to_thread(sso_connection, app, tenant_id)
    if connection is None:
        raise NotFoundException(detail="single sign-on is not configured for this tenant")
    return connection


async def _provider_metadata(runtime: SsoRuntime, connection: SsoConnection) -> dict[str, Any]:
    """The IdP's discovery document; 502 when it cannot be had."""
    try:
        return await runtime.providers.discovery(connection.issuer, issuer_context(connection))
    except OidcError:
        # What went wrong is logged; the person is told nothing about the IdP's network.
        raise HTTPException(status_code=502, detail=IDP_UNAVAILABLE) from None


@get(
    "/auth/{tenant_slug:str}/login",
    operation_id="ssoLogin",
    summary="Sign in with the tenant's identity provider (redirects to it)",
    tags=["Single sign-on"],
    include_in_schema=False,  # browser redirects, no bearer (documented in the README)
    status_code=302,
    dependencies=SSO_DEPENDENCIES,
)
async def sso_login(
    app: NamedDependency[TrainingApplication],
    settings: NamedDependency[Settings],
    sso_runtime: NamedDependency[SsoRuntime],
    tenant_slug: FromPath[str],
    next_path: Annotated[str | None, QueryParameter(name="next", max_length=2048)] = None,
) -> Response[Any]:
    tenant_id = _tenant_id_of_slug(tenant_slug)
    connection = await _configured_connection(app, tenant_id)
    meta = await _provider_metadata(sso_runtime, connection)
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(24)
    state = secrets.token_urlsafe(32)
    url = prepare_grant_uri(
        meta["authorization_endpoint"],
        client_id=connection.client_id,
        response_type="code",
        redirect_uri=_redirect_uri(settings, tenant_slug),
        scope=SCOPE,
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    pending = {
        "tenant_id": str(tenant_id),
        "slug": tenant_slug,
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "challenge": create_s256_code_challenge(verifier),
        # Where the person goes once signed in: a path of this site only.
        "next": safe_next(next_path),
    }
    response: Response[Any] = Redirect(url, status_code=302)
    response.set_cookie(
        PENDING_COOKIE,
        sso_runtime.cookies.seal(PENDING_PURPOSE, pending, PENDING_TTL),
        max_age=PENDING_TTL,
        path="/auth/",
        httponly=True,
        secure=secure_cookies(settings),
        samesite="lax",
    )
    return response


def validate_id_token(
    token: Any, connection: SsoConnection, *, nonce: str, access_token: str | None
) -> dict[str, Any]:
    """iss, aud (our client id), exp, iat, nonce and at_hash of a verified ID token."""
    claims = CodeIDToken(
        dict(token.claims),
        dict(token.header),
        {"iss": {"essential": True, "values": [connection.issuer]}, "sub": {"essential": True}},
        {"nonce": nonce, "client_id": connection.client_id, "access_token": access_token},
    )
    try:
        claims.validate(leeway=ID_TOKEN_LEEWAY)
    except (JoseError, ValueError) as error:
        raise NotAuthorizedException(detail=f"the ID token was refused: {error}") from None
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if connection.client_id not in audiences:
        raise NotAuthorizedException(detail="the ID token is for another client")
    if not claims.get("nonce") or not hmac.compare_digest(str(claims["nonce"]), nonce):
        raise NotAuthorizedException(detail="the ID token's nonce does not match")
    return dict(claims)


@get(
    "/auth/{tenant_slug:str}/callback",
    operation_id="ssoCallback",
    summary="Where the identity provider sends the person back; starts a session",
    tags=["Single sign-on"],
    include_in_schema=False,  # browser redirects, no bearer (documented in the README)
    dependencies=SSO_DEPENDENCIES,
)
async def sso_callback(
    request: Request[Any, Any, Any],
    app: NamedDependency[TrainingApplication],
    reads: NamedDependency[Reads],
    command_bus: NamedDependency[CommandBus],
    settings: NamedDependency[Settings],
    sso_runtime: NamedDependency[SsoRuntime],
    tenant_slug: FromPath[str],
    code: Annotated[str | None, QueryParameter(name="code", max_length=4096)] = None,
    oidc_state: Annotated[str | None, QueryParameter(name="state", max_length=1024)] = None,
    error: Annotated[str | None, QueryParameter(name="error", max_length=1024)] = None,
) -> Response[Any]:
    pending = sso_runtime.cookies.open(PENDING_PURPOSE, request.cookies.get(PENDING_COOKIE, ""))
    if pending is None:
        raise NotAuthorizedException(detail="no sign-in is in progress (or it expired)")
    if error:
        raise NotAuthorizedException(detail=f"the identity provider refused: {error[:100]}")
    if not SLUG_PATTERN.match(tenant_slug):
        raise NotAuthorizedException(detail="the sign-in was started for another tenant")
    tenant_id = Tenant.create_id(tenant_slug)
    if pending.get("tenant_id") != str(tenant_id) or pending.get("slug") != tenant_slug:
        raise NotAuthorizedException(detail="the sign-in was started for another tenant")
    state = oidc_state or ""
    if not state or not hmac.compare_digest(state, str(pending.get("state", ""))):
        raise NotAuthorizedException(detail="the state does not match the sign-in in progress")
    if not code:
        raise NotAuthorizedException(detail="the identity provider sent no code")
    verifier = str(pending.get("verifier", ""))
    # The mock IdP (and some real ones) do not enforce PKCE: we check that the verifier we
    # are about to send is the one whose challenge went out with the authorization request.
    if not hmac.compare_digest(
        create_s256_code_challenge(verifier), str(pending.get("challenge", ""))
    ):
        raise NotAuthorizedException(detail="the PKCE verifier does not match the challenge")
    connection = await sync_to_thread(sso_connection, app, tenant_id)
    if connection is None:
        raise NotAuthorizedException(detail="single sign-on is not configured for this tenant")
    meta = await _provider_metadata(sso_runtime, connection)
    try:
        secret = open_client_secret(sso_runtime.box, tenant_id, connection.sealed_secret)
    except OidcError as failure:
        log.warning("sso.client_secret_unreadable", tenant_id=str(tenant_id), reason=failure.reason)
        raise NotAuthorizedException(detail=str(failure)) from None
    context = issuer_context(connection)
    try:
        token = await sso_runtime.providers.exchange_code(
            connection.issuer,
            client_id=connection.client_id,
            client_secret=secret,
            code=code,
            redirect_uri=_redirect_uri(settings, tenant_slug),
            code_verifier=verifier,
            context=context,
        )
    except OidcError as failure:  # its message names nothing of the IdP; the log has it
        raise NotAuthorizedException(detail=str(failure)) from None
    raw_id_token = token.get("id_token")
    if not isinstance(raw_id_token, str) or not raw_id_token:
        raise NotAuthorizedException(detail="the identity provider sent no ID token")
    access_token = token.get("access_token")
    try:
        verified = await sso_runtime.providers.decode(
            raw_id_token, connection.issuer, OidcProviders.algorithms(meta), context
        )
    except OidcError as failure:
        raise NotAuthorizedException(detail=str(failure)) from None
    claims = validate_id_token(
        verified,
        connection,
        nonce=str(pending["nonce"]),
        access_token=access_token if isinstance(access_token, str) else None,
    )
    # No one is signed in yet: a member provisioned now is registered by the system.
    member_id = await member_for(
        app, reads.store, command_bus, connection, claims, request_id_of(request)
    )
    expires_at = int(time.time()) + SESSION_TTL
    response: Response[Any]
    if _wants_page(request):
        # A person in a browser lands on the app, where the sign-in began.
        response = Redirect(safe_next(str(pending.get("next") or "/")), status_code=303)
    else:
        response = Response(SignedIn(member_id, tenant_id, expires_at))
    start_session(response, sso_runtime, settings, member_id, tenant_id)
    response.delete_cookie(PENDING_COOKIE, path="/auth/")
    return response


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    """A browser's navigation (it asks for HTML first), not an API client."""
    return request.accept.best_match(["application/json", "text/html"]) == "text/html"


@post(
    "/auth/{tenant_slug:str}/logout",
    operation_id="ssoLogout",
    summary="Sign out; redirects (303) to the identity provider's sign-out when it has one",
    tags=["Single sign-on"],
    include_in_schema=False,  # browser redirects, no bearer (documented in the README)
    status_code=303,
    dependencies=SSO_DEPENDENCIES,
)
async def sso_logout(
    app: NamedDependency[TrainingApplication],
    sso_runtime: NamedDependency[SsoRuntime],
    tenant_slug: FromPath[str],
) -> Response[Any]:
    tenant_id = _tenant_id_of_slug(tenant_slug)
    connection = await sync_to_thread(sso_connection, app, tenant_id)
    end_session = None
    if connection is not None:
        try:
            meta = await sso_runtime.providers.discovery(
                connection.issuer, issuer_context(connection)
            )
        except OidcError:
            meta = {}
        end_session = meta.get("end_session_endpoint")
    response: Response[Any]
    if isinstance(end_session, str) and end_session:
        assert connection is not None
        separator = "&" if "?" in end_session else "?"
        query = urlencode({"client_id": connection.client_id})
        response = Redirect(f"{end_session}{separator}{query}", status_code=303)
    else:
        response = Response(None, status_code=204)
    clear_session(response)
    return response


ROUTES: list[Any] = [SsoController, sso_login, sso_callback, sso_logout]
