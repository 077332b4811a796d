"""Signing in and out in the browser.

``/sign-in`` asks for the company's sign-in name and hands over to the tenant's single
sign-on (``/auth/{slug}/login``, which brings the person back to ``next``); in development
it also links to the demo's sign-in (``training.demo.web``). ``/sign-out`` ends the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from training.core.access import Scope
from training.core.application import TrainingApplication
from training.core.errors import RuleViolated
from training.core.http.commands import Commands
from training.core.http.principal import Principal, requires_scope
from training.core.web.i18n import N_
from training.core.web.pages import page, safe_next
from training.identity.handlers.sso import SsoSnapshot, sso_connection, tenant_slug
from training.identity.http.sso import SsoIn, SsoOut, configure_sso, sso_out
from training.identity.sign_in import clear_session, runtime_of
from training.infra.settings import Settings
from training.tenancy.domain import SLUG_PATTERN, Tenant

PUBLIC = {"exclude_from_auth": True}


@get("/sign-in", opt=PUBLIC, name="sign-in")
async def sign_in_page(
    settings: NamedDependency[Settings],
    next_path: Annotated[str | None, QueryParameter(name="next", max_length=2048)] = None,
) -> Template:
    return _sign_in(settings, safe_next(next_path), company="", problem="")


def _sign_in(settings: Settings, next_path: str, *, company: str, problem: str) -> Template:
    return page(
        "identity/sign_in.html",
        status_code=422 if problem else 200,
        next_path=next_path,
        company=company,
        problem=problem,
        demo=settings.is_development,
    )


@get("/sign-in/sso", opt=PUBLIC)
async def sign_in_with_sso(
    app: NamedDependency[TrainingApplication],
    settings: NamedDependency[Settings],
    company: Annotated[str, QueryParameter(name="company", max_length=100)] = "",
    next_path: Annotated[str | None, QueryParameter(name="next", max_length=2048)] = None,
) -> Response[Any]:
    """Hands over to the company's identity provider, or says why it cannot."""
    slug = company.strip().lower()
    target = safe_next(next_path)
    if not SLUG_PATTERN.match(slug):
        problem = N_("Enter your company's sign-in name: lower-case letters, digits and dashes.")
        return _sign_in(settings, target, company=company, problem=problem)
    connection = await sync_to_thread(sso_connection, app, Tenant.create_id(slug))
    if connection is None:
        problem = N_("No company with single sign-on has this sign-in name.")
        return _sign_in(settings, target, company=company, problem=problem)
    return Redirect(f"/auth/{slug}/login?{urlencode({'next': target})}", status_code=303)


@post("/sign-out", opt=PUBLIC, status_code=303)
async def sign_out() -> Response[Any]:
    response: Response[Any] = Redirect("/sign-in", status_code=303)
    clear_session(response)
    return response


ROUTES: list[Any] = [sign_in_page, sign_in_with_sso, sign_out]


# ------------------------------------------------------------------ the tenant admin's page


@dataclass(frozen=True)
class SsoForm:
    """What the admin typed, as typed: shown again as it was when refused."""

    issuer: str = ""
    client_id: str = ""
    allowed_domains: str = ""
    jit: bool = False
    group_roles: str = ""
    audience: str = ""
    allowed_hosts: str = ""

    @classmethod
    def of(cls, snapshot: SsoSnapshot | None) -> SsoForm:
        if snapshot is None:
            return cls()
        return cls(
            snapshot.issuer,
            snapshot.client_id,
            "\n".join(snapshot.allowed_domains),
            snapshot.jit,
            "\n".join(
                f"{group}: {', '.join(roles)}" for group, roles in snapshot.group_roles.items()
            ),
            snapshot.audience or "",
            "\n".join(snapshot.allowed_hosts),
        )

    def to_sso_in(self, client_secret: str) -> SsoIn:
        """The API's request body, with the API's checks (``msgspec.ValidationError``)."""
        roles: dict[str, list[str]] = {}
        for line in self.group_roles.splitlines():
            group, _, named = line.partition(":")
            if group.strip():
                roles[group.strip()] = [r.strip() for r in named.split(",") if r.strip()]
        body = {
            "issuer": self.issuer.strip(),
            "client_id": self.client_id.strip(),
            "allowed_domains": _listed(self.allowed_domains),
            "client_secret": client_secret or None,
            "jit": self.jit,
            "group_roles": roles,
            "audience": self.audience.strip() or None,
            "allowed_hosts": _listed(self.allowed_hosts),
        }
        return msgspec.convert(body, SsoIn)


def _listed(text: str) -> list[str]:
    """One value per line or between commas."""
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


async def _sign_in_settings(
    app: TrainingApplication, settings: Settings, tenant_id: UUID
) -> tuple[SsoSnapshot | None, SsoOut | None, str]:
    connection = await sync_to_thread(sso_connection, app, tenant_id)
    slug = await sync_to_thread(tenant_slug, app, tenant_id)
    snapshot = SsoSnapshot.of(connection) if connection is not None else None
    urls = sso_out(snapshot, settings, slug) if snapshot is not None else None
    return snapshot, urls, slug


def _admin_page(
    principal: Principal,
    settings: Settings,
    slug: str,
    urls: SsoOut | None,
    form: SsoForm,
    *,
    problem: str = "",
    field: str = "",
    saved: bool = False,
) -> Template:
    base = f"{settings.issuer}/auth/{slug}"
    return page(
        "identity/admin.html",
        status_code=422 if problem else 200,
        viewer=principal,
        section="admin",
        form=form,
        configured=urls is not None,
        redirect_uri=f"{base}/callback",
        login_url=f"{base}/login",
        logout_url=f"{base}/logout",
        scim_url=f"{settings.issuer}/scim/v2",
        slug=slug,
        problem=problem,
        problem_field=field,
        saved=saved,
    )


@get("/admin/sign-in", guards=[requires_scope(Scope.SSO_ADMIN)])
async def sign_in_settings(
    app: NamedDependency[TrainingApplication],
    settings: NamedDependency[Settings],
    principal: NamedDependency[Principal],
    saved: Annotated[bool, QueryParameter(name="saved")] = False,
) -> Template:
    """Single sign-on as configured (never its secret), the URLs to give the identity
    provider, and how to set up SCIM provisioning."""
    assert principal.tenant_id is not None  # the guard lets only a tenant's admins in
    snapshot, urls, slug = await _sign_in_settings(app, settings, principal.tenant_id)
    return _admin_page(principal, settings, slug, urls, SsoForm.of(snapshot), saved=saved)


@post("/admin/sign-in", guards=[requires_scope(Scope.SSO_ADMIN)], status_code=303)
async def configure_sign_in(
    request: Request[Any, Any, Any],
    app: NamedDependency[TrainingApplication],
    settings: NamedDependency[Settings],
    principal: NamedDependency[Principal],
    commands: NamedDependency[Commands],
) -> Response[Any]:
    assert principal.tenant_id is not None
    fields = await request.form()
    form = SsoForm(
        issuer=str(fields.get("issuer", ""))[:512],
        client_id=str(fields.get("client_id", ""))[:512],
        allowed_domains=str(fields.get("allowed_domains", ""))[:13000],
        jit=fields.get("jit") == "on",
        group_roles=str(fields.get("group_roles", ""))[:20000],
        audience=str(fields.get("audience", ""))[:512],
        allowed_hosts=str(fields.get("allowed_hosts", ""))[:3000],
    )
    runtime = runtime_of(request.app.state, settings)
    try:
        data = form.to_sso_in(str(fields.get("client_secret", ""))[:4096])
        await configure_sso(commands, runtime, principal.tenant_id, data)
    except (msgspec.ValidationError, RuleViolated) as error:
        _, urls, slug = await _sign_in_settings(app, settings, principal.tenant_id)
        field = error.field if isinstance(error, RuleViolated) else _field_of(str(error))
        return _admin_page(
            principal, settings, slug, urls, form, problem=str(error), field=field or ""
        )
    return Redirect("/admin/sign-in?saved=true", status_code=303)


def _field_of(message: str) -> str:
    """The field a msgspec error names (``... - at `$.issuer` ``)."""
    _, _, where = message.partition("$.")
    return where.split("`")[0].split("[")[0].split(".")[0]


ROUTES += [sign_in_settings, configure_sign_in]
