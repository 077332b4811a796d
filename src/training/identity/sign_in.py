"""Finding the member a sign-in stands for, and the SSO runtime (providers, sealed cookies) that
sign-in and token authentication share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Response
from litestar.concurrency import sync_to_thread
from litestar.datastructures import State
from litestar.exceptions import (
    PermissionDeniedException,
)

from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.errors import AlreadyExists
from training.core.read_store import ReadStore
from training.identity.domain import SsoConnection
from training.identity.handlers.sso import (
    SESSION_COOKIE,
    SESSION_PURPOSE,
    SESSION_TTL,
    SsoDirectory,
    first_member_in_force,
    jit_external_id,
)
from training.identity.oidc import (
    CookieSealer,
    IssuerContext,
    OidcProviders,
    member_ids_with_email,
)
from training.infra.outbound import OutboundPolicy
from training.infra.secretbox import SecretBox
from training.infra.settings import Settings
from training.people.domain.members import MAX_DISPLAY_NAME, generated_external_id
from training.people.handlers.members import RegisterMember
from training.people.queries import member_with_external_id
from training.people.views import member_with_sso_subject


@dataclass
class SsoRuntime:
    """Process-wide sign-in state: IdP caches, the issuer directory, cookie sealing."""

    box: SecretBox
    providers: OidcProviders
    directory: SsoDirectory
    cookies: CookieSealer


def runtime_of(state: State, settings: Settings) -> SsoRuntime:
    """The runtime kept on the web application's state, made on first use."""
    runtime: SsoRuntime | None = getattr(state, "sso_runtime", None)
    if runtime is None:
        box = SecretBox.from_settings(settings)
        directory = SsoDirectory()

        def context_of(issuer: str) -> IssuerContext:
            # Bearer tokens: the directory has just found the connections trusting the issuer.
            return issuer_context(*directory.last_found(issuer))

        providers = OidcProviders(
            policy=OutboundPolicy(development=settings.is_development),
            issuer_context=context_of,
        )
        runtime = SsoRuntime(box, providers, directory, CookieSealer(box))
        state.sso_runtime = runtime
    return runtime


def issuer_context(*connections: SsoConnection) -> IssuerContext:
    return IssuerContext.of(
        [c.tenant_id for c in connections if c.tenant_id is not None],
        [host for c in connections for host in c.allowed_hosts],
    )


def email_of(claims: dict[str, Any]) -> str | None:
    """The person's email: ``email``, else a ``sub`` that is an email address."""
    for name in ("email", "sub"):
        value = claims.get(name)
        if isinstance(value, str) and "@" in value:
            return value.strip().lower()
    return None


async def find_member(
    app: TrainingApplication,
    store: ReadStore,
    connection: SsoConnection,
    claims: dict[str, Any],
) -> tuple[UUID | None, str | None, str]:
    """The member the claims name (by email) in the connection's tenant, why not, the email.

    Emails are personal data, read in ``store``; whether the member may act now is read from
    the event store (``app``), where a deactivation is in force as soon as it is saved."""
    tenant_id = connection.tenant_id
    assert tenant_id is not None
    email = email_of(claims)
    if email is None:
        return await _member_by_directory_id(app, tenant_id, claims)
    if claims.get("email_verified") is False:
        return None, "the identity provider has not verified the email", email
    if not connection.allows_email(email):
        return None, "the email's domain is not allowed for this tenant", email
    async with store.session(tenant_id, primary=True) as conn:
        candidates = await member_ids_with_email(conn, tenant_id, email)
    member_id, refusal = await sync_to_thread(first_member_in_force, app, tenant_id, candidates)
    if member_id is None and candidates:
        return None, refusal, email
    return member_id, None, email


async def _member_by_directory_id(
    app: TrainingApplication, tenant_id: UUID, claims: dict[str, Any]
) -> tuple[UUID | None, str | None, str]:
    for name in DIRECTORY_ID_CLAIMS:
        value = claims.get(name)
        if not isinstance(value, str) or not value or "@" in value:
            continue
        found = await sync_to_thread(member_with_external_id, app, tenant_id, value)
        if found is None:
            continue
        member_id, refusal = await sync_to_thread(first_member_in_force, app, tenant_id, [found])
        return member_id, refusal, ""
    return (
        None,
        "the identity provider sent no email, and no member's external id is the token's oid "
        "or sub (add an email claim, or provision members over SCIM with that id)",
        "",
    )


async def member_for(
    app: TrainingApplication,
    store: ReadStore,
    bus: CommandBus,
    connection: SsoConnection,
    claims: dict[str, Any],
    request_id: str,
) -> UUID:
    """The member a completed sign-in stands for; with just-in-time provisioning on, one the
    system registers (``bus``) when no member has the email yet. 403 when no member may."""
    member_id, refusal, email = await find_member(app, store, connection, claims)
    if member_id is not None:
        return member_id
    if refusal is not None:
        raise PermissionDeniedException(detail=refusal)
    if not connection.jit:
        raise PermissionDeniedException(
            detail="no member of this tenant has this email (ask an administrator)"
        )
    tenant_id = connection.tenant_id
    assert tenant_id is not None
    subject = str(claims["sub"])
    known = await _provisioned_before(app, store, tenant_id, subject)
    if known is not None:
        return known
    groups = claims.get("groups")
    roles = connection.roles_for([str(g) for g in groups] if isinstance(groups, list) else [])
    name = str(claims.get("name") or email).strip()[:MAX_DISPLAY_NAME] or email
    context = CommandContext(Actor(ActorKind.SYSTEM, "sso"), request_id, tenant_id)
    # The external id is opaque: the subject may be an email, so it is kept with the personal
    # data (and erased with it), never in an event.
    command = RegisterMember(generated_external_id(), name, email, roles, sso_subject=subject)
    try:
        outcome = await sync_to_thread(bus.execute, context, command)
    except AlreadyExists:
        # A sign-in of the same person provisioned them a moment ago.
        again, refusal, _ = await find_member(app, store, connection, claims)
        found = again or await _provisioned_before(app, store, tenant_id, subject)
        if found is None:
            raise PermissionDeniedException(detail=refusal or "the member is unknown") from None
        return found
    member: UUID = outcome.result.member_id
    return member


async def _provisioned_before(
    app: TrainingApplication, store: ReadStore, tenant_id: UUID, subject: str
) -> UUID | None:
    """The member provisioned at an earlier sign-in with this subject (under another email),
    when they may sign in; 403 when they may not. Members provisioned before subjects were
    kept with the personal data carry ``sso:<subject>`` as external id."""
    async with store.session(tenant_id, primary=True) as conn:
        existing = await member_with_sso_subject(conn, subject)
    if existing is None:
        existing = await sync_to_thread(
            member_with_external_id, app, tenant_id, jit_external_id(subject)
        )
    if existing is None:
        return None
    found, why = await sync_to_thread(first_member_in_force, app, tenant_id, [existing])
    if found is None:
        raise PermissionDeniedException(detail=why or "the member is unknown")
    return found


# Access tokens of some identity providers carry no email by default (Entra ID's carry
# ``oid``, ``sub``, ``upn``): a member provisioned over SCIM with the directory's object id as
# ``externalId`` is found by it, without asking the tenant to add an email claim.
DIRECTORY_ID_CLAIMS = ("oid", "sub")


def start_session(
    response: Response[Any],
    runtime: SsoRuntime,
    settings: Settings,
    member_id: UUID,
    tenant_id: UUID,
) -> None:
    """Signs the person in on ``response``: a sealed session cookie the API and the pages
    accept like a member's token (HttpOnly, SameSite=Lax, Secure outside development),
    valid for ``SESSION_TTL``."""
    session = {"member_id": str(member_id), "tenant_id": str(tenant_id)}
    response.set_cookie(
        SESSION_COOKIE,
        runtime.cookies.seal(SESSION_PURPOSE, session, SESSION_TTL),
        max_age=SESSION_TTL,
        path="/",
        httponly=True,
        secure=secure_cookies(settings),
        samesite="lax",
    )


def clear_session(response: Response[Any]) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def secure_cookies(settings: Settings) -> bool:
    """Cookies go over https only, except to a development server (plain http)."""
    return not settings.is_development
