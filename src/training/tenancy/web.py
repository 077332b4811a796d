"""The tenant administrator's page of API clients: the tenant's integration clients, a new
one (its secret shown on that answer only, never again), and revocation.

The same commands as ``POST`` and ``DELETE /v1/tenants/{id}/clients``: only a person signed
in as the tenant's administrator may register or revoke (an integration client never can).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from training.core.access import Scope
from training.core.errors import RuleViolated
from training.core.http.commands import Commands
from training.core.http.params import Cursor
from training.core.http.principal import Principal, operator_or_tenant_admin, requires_scope
from training.core.http.reads import Reads
from training.core.web.pages import Position, after_position, page, shown_at
from training.infra.settings import Settings
from training.tenancy import views as queries
from training.tenancy.domain import TENANT_SCOPES
from training.tenancy.handlers import IssuedCredentials, RegisterApiClient, RevokeApiClient
from training.tenancy.views import TENANCY

CLIENTS_PAGE = 25


async def _clients_page(
    reads: Reads,
    principal: Principal,
    cursor: str | None,
    *,
    issued: IssuedCredentials | None = None,
    token_url: str = "",
    name: str = "",
    chosen: frozenset[str] = frozenset(),
    problem: str = "",
) -> Template:
    assert principal.tenant_id is not None  # the guards let only a tenant's people in
    async with reads.session() as conn:
        found = await queries.list_clients(
            conn, principal.tenant_id, limit=CLIENTS_PAGE, cursor=cursor
        )
    status = 422 if problem else (201 if issued else 200)
    template = page(
        "tenancy/clients.html",
        status_code=status,
        viewer=principal,
        section="clients",
        clients=found.items,
        next_cursor=found.next_cursor,
        scopes=sorted(TENANT_SCOPES),
        issued=issued,
        token_url=token_url,
        name=name,
        chosen=chosen,
        problem=problem,
    )
    if issued is not None:
        template.headers["Cache-Control"] = "no-store"  # the secret is on this answer only
    return template


@get("/admin/clients", guards=[requires_scope(Scope.CLIENTS_READ)])
async def clients(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cursor: Cursor = None,
    at: Position = None,
) -> Template:
    await after_position(reads, [TENANCY.info], at)
    return await _clients_page(reads, principal, cursor)


@post("/admin/clients", guards=[operator_or_tenant_admin], status_code=201)
async def register_client(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    settings: NamedDependency[Settings],
) -> Template:
    form = await request.form()
    name = str(form.get("name", "")).strip()[:200]
    chosen = frozenset(str(s) for s in form.getall("scopes", []) if str(s) in TENANT_SCOPES)
    try:
        outcome = await commands.run(
            RegisterApiClient(principal.tenant_id, name, tuple(sorted(chosen)))
        )
    except RuleViolated as error:
        return await _clients_page(
            reads, principal, None, name=name, chosen=chosen, problem=str(error)
        )
    await after_position(reads, [TENANCY.info], outcome.position)
    return await _clients_page(
        reads,
        principal,
        None,
        issued=outcome.result,
        token_url=f"{settings.issuer}/oauth2/token",
    )


@post("/admin/clients/{client_id:str}/revoke", guards=[operator_or_tenant_admin], status_code=303)
async def revoke_client(
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
    client_id: FromPath[str],
) -> Response[Any]:
    outcome = await commands.run(RevokeApiClient(principal.tenant_id, client_id[:64]))
    return Redirect(shown_at("/admin/clients", outcome), status_code=303)


ROUTES: list[Any] = [clients, register_client, revoke_client]
