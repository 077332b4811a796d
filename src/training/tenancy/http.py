"""Tenancy over HTTP: the operator manages tenants and API clients; a tenant reads its own."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from training.core.errors import NotFound
from training.core.http.commands import Commands, answer
from training.core.http.params import Cursor, IfMatch, Limit, etag, expected_version, text
from training.core.http.principal import (
    Principal,
    operator_only,
    operator_or_tenant_admin,
    requires_scope,
)
from training.core.http.reads import Reads
from training.core.pagination import DEFAULT_LIMIT
from training.infra.settings import Settings
from training.tenancy import views as queries
from training.tenancy.domain import MAX_NAME_LENGTH, MAX_SEAT_LIMIT, TENANT_SCOPES
from training.tenancy.handlers import (
    IssuedCredentials,
    ReactivateTenant,
    RegisterApiClient,
    RegisterTenant,
    RevokeApiClient,
    SuspendTenant,
    TenantSnapshot,
    UpdateTenant,
)
from training.tenancy.views import TENANCY

Slug = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$",
        description="lower-case letters, digits and inner hyphens",
    ),
]
Name = Annotated[str, text(max_length=MAX_NAME_LENGTH)]
SeatLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_SEAT_LIMIT)]
Reason = Annotated[str, text(max_length=500)]


class TenantIn(msgspec.Struct, forbid_unknown_fields=True):
    slug: Slug
    name: Name
    seat_limit: SeatLimit


class TenantPatch(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    seat_limit: SeatLimit | None = None


class SuspensionIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class ReactivationIn(msgspec.Struct, forbid_unknown_fields=True):
    pass


class ClientIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    scopes: Annotated[list[str], msgspec.Meta(min_length=1, max_length=len(TENANT_SCOPES))]


class TenantOut(msgspec.Struct):
    tenant_id: UUID
    slug: str
    name: str
    seat_limit: int
    status: str
    version: int


class ClientCredentialsOut(msgspec.Struct):
    """Shown once: the secret is stored only as a hash."""

    client_id: str
    client_secret: str
    tenant_id: UUID | None
    scopes: list[str]
    token_endpoint: str


class TenantPage(msgspec.Struct):
    items: list[queries.TenantRecord]
    next_cursor: str | None


class ClientPage(msgspec.Struct):
    items: list[queries.ApiClientRecord]
    next_cursor: str | None


def tenant_out(snapshot: TenantSnapshot) -> TenantOut:
    return TenantOut(
        snapshot.tenant_id,
        snapshot.slug,
        snapshot.name,
        snapshot.seat_limit,
        snapshot.status,
        snapshot.version,
    )


def _visible_tenant(principal: Principal, tenant_id: UUID) -> None:
    """A tenant's principal sees only its own tenant; any other is simply not found."""
    if not principal.is_operator and principal.tenant_id != tenant_id:
        raise NotFound(f"tenant {tenant_id} not found")


class TenantController(Controller):
    path = "/v1/tenants"
    tags = ["Tenants"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[operator_only],
        operation_id="registerTenant",
        summary="Register a tenant",
        status_code=201,
    )
    async def register(
        self, commands: NamedDependency[Commands], data: JSONBody[TenantIn]
    ) -> Response[TenantOut]:
        outcome = await commands.run(RegisterTenant(data.slug, data.name, data.seat_limit))
        body = tenant_out(outcome.result)
        location = f"/v1/tenants/{body.tenant_id}"
        return answer(outcome, body, status=201, version=body.version, location=location)

    @get("/", guards=[operator_only], operation_id="listTenants", summary="List tenants")
    async def list_tenants(
        self,
        reads: NamedDependency[Reads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        status: Annotated[
            str | None, QueryParameter(name="status", pattern="^(active|suspended)$")
        ] = None,
    ) -> TenantPage:
        await reads.after([TENANCY.info])
        async with reads.session() as conn:
            page = await queries.list_tenants(conn, limit=limit, cursor=cursor, status=status)
        return TenantPage(page.items, page.next_cursor)

    @get(
        "/{tenant_id:uuid}",
        guards=[requires_scope("tenant:read", operator=True)],
        operation_id="getTenant",
        summary="Read a tenant",
    )
    async def get_tenant(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        tenant_id: FromPath[UUID],
    ) -> Response[queries.TenantRecord]:
        _visible_tenant(principal, tenant_id)
        await reads.after([TENANCY.info])
        async with reads.session() as conn:
            record = await queries.get_tenant(conn, tenant_id)
        if record is None:
            raise NotFound(f"tenant {tenant_id} not found")
        return Response(record, headers={"ETag": etag(record.version)})

    @patch(
        "/{tenant_id:uuid}",
        guards=[operator_only],
        operation_id="updateTenant",
        summary="Rename a tenant or change its seat limit",
    )
    async def update(
        self,
        commands: NamedDependency[Commands],
        tenant_id: FromPath[UUID],
        data: JSONBody[TenantPatch],
        if_match: IfMatch = None,
    ) -> Response[TenantOut]:
        command = UpdateTenant(tenant_id, data.name, data.seat_limit, expected_version(if_match))
        outcome = await commands.run(command)
        body = tenant_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @post(
        "/{tenant_id:uuid}/suspend",
        guards=[operator_only],
        operation_id="suspendTenant",
        summary="Suspend a tenant: its tokens stop working at once",
        status_code=200,
    )
    async def suspend(
        self,
        commands: NamedDependency[Commands],
        tenant_id: FromPath[UUID],
        data: JSONBody[SuspensionIn],
        if_match: IfMatch = None,
    ) -> Response[TenantOut]:
        outcome = await commands.run(
            SuspendTenant(tenant_id, data.reason, expected_version(if_match))
        )
        body = tenant_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @post(
        "/{tenant_id:uuid}/reactivate",
        guards=[operator_only],
        operation_id="reactivateTenant",
        summary="Reactivate a suspended tenant",
        status_code=200,
    )
    async def reactivate(
        self,
        commands: NamedDependency[Commands],
        tenant_id: FromPath[UUID],
        data: JSONBody[ReactivationIn],
        if_match: IfMatch = None,
    ) -> Response[TenantOut]:
        outcome = await commands.run(ReactivateTenant(tenant_id, expected_version(if_match)))
        body = tenant_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @post(
        "/{tenant_id:uuid}/clients",
        guards=[operator_or_tenant_admin],
        operation_id="registerApiClient",
        summary="Register an API client; the secret is shown only in this response",
        description="The platform operator, or an administrator of the tenant signed in (a "
        "member token with the `tenant_admin` role; never an integration client). Only a hash "
        "of the secret is kept. With an `Idempotency-Key`, a retry "
        "within the replay window (24 hours, `TRAINING_IDEMPOTENCY_TTL`) answers the same "
        "response, secret included, so a client that lost the answer is not left with a "
        "client it cannot use: the stored response is encrypted with the service's key "
        "(AES-GCM, bound to the caller and the key) and deleted when the window ends.",
        status_code=201,
    )
    async def register_client(
        self,
        commands: NamedDependency[Commands],
        settings: NamedDependency[Settings],
        tenant_id: FromPath[UUID],
        data: JSONBody[ClientIn],
    ) -> Response[ClientCredentialsOut]:
        outcome = await commands.run(RegisterApiClient(tenant_id, data.name, tuple(data.scopes)))
        issued: IssuedCredentials = outcome.result
        body = ClientCredentialsOut(
            issued.client_id,
            issued.client_secret,
            issued.tenant_id,
            list(issued.scopes),
            f"{settings.issuer}/oauth2/token",
        )
        response = answer(outcome, body, status=201, version=issued.version)
        response.headers["Cache-Control"] = "no-store"
        return response

    @get(
        "/{tenant_id:uuid}/clients",
        guards=[requires_scope("clients:read", operator=True)],
        operation_id="listApiClients",
        summary="List a tenant's API clients",
    )
    async def list_clients(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        tenant_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> ClientPage:
        _visible_tenant(principal, tenant_id)
        await reads.after([TENANCY.info])
        async with reads.session() as conn:
            if principal.is_operator and await queries.get_tenant(conn, tenant_id) is None:
                raise NotFound(f"tenant {tenant_id} not found")
            page = await queries.list_clients(conn, tenant_id, limit=limit, cursor=cursor)
        return ClientPage(page.items, page.next_cursor)

    @delete(
        "/{tenant_id:uuid}/clients/{client_id:str}",
        guards=[operator_or_tenant_admin],
        operation_id="revokeApiClient",
        summary="Revoke an API client (the operator, or an administrator of the tenant)",
        status_code=204,
    )
    async def revoke_client(
        self,
        commands: NamedDependency[Commands],
        tenant_id: FromPath[UUID],
        client_id: FromPath[str],
    ) -> Response[None]:
        outcome = await commands.run(RevokeApiClient(tenant_id, client_id))
        return answer(outcome, None, status=204)


ROUTES = [TenantController]
