"""Tenancy use cases: the operator registers and manages tenants and their API clients."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from training.core.bus import Handler, UnitOfWork
from training.core.context import ActorKind
from training.core.credentials import hash_secret, new_client_id, new_secret
from training.core.errors import AlreadyExists, Forbidden, NotFound
from training.skills.queries import start_framework
from training.tenancy.domain import ApiClient, Tenant


@dataclass(frozen=True)
class RegisterTenant:
    slug: str
    name: str
    seat_limit: int


@dataclass(frozen=True)
class UpdateTenant:
    tenant_id: UUID
    name: str | None = None
    seat_limit: int | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class SuspendTenant:
    tenant_id: UUID
    reason: str
    expected_version: int | None = None


@dataclass(frozen=True)
class ReactivateTenant:
    tenant_id: UUID
    expected_version: int | None = None


@dataclass(frozen=True)
class RegisterApiClient:
    """``tenant_id=None`` registers an operator client (the CLI does this)."""

    tenant_id: UUID | None
    name: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class RevokeApiClient:
    tenant_id: UUID | None
    client_id: str


@dataclass(frozen=True)
class TenantSnapshot:
    """The tenant as the command left it, for the command's response."""

    tenant_id: UUID
    slug: str
    name: str
    seat_limit: int
    status: str
    version: int

    @classmethod
    def of(cls, tenant: Tenant) -> TenantSnapshot:
        return cls(
            tenant.id,
            tenant.slug,
            tenant.name,
            tenant.seat_limit,
            str(tenant.status),
            tenant.version,
        )


@dataclass(frozen=True)
class IssuedCredentials:
    """The only time the secret exists in clear: it goes back to the caller and nowhere else."""

    client_id: str
    client_secret: str
    tenant_id: UUID | None
    scopes: tuple[str, ...]
    version: int


def _require_platform(uow: UnitOfWork) -> None:
    if not uow.context.is_platform:
        raise Forbidden("only the platform operator may do this")


def register_tenant(command: RegisterTenant, uow: UnitOfWork) -> TenantSnapshot:
    _require_platform(uow)
    if uow.exists(Tenant.create_id(command.slug)):
        raise AlreadyExists(f"a tenant with slug {command.slug!r} exists", field="slug")
    tenant = Tenant.register(command.slug, command.name, command.seat_limit)
    uow.add(tenant)
    # Every tenant starts from the default skill framework of this release.
    uow.add(start_framework(tenant.id))
    return TenantSnapshot.of(tenant)


def update_tenant(command: UpdateTenant, uow: UnitOfWork) -> TenantSnapshot:
    _require_platform(uow)
    tenant = uow.get(Tenant, command.tenant_id, expected_version=command.expected_version)
    if command.name is not None:
        tenant.rename(command.name)
    if command.seat_limit is not None:
        tenant.change_seat_limit(command.seat_limit)
    return TenantSnapshot.of(tenant)


def suspend_tenant(command: SuspendTenant, uow: UnitOfWork) -> TenantSnapshot:
    _require_platform(uow)
    tenant = uow.get(Tenant, command.tenant_id, expected_version=command.expected_version)
    tenant.suspend(command.reason)
    return TenantSnapshot.of(tenant)


def reactivate_tenant(command: ReactivateTenant, uow: UnitOfWork) -> TenantSnapshot:
    _require_platform(uow)
    tenant = uow.get(Tenant, command.tenant_id, expected_version=command.expected_version)
    tenant.reactivate()
    return TenantSnapshot.of(tenant)


def _require_platform_or_own_tenant(uow: UnitOfWork, tenant_id: UUID | None) -> None:
    """The operator, or a person of the tenant itself (the route lets only its administrators
    in); another tenant's clients are reported missing, as anything of another tenant is."""
    if uow.context.is_platform:
        return
    actor = uow.context.actor
    if actor.kind is not ActorKind.MEMBER or tenant_id is None:
        raise Forbidden("only the platform operator or a tenant administrator may do this")
    if uow.context.tenant_id != tenant_id:
        raise NotFound(f"tenant {tenant_id} not found")


def register_api_client(command: RegisterApiClient, uow: UnitOfWork) -> IssuedCredentials:
    _require_platform_or_own_tenant(uow, command.tenant_id)
    if command.tenant_id is not None:
        uow.get(Tenant, command.tenant_id)  # the tenant must exist
    client_id = new_client_id(operator=command.tenant_id is None)
    secret = new_secret()
    client = ApiClient.register(
        client_id=client_id,
        tenant_id=command.tenant_id,
        name=command.name,
        scopes=command.scopes,
        secret_hash=hash_secret(secret),
    )
    uow.add(client)
    return IssuedCredentials(client_id, secret, client.tenant_id, client.scopes, client.version)


def revoke_api_client(command: RevokeApiClient, uow: UnitOfWork) -> int:
    _require_platform_or_own_tenant(uow, command.tenant_id)
    client = uow.get(ApiClient, ApiClient.create_id(command.client_id))
    if client.tenant_id != command.tenant_id:
        # The client exists but under another tenant: the same answer as a missing one.
        raise NotFound(f"client {command.client_id} not found")
    client.revoke()
    return int(client.version)


HANDLERS: dict[type, Handler] = {
    RegisterTenant: register_tenant,
    UpdateTenant: update_tenant,
    SuspendTenant: suspend_tenant,
    ReactivateTenant: reactivate_tenant,
    RegisterApiClient: register_api_client,
    RevokeApiClient: revoke_api_client,
}


# Queries on the write model. Credentials are checked against the event store, not a read
# model, so a suspension or a revocation is in force the moment it is saved.
