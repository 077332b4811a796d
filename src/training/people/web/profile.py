"""A person's own profile page: who the service knows them as, and the language they read it
in (kept on their record, so it follows them to every device at sign-in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from training.core.http.commands import Commands
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.web import i18n
from training.core.web.pages import Position, after_position, page, shown_at
from training.people import views as people
from training.people.handlers.members import ChooseLanguage
from training.people.views import MEMBERS


@get("/profile")
async def profile(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    saved: Annotated[bool, QueryParameter(name="saved")] = False,
    at: Position = None,
) -> Template:
    member_id = principal.member_id
    if member_id is None:
        raise PermissionDeniedException(detail="this page is for a person signed in")
    await after_position(reads, [MEMBERS.info], at)
    async with reads.session() as conn:
        member = await people.get_member(conn, member_id)
        manager = (
            await people.get_member(conn, member.manager_id)
            if member is not None and member.manager_id is not None
            else None
        )
    return page(
        "people/profile.html",
        viewer=principal,
        section="profile-me",
        member=member,
        manager=manager,
        chosen=(member.language if member else None) or i18n.current(),
        saved=saved,
    )


@dataclass
class LanguageForm:
    language: str


@post("/profile/language", status_code=303)
async def choose_language(
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
    data: Annotated[LanguageForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Kept on the person's record (their next sign-in anywhere uses it) and in this
    browser's language cookie, for the pages that follow."""
    if principal.member_id is None:
        raise PermissionDeniedException(detail="this page is for a person signed in")
    outcome = await commands.run(ChooseLanguage(data.language[:16]))
    response: Response[Any] = Redirect(shown_at("/profile?saved=true", outcome), status_code=303)
    i18n.remember(response, data.language)
    return response


ROUTES: list[Any] = [profile, choose_language]
