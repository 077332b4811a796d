"""The SCIM request being served: who provisions which tenant, and what it works with.

scim2-server calls the storage with resources only, so the mount puts the call in a context
variable that Users and Groups read. The mount authenticates the caller itself: the bearer
token must be an access token of an API client of the tenant in the URL, holding the scope
``scim``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from litestar.concurrency import sync_to_thread
from psycopg import AsyncConnection
from scim2_models import ForbiddenException, UnauthorizedException

from training.core.access import Scope as AccessScope
from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.http.commands import Commands
from training.core.http.ratelimit import SharedBuckets
from training.core.http.reads import Reads
from training.core.idempotency_store import IdempotencyStore
from training.core.read_store import ViewInfo
from training.identity.authentication import (
    TokenRejected,
    principal_from_claims,
    verify_access_token,
)
from training.identity.handlers.scim import newest_position
from training.identity.http.scim.discovery import GroupMapping
from training.identity.keys import KeyRing
from training.infra.settings import Settings
from training.tenancy.queries import credentials_in_force


@dataclass
class ScimCall:
    """Who is provisioning which tenant, and what the app wired that SCIM works with; the
    storage reads it for every operation."""

    app: TrainingApplication
    # The tenant's read models; SCIM clients never send Training-Position (see read_model).
    reads: Reads
    keys: KeyRing
    settings: Settings
    idempotency: IdempotencyStore
    bus: CommandBus
    tenant_id: UUID
    request_id: str
    mapping: GroupMapping
    method: str = "GET"
    rate_limits: SharedBuckets | None = None
    # The authenticated client's command context, once ``authenticate`` accepted it.
    context: CommandContext | None = None

    async def run(self, command: Any) -> Any:
        """Runs ``command`` as the authenticated client; its result."""
        if self.context is None:
            raise UnauthorizedException(detail="send an access token: Authorization: Bearer")
        outcome = await Commands(self.bus, self.context).run(command)
        return outcome.result

    @asynccontextmanager
    async def read_model(self, view: ViewInfo) -> AsyncIterator[AsyncConnection[Any]]:
        """The tenant's session once ``view`` holds every event of the tenant stored so far:
        SCIM clients read right after they write and never send ``Training-Position``. Other
        tenants' events are not waited for (ADR 0028)."""
        head = await sync_to_thread(newest_position, self.app)
        await dataclasses.replace(self.reads, sent_position=lambda: head).after([view])
        async with self.reads.session() as conn:
            yield conn


_CALL: ContextVar[ScimCall] = ContextVar("scim_call")


def current_call() -> ScimCall:
    return _CALL.get()


@asynccontextmanager
async def serving(call: ScimCall) -> AsyncIterator[None]:
    """``call`` is the current call while the SCIM application serves it."""
    token = _CALL.set(call)
    try:
        yield
    finally:
        _CALL.reset(token)


async def authenticate(call: ScimCall, authorization: str | None) -> CommandContext:
    """The caller must be an API client of the tenant in the URL, holding the scope scim."""
    scheme, _, raw = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise UnauthorizedException(detail="send an access token: Authorization: Bearer <token>")
    try:
        claims = await sync_to_thread(
            verify_access_token,
            raw.strip(),
            call.keys,
            issuer=call.settings.issuer,
            audience=call.settings.audience,
        )
        principal = principal_from_claims(claims)
    except TokenRejected as error:
        raise UnauthorizedException(detail=str(error)) from None
    if principal.kind is not ActorKind.CLIENT:
        raise ForbiddenException(detail="SCIM takes the token of one of the tenant's API clients")
    refusal = await sync_to_thread(
        credentials_in_force, call.app, principal.subject, principal.tenant_id
    )
    if refusal:
        raise UnauthorizedException(detail=refusal)
    if principal.tenant_id != call.tenant_id:
        raise ForbiddenException(detail="the token belongs to another tenant")
    if not principal.has_scope(AccessScope.SCIM):
        raise ForbiddenException(detail=f"this needs the scope {str(AccessScope.SCIM)!r}")
    structlog.contextvars.bind_contextvars(
        tenant_id=str(call.tenant_id), actor=f"{principal.kind}:{principal.subject}"
    )
    return CommandContext(
        Actor(ActorKind.CLIENT, principal.subject), call.request_id, call.tenant_id
    )
