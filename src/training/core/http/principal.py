"""The caller of a request and the guards that say what it may call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from training.core.access import Role
from training.core.context import Actor, ActorKind, CommandContext


@dataclass(frozen=True)
class Principal:
    """The caller: the operator, a tenant's API client, or a member (a person)."""

    kind: ActorKind
    subject: str
    tenant_id: UUID | None
    scopes: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[Role] = field(default_factory=frozenset)

    @property
    def is_operator(self) -> bool:
        return self.kind is ActorKind.OPERATOR

    @property
    def member_id(self) -> UUID | None:
        return UUID(self.subject) if self.kind is ActorKind.MEMBER else None

    def is_member(self, member_id: UUID) -> bool:
        return self.member_id == member_id

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def context(self, request_id: str) -> CommandContext:
        return CommandContext(Actor(self.kind, self.subject), request_id, self.tenant_id)


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]


def operator_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    principal: Principal = connection.user
    if not principal.is_operator:
        raise PermissionDeniedException(detail="this needs the platform operator")


def operator_or_tenant_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """The platform operator, or a person signed in as their tenant's administrator (never an
    integration client: a person answers for what the audit log then shows)."""
    principal: Principal = connection.user
    if principal.is_operator:
        return
    if principal.member_id is not None and Role.TENANT_ADMIN in principal.roles:
        return
    raise PermissionDeniedException(
        detail="this needs the platform operator or a tenant administrator signed in"
    )


def requires_scope(scope: str, *, operator: bool = False) -> Guard:
    """A tenant's client or member with ``scope``; the operator too when ``operator``.

    Tenant data is reached with tenant credentials only: the operator passes only where the
    endpoint also serves the platform (its own catalogue, the tenants themselves).
    """

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal: Principal = connection.user
        if principal.is_operator:
            if not operator:
                raise PermissionDeniedException(detail="this needs a tenant's credentials")
            return
        if not principal.has_scope(scope):
            raise PermissionDeniedException(detail=f"this needs the scope '{scope}'")

    return guard


def requires_tenant(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Any authenticated caller of a tenant (the check of what they may see comes later)."""
    principal: Principal = connection.user
    if principal.tenant_id is None:
        raise PermissionDeniedException(detail="this needs a tenant's credentials")


# Routes that answer without a token.
PUBLIC_PATHS = (
    "^/healthz$",
    "^/readyz$",
    "^/oauth2/token$",
    "^/\\.well-known/",
    "^/schema",
    "^/calendar/",
    "^/scim/",  # SCIM authenticates its own requests (api/scim.py)
    "^/auth/",  # single sign-on: the code flow (api/sso.py)
)
