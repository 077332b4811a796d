"""Signing in and out in the browser.

``/sign-in`` asks for the company's sign-in name and hands over to the tenant's single
sign-on (``/auth/{slug}/login``, which brings the person back to ``next``); in development
it also links to the demo's sign-in (``training.demo.web``). ``/sign-out`` ends the session.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from training.core.application import TrainingApplication
from training.core.web.i18n import N_
from training.core.web.pages import page, safe_next
from training.identity.handlers.sso import sso_connection
from training.identity.sign_in import clear_session
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
