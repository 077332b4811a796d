"""Tenancy over HTTP: the operator manages tenants and API clients; a tenant reads its own."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from training.core.errors import NotFound
from training.core.http.services import (
    IfMatch,
    command_headers,
    etag,
    expected_version,
    principal_of,
    read_after,
    run_command,
    services_of,
)
from training.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from training.identity.authentication import operator_only, requires_scope
from training.registry import TENANCY
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

# Text is stored in PostgreSQL, which refuses NUL characters: refuse them at the edge.
NO_NUL = r"^[^\x00]*$"
Slug = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$",
        description="lower-case letters, digits and inner hyphens",
    ),
]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NO_NUL)]
SeatLimit = Annotated[int, msgspec.Meta(ge=1, le=MAX_SEAT_LIMIT)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=NO_NUL)]
Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None,
    QueryParameter(name="cursor", max_length=512, description="next_cursor of the previous page"),
]


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


def _tenant_out(snapshot: TenantSnapshot) -> TenantOut:
    return TenantOut(
        snapshot.tenant_id,
        snapshot.slug,
        snapshot.name,
        snapshot.seat_limit,
        snapshot.status,
        snapshot.version,
    )


def _visible_tenant(request: Request[Any, Any, Any], tenant_id: UUID) -> None:
    """A tenant's principal sees only its own tenant; any other is simply not found."""
    principal = principal_of(request)
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
        self, request: Request[Any, Any, Any], data: JSONBody[TenantIn]
    ) -> Response[TenantOut]:
        outcome = await run_command(request, RegisterTenant(data.slug, data.name, data.seat_limit))
        body = _tenant_out(outcome.result)
        headers = command_headers(outcome, version=body.version)
        headers["Location"] = f"/v1/tenants/{body.tenant_id}"
        return Response(body, status_code=201, headers=headers)

    @get("/", guards=[operator_only], operation_id="listTenants", summary="List tenants")
    async def list_tenants(
        self,
        request: Request[Any, Any, Any],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        status: Annotated[
            str | None, QueryParameter(name="status", pattern="^(active|suspended)$")
        ] = None,
    ) -> TenantPage:
        await read_after(request, [TENANCY.info])
        async with services_of(request).store.session(None) as conn:
            page = await queries.list_tenants(conn, limit=limit, cursor=cursor, status=status)
        return TenantPage(page.items, page.next_cursor)

    @get(
        "/{tenant_id:uuid}",
        guards=[requires_scope("tenant:read", operator=True)],
        operation_id="getTenant",
        summary="Read a tenant",
    )
    async def get_tenant(
        self, request: Request[Any, Any, Any], tenant_id: FromPath[UUID]
    ) -> Response[queries.TenantRecord]:
        _visible_tenant(request, tenant_id)
        await read_after(request, [TENANCY.info])
        principal = principal_of(request)
        async with services_of(request).store.session(principal.tenant_id) as conn:
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
        request: Request[Any, Any, Any],
        tenant_id: FromPath[UUID],
        data: JSONBody[TenantPatch],
        if_match: IfMatch = None,
    ) -> Response[TenantOut]:
        command = UpdateTenant(tenant_id, data.name, data.seat_limit, expected_version(if_match))
        outcome = await run_command(request, command)
        body = _tenant_out(outcome.result)
        return Response(body, headers=command_headers(outcome, version=body.version))

    @post(
        "/{tenant_id:uuid}/suspend",
        guards=[operator_only],
        operation_id="suspendTenant",
        summary="Suspend a tenant: its tokens stop working at once",
        status_code=200,
    )
    async def suspend(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[UUID],
        data: JSONBody[SuspensionIn],
        if_match: IfMatch = None,
    ) -> Response[TenantOut]:
        outcome = await run_command(
            request, SuspendTenant(tenant_id, data.reason, expected_version(if_match))
        )
        body = _tenant_out(outcome.result)
        return Response(body, headers=command_headers(outcome, version=body.version))

    @post(
        "/{tenant_id:uuid}/reactivate",
        guards=[operator_only],
        operation_id="reactivateTenant",
        summary="Reactivate a suspended tenant",
        status_code=200,
    )
    async def reactivate(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[UUID],
        data: JSONBody[ReactivationIn],
        if_match: IfMatch = None,
    ) -> Response[TenantOut]:
        outcome = await run_command(
            request, ReactivateTenant(tenant_id, expected_version(if_match))
        )
        body = _tenant_out(outcome.result)
        return Response(body, headers=command_headers(outcome, version=body.version))

    @post(
        "/{tenant_id:uuid}/clients",
        guards=[operator_only],
        operation_id="registerApiClient",
        summary="Register an API client; the secret is shown only in this response",
        description="Only a hash of the secret is kept. With an `Idempotency-Key`, a retry "
        "within the replay window (24 hours, `TRAINING_IDEMPOTENCY_TTL`) answers the same "
        "response, secret included, so a client that lost the answer is not left with a "
        "client it cannot use: the stored response is encrypted with the service's key "
        "(AES-GCM, bound to the caller and the key) and deleted when the window ends.",
        status_code=201,
    )
    async def register_client(
        self, request: Request[Any, Any, Any], tenant_id: FromPath[UUID], data: JSONBody[ClientIn]
    ) -> Response[ClientCredentialsOut]:
        outcome = await run_command(
            request, RegisterApiClient(tenant_id, data.name, tuple(data.scopes))
        )
        issued: IssuedCredentials = outcome.result
        settings = services_of(request).settings
        body = ClientCredentialsOut(
            issued.client_id,
            issued.client_secret,
            issued.tenant_id,
            list(issued.scopes),
            f"{settings.issuer}/oauth2/token",
        )
        headers = command_headers(outcome, version=issued.version)
        headers["Cache-Control"] = "no-store"
        return Response(body, status_code=201, headers=headers)

    @get(
        "/{tenant_id:uuid}/clients",
        guards=[requires_scope("clients:read", operator=True)],
        operation_id="listApiClients",
        summary="List a tenant's API clients",
    )
    async def list_clients(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[UUID],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> ClientPage:
        _visible_tenant(request, tenant_id)
        await read_after(request, [TENANCY.info])
        principal = principal_of(request)
        async with services_of(request).store.session(principal.tenant_id) as conn:
            if principal.is_operator and await queries.get_tenant(conn, tenant_id) is None:
                raise NotFound(f"tenant {tenant_id} not found")
            page = await queries.list_clients(conn, tenant_id, limit=limit, cursor=cursor)
        return ClientPage(page.items, page.next_cursor)

    @delete(
        "/{tenant_id:uuid}/clients/{client_id:str}",
        guards=[operator_only],
        operation_id="revokeApiClient",
        summary="Revoke an API client",
        status_code=204,
    )
    async def revoke_client(
        self, request: Request[Any, Any, Any], tenant_id: FromPath[UUID], client_id: FromPath[str]
    ) -> Response[None]:
        outcome = await run_command(request, RevokeApiClient(tenant_id, client_id))
        return Response(None, status_code=204, headers=command_headers(outcome))


ROUTES = [TenantController]
