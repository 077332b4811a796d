"""The HR manager's role profile pages: the company's role profiles, a profile's targets
(skill and level) and its revisions, defining a new one, revising and retiring it.

The pages read the same views and send the same commands as ``/v1/role-profiles``, under the
signed-in person's session, with the same scopes: reading needs ``skills:read``, every change
``skills:write``. A form refused for what was entered is shown again with the values kept
and the message beside the field (422).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from training.core.access import Scope
from training.core.errors import AlreadyExists, DomainError, NotFound, RuleViolated
from training.core.http.commands import Commands
from training.core.http.params import Cursor
from training.core.http.principal import Principal, requires_scope
from training.core.http.reads import Reads
from training.core.web.forms import form_version, parse_targets, written_targets
from training.core.web.i18n import N_, gettext
from training.core.web.pages import Position, after_position, page, shown_at
from training.skills import views as queries
from training.skills.domain import SkillTarget
from training.skills.handlers import DefineRoleProfile, RetireRoleProfile, ReviseRoleProfile
from training.skills.http import Code, Description, Name
from training.skills.views import SKILLS

PAGE_SIZE = 25
REVISIONS_PAGE = 50
MAX_TARGETS = 100
SECTION = "role-profiles"
READ = [requires_scope(Scope.SKILLS_READ)]
WRITE = [requires_scope(Scope.SKILLS_WRITE)]

FIELD_ADVICE: dict[str, str] = {
    "key": N_("Enter 1 to 64 lower-case letters, digits or inner hyphens, such as backend-l3."),
    "name": N_("Enter a name of 1 to 120 characters."),
    "description": N_("Enter at most 2000 characters."),
    "targets": N_(
        "Write one skill a line as code: level (1 to 7), such as python: 3; at least one."
    ),
}
TAKEN = N_("Another role profile already has this key.")


@dataclasses.dataclass
class ProfileForm:
    """A role profile's form as sent: every value kept, to be shown again when refused."""

    key: str = ""
    name: str = ""
    description: str = ""
    targets: str = ""

    @classmethod
    def of(cls, form: Any, key: str | None = None) -> ProfileForm:
        return cls(
            key=key if key is not None else str(form.get("key", "")).strip()[:100],
            name=str(form.get("name", "")).strip()[:300],
            description=str(form.get("description", "")).strip()[:4000],
            targets=str(form.get("targets", ""))[:8000],
        )

    @classmethod
    def of_record(cls, record: queries.RoleProfileRecord) -> ProfileForm:
        return cls(record.key, record.name, record.description, written_targets(record.targets))


def _convert(value: Any, kind: Any) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return None


def check(form: ProfileForm) -> tuple[dict[str, Any], dict[str, str]]:
    """The profile's fields by the API's rules, or what to say beside each refused one."""
    pairs = parse_targets(form.targets)
    values: dict[str, Any] = {
        "key": _convert(form.key, Code),
        "name": _convert(form.name, Name),
        "description": _convert(form.description, Description),
        "targets": tuple(SkillTarget(skill, level) for skill, level in pairs)
        if pairs and len(pairs) <= MAX_TARGETS
        else None,
    }
    errors = {name: gettext(FIELD_ADVICE[name]) for name, value in values.items() if value is None}
    return values, errors


def refusal(error: DomainError) -> tuple[str, str]:
    """The field a command refused and what to say beside it."""
    if isinstance(error, AlreadyExists):
        return "key", gettext(TAKEN)
    field = (error.field or "").split(".")[0].split("[")[0]
    return (field if field in FIELD_ADVICE else ""), error.detail


async def _after(reads: Reads, at: int | None) -> None:
    await after_position(reads, [SKILLS.info], at)


def _location(key: str, outcome: Any) -> Response[Any]:
    return Redirect(shown_at(f"/role-profiles/{quote(key)}", outcome), status_code=303)


@get("/role-profiles", guards=READ)
async def role_profiles(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cursor: Cursor = None,
    retired: Annotated[bool, QueryParameter(name="retired")] = False,
    at: Position = None,
) -> Template:
    await _after(reads, at)
    async with reads.session() as conn:
        found = await queries.list_role_profiles(
            conn, limit=PAGE_SIZE, cursor=cursor, include_retired=retired
        )
    kept: dict[str, Any] = {"retired": "true"} if retired else {}
    return page(
        "skills/profiles.html",
        viewer=principal,
        section=SECTION,
        profiles=found.items,
        retired=retired,
        next_page="/role-profiles?" + urlencode({**kept, "cursor": found.next_cursor})
        if found.next_cursor
        else "",
        first_page="/role-profiles?" + urlencode(kept) if cursor else "",
        may_write=principal.has_scope(Scope.SKILLS_WRITE),
    )


def _new_page(
    principal: Principal,
    form: ProfileForm,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    return page(
        "skills/new_profile.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        form=form,
        errors=dict(errors or {}),
    )


@get("/role-profiles/new", guards=WRITE)
async def new_profile(principal: NamedDependency[Principal]) -> Template:
    return _new_page(principal, ProfileForm())


@post("/role-profiles", guards=WRITE, status_code=303)
async def define(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
) -> Response[Any]:
    form = ProfileForm.of(await request.form())
    values, errors = check(form)
    if not errors:
        try:
            outcome = await commands.run(
                DefineRoleProfile(
                    values["key"], values["name"], values["description"], values["targets"]
                )
            )
        except (AlreadyExists, RuleViolated) as error:
            field, message = refusal(error)
            errors[field] = message
        else:
            return _location(outcome.result.key, outcome)
    return _new_page(principal, form, errors, status_code=422)


async def _profile_page(
    reads: Reads,
    principal: Principal,
    key: str,
    form: ProfileForm | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    async with reads.session() as conn:
        record = await queries.get_role_profile(conn, key)
        if record is None:
            raise NotFound(f"role profile {key} not found")
        revisions = await queries.list_revisions(
            conn, record.profile_id, limit=REVISIONS_PAGE, cursor=None
        )
    return page(
        "skills/profile.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        profile=record,
        revisions=revisions.items,
        more_revisions=revisions.next_cursor is not None,
        form=form or ProfileForm.of_record(record),
        errors=dict(errors or {}),
        may_write=principal.has_scope(Scope.SKILLS_WRITE),
    )


@get("/role-profiles/{key:str}", guards=READ)
async def profile(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    key: FromPath[str],
    at: Position = None,
) -> Template:
    await _after(reads, at)
    return await _profile_page(reads, principal, key[:100])


@post("/role-profiles/{key:str}", guards=WRITE, status_code=303)
async def revise(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    key: FromPath[str],
) -> Response[Any]:
    sent = await request.form()
    form = ProfileForm.of(sent, key=key[:100])
    values, errors = check(form)
    if not errors:
        try:
            outcome = await commands.run(
                ReviseRoleProfile(
                    values["key"],
                    values["name"],
                    values["description"],
                    values["targets"],
                    form_version(sent),
                )
            )
        except RuleViolated as error:
            field, message = refusal(error)
            errors[field] = message
        else:
            return _location(values["key"], outcome)
    return await _profile_page(reads, principal, form.key, form, errors, status_code=422)


@post("/role-profiles/{key:str}/retire", guards=WRITE, status_code=303)
async def retire(commands: NamedDependency[Commands], key: FromPath[str]) -> Response[Any]:
    outcome = await commands.run(RetireRoleProfile(key[:100]))
    return _location(key[:100], outcome)


ROUTES: list[Any] = [role_profiles, new_profile, define, profile, revise, retire]
