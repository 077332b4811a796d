"""Signing in as a person of the demo company, in development only.

The quickstart has no identity provider, yet a newcomer wants to see every role in seconds.
``/dev/sign-in`` lists the demo company's people by role and signs in as the one chosen,
with the same session a single sign-on gives. It exists only on a development server
listening on loopback (``available``): the app does not register it otherwise, so anywhere
else it is a 404 like any unknown page.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from training.core.access import Role
from training.core.web.i18n import N_
from training.core.web.pages import page, safe_next
from training.demo.sign_in import DemoPerson, demo_people
from training.demo.world import DEMO_SLUG
from training.identity.sign_in import runtime_of, start_session
from training.infra.settings import Settings
from training.tenancy.domain import Tenant

PUBLIC = {"exclude_from_auth": True}

# The sections of the page, in this order.
SECTIONS: tuple[tuple[Role, str], ...] = (
    (Role.ENGINEER, N_("Engineers")),
    (Role.MANAGER, N_("Managers")),
    (Role.HR_MANAGER, N_("HR managers")),
    (Role.TENANT_ADMIN, N_("Administrators")),
)


def available(settings: Settings) -> bool:
    """A development server that only this machine can reach."""
    if not settings.is_development:
        return False
    if settings.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Section:
    title: str
    people: list[DemoPerson]


def sections_of(people: list[DemoPerson]) -> list[Section]:
    """One section per role, each person under every role they hold (a manager who is also
    an engineer is in both)."""
    sections = []
    for role, title in SECTIONS:
        members = [p for p in people if role in p.roles]
        if members:
            sections.append(Section(title, sorted(members, key=lambda p: p.name)))
    return sections


@get("/dev/sign-in", opt=PUBLIC)
async def demo_sign_in_page(
    services: NamedDependency[Any],
    next_path: Annotated[str | None, QueryParameter(name="next", max_length=2048)] = None,
) -> Template:
    _refuse_unless_available(services.settings)
    people = await sync_to_thread(demo_people, services.database)
    return page("demo/sign_in.html", sections=sections_of(people), next_path=safe_next(next_path))


@dataclass
class DemoSignIn:
    member_id: UUID
    next: str = "/"


@post("/dev/sign-in", opt=PUBLIC, status_code=303)
async def demo_sign_in(
    request: Request[Any, Any, Any],
    services: NamedDependency[Any],
    data: Annotated[DemoSignIn, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    settings: Settings = services.settings
    _refuse_unless_available(settings)
    people = await sync_to_thread(demo_people, services.database)
    if not any(p.member_id == data.member_id for p in people):
        raise NotFoundException(detail="no active person of the demo company has this id")
    response: Response[Any] = Redirect(safe_next(data.next), status_code=303)
    runtime = runtime_of(request.app.state, settings)
    start_session(response, runtime, settings, data.member_id, Tenant.create_id(DEMO_SLUG))
    return response


def _refuse_unless_available(settings: Settings) -> None:
    if not available(settings):  # the routes are not registered then; this is a second lock
        raise NotFoundException()


ROUTES: list[Any] = [demo_sign_in_page, demo_sign_in]
