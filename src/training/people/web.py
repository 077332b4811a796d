"""The HR manager's people pages: search and filter the company's people, add a person,
change their roles, manager and team, deactivate and reactivate them, and import a CSV file
with its report of bad rows.

The pages read the same views and send the same commands as ``/v1/members`` and
``/v1/member-imports``, under the signed-in person's session, with the same scopes: reading
needs ``members:read``, every change ``members:write``. A form refused for what was entered
is shown again with the values kept and the message beside the field (422).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from training.core.access import Role, Scope
from training.core.errors import AlreadyExists, DomainError, LimitReached, NotFound, RuleViolated
from training.core.http.commands import Commands
from training.core.http.params import Cursor, Limit
from training.core.http.principal import Principal, requires_scope
from training.core.http.reads import Reads
from training.core.outcome import Outcome
from training.core.web.i18n import N_, gettext
from training.core.web.pages import page
from training.people import views as queries
from training.people.domain.members import MAX_DISPLAY_NAME, MAX_TEXT
from training.people.handlers import import_jobs as jobs
from training.people.handlers.import_jobs import ImportJobStore
from training.people.handlers.import_runner import ImportRunner
from training.people.handlers.members import (
    DeactivateMember,
    ReactivateMember,
    RegisterMember,
    UpdateMember,
)
from training.people.http.imports import start_import
from training.people.http.people import DisplayName, Email, ExternalId, Reason, Text
from training.people.views import MEMBERS

PAGE_SIZE = 25
MANAGER_CHOICES = 50
RECENT_IMPORTS = 10
ERRORS_PAGE = 50
SECTION = "people"
READ = [requires_scope(Scope.MEMBERS_READ)]
WRITE = [requires_scope(Scope.MEMBERS_WRITE)]

ROLE_LABELS: dict[str, str] = {
    "engineer": N_("Engineer"),
    "manager": N_("Manager"),
    "hr_manager": N_("HR manager"),
    "tenant_admin": N_("Company administrator"),
}
STATUS_LABELS: dict[str, str] = {"active": N_("Active"), "deactivated": N_("Deactivated")}
IMPORT_STATUS_LABELS: dict[str, str] = {
    "queued": N_("Waiting to start"),
    "running": N_("Running"),
    "completed": N_("Completed"),
    "failed": N_("Failed"),
}
UNFINISHED = ("queued", "running")

# What to do about each field the form refuses (the API's rules for the field).
FIELD_ADVICE: dict[str, str] = {
    "external_id": N_(
        "Enter the person's id in your HR system: 1 to 128 characters, no spaces, no '@'."
    ),
    "display_name": N_("Enter a name of at most %(max)s characters."),
    "email": N_("Enter an email address such as name@example.com."),
    "roles": N_("Choose at least one role."),
    "manager_id": N_("Enter a person's id, or choose a manager from the list."),
    "team": N_("Enter at most %(max)s characters."),
    "job_title": N_("Enter at most %(max)s characters."),
    "reason": N_("Give a reason of at most 500 characters."),
    "file": N_("Choose a CSV file to upload."),
}
FIELD_LIMITS: dict[str, int] = {
    "display_name": MAX_DISPLAY_NAME,
    "team": MAX_TEXT,
    "job_title": MAX_TEXT,
}
TAKEN: dict[str, str] = {
    "email": N_("Another person already has this email address."),
    "external_id": N_("Another person already has this id."),
}
FILE_UNREADABLE = N_("The file could not be read (%(detail)s). Send a CSV file in UTF-8.")


def advice(field: str) -> str:
    return gettext(FIELD_ADVICE[field], max=FIELD_LIMITS.get(field, 0))


def refusal(error: DomainError) -> tuple[str, str]:
    """The field a command refused and what to say beside it (the rule's own words where the
    form has no advice of its own)."""
    field = error.field or ""
    if isinstance(error, AlreadyExists) and field in TAKEN:
        return field, gettext(TAKEN[field])
    return field, error.detail


@dataclasses.dataclass
class PersonForm:
    """A person's form as sent: every value kept, to be shown again when refused."""

    external_id: str = ""
    display_name: str = ""
    email: str = ""
    roles: list[str] = dataclasses.field(default_factory=list)
    manager_id: str = ""
    team: str = ""
    job_title: str = ""

    @classmethod
    def of(cls, form: Any) -> PersonForm:
        typed = str(form.get("manager_id", "")).strip()[:64]
        chosen = str(form.get("manager_choice", "")).strip()[:64]
        return cls(
            external_id=str(form.get("external_id", "")).strip()[:200],
            display_name=str(form.get("display_name", "")).strip()[:400],
            email=str(form.get("email", "")).strip()[:300],
            roles=[str(r)[:32] for r in form.getall("roles", [])][: len(Role)],
            # An id typed in wins over the list's choice.
            manager_id=typed or chosen,
            team=str(form.get("team", "")).strip()[:200],
            job_title=str(form.get("job_title", "")).strip()[:200],
        )

    @classmethod
    def of_record(cls, record: queries.MemberRecord) -> PersonForm:
        return cls(
            external_id=record.external_id,
            display_name=record.display_name or "",
            email=record.email or "",
            roles=list(record.roles),
            manager_id=str(record.manager_id) if record.manager_id else "",
            team=record.team or "",
            job_title=record.job_title or "",
        )


@dataclasses.dataclass
class Checked:
    """A person's form once each field passed the API's rules for it."""

    values: dict[str, Any]
    errors: dict[str, str]


# Each field of a person's form with the type the API gives it.
FIELD_TYPES: dict[str, Any] = {
    "external_id": ExternalId,
    "display_name": DisplayName,
    "email": Email,
    "team": Text,
    "job_title": Text,
}


def check(form: PersonForm, fields: tuple[str, ...]) -> Checked:
    """``fields`` of ``form`` by the API's rules: the values, or what to say beside each."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in fields:
        raw = getattr(form, name)
        if name == "roles":
            if not raw or any(r not in ROLE_LABELS for r in raw):
                errors[name] = advice(name)
            else:
                values[name] = tuple(Role(r) for r in raw)
        elif name == "manager_id":
            try:
                values[name] = UUID(raw) if raw else None
            except ValueError:
                errors[name] = advice(name)
        elif name == "email" and not raw:
            values[name] = None
        else:
            try:
                values[name] = msgspec.convert(raw, FIELD_TYPES[name])
            except msgspec.ValidationError:
                errors[name] = advice(name)
    return Checked(values, errors)


async def _after(reads: Reads, at: int | None) -> None:
    """Waits until the members' view holds the change a form just made (``at``, the
    position its redirect carries): the page shows what was saved."""
    await dataclasses.replace(reads, sent_position=lambda: at).after([MEMBERS.info])


async def _managers(reads: Reads) -> list[queries.MemberRecord]:
    """The first page of active managers, for the form's list (the id field takes any)."""
    async with reads.session() as conn:
        found = await queries.list_members(
            conn, limit=MANAGER_CHOICES, cursor=None, role="manager", status="active"
        )
    return found.items


def _shown(location: str, outcome: Outcome[Any]) -> str:
    return f"{location}?at={outcome.position}" if outcome.position is not None else location


Position = Annotated[int | None, QueryParameter(name="at", ge=0, le=2**62)]


@get("/people", guards=READ)
async def people(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    limit: Limit = PAGE_SIZE,
    cursor: Cursor = None,
    q: Annotated[str | None, QueryParameter(name="q", max_length=100)] = None,
    role: Annotated[str | None, QueryParameter(name="role", max_length=32)] = None,
    team: Annotated[str | None, QueryParameter(name="team", max_length=MAX_TEXT)] = None,
    status: Annotated[str | None, QueryParameter(name="status", max_length=32)] = None,
    at: Position = None,
) -> Template:
    # A form sends every field: an empty one, or a value not on the list, filters nothing.
    filters = {
        "q": (q or "").strip(),
        "role": role if role in ROLE_LABELS else "",
        "team": (team or "").strip(),
        "status": status if status in STATUS_LABELS else "",
    }
    await _after(reads, at)
    async with reads.session() as conn:
        found = await queries.list_members(
            conn,
            limit=limit,
            cursor=cursor,
            team=filters["team"] or None,
            role=filters["role"] or None,
            status=filters["status"] or None,
            query=filters["q"] or None,
        )
    kept: dict[str, Any] = {name: value for name, value in filters.items() if value}
    if limit != PAGE_SIZE:
        kept["limit"] = limit
    next_page = (
        "/people?" + urlencode({**kept, "cursor": found.next_cursor}) if found.next_cursor else ""
    )
    return page(
        "people/list.html",
        viewer=principal,
        section=SECTION,
        people=found.items,
        filters=filters,
        next_page=next_page,
        first_page="/people?" + urlencode(kept) if cursor else "",
        role_labels=ROLE_LABELS,
        statuses=STATUS_LABELS,
        may_write=principal.has_scope(Scope.MEMBERS_WRITE),
    )


def _new_page(
    principal: Principal,
    form: PersonForm,
    managers: list[queries.MemberRecord],
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    return page(
        "people/new.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        form=form,
        managers=managers,
        errors=dict(errors or {}),
        role_labels=ROLE_LABELS,
    )


@get("/people/new", guards=WRITE)
async def new_person(
    reads: NamedDependency[Reads], principal: NamedDependency[Principal]
) -> Template:
    return _new_page(principal, PersonForm(roles=["engineer"]), await _managers(reads))


PERSON_FIELDS = ("external_id", "display_name", "email", "roles", "manager_id", "team", "job_title")


@post("/people", guards=WRITE, status_code=303)
async def add_person(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
) -> Response[Any]:
    form = PersonForm.of(await request.form())
    checked = check(form, PERSON_FIELDS)
    if not checked.errors:
        values = checked.values
        try:
            outcome = await commands.run(
                RegisterMember(
                    values["external_id"],
                    values["display_name"],
                    values["email"],
                    values["roles"],
                    values["manager_id"],
                    values["team"] or None,
                    values["job_title"] or None,
                )
            )
        except (AlreadyExists, RuleViolated, LimitReached) as error:
            field, message = refusal(error)
            checked.errors[field] = message
        else:
            return Redirect(_shown(f"/people/{outcome.result.member_id}", outcome), status_code=303)
    return _new_page(principal, form, await _managers(reads), checked.errors, status_code=422)


async def _person(reads: Reads, member_id: UUID) -> queries.MemberRecord:
    async with reads.session() as conn:
        record = await queries.get_member(conn, member_id)
    if record is None:
        raise NotFound(f"member {member_id} not found")
    return record


def _choices(
    managers: list[queries.MemberRecord],
    record: queries.MemberRecord,
    manager: queries.MemberRecord | None,
) -> list[queries.MemberRecord]:
    """The managers a person may be given from the list: never themselves, and their
    current manager first when the list's page lacks them."""
    choices = [m for m in managers if m.member_id != record.member_id]
    if manager is not None and all(m.member_id != manager.member_id for m in choices):
        choices.insert(0, manager)
    return choices


async def _person_page(
    reads: Reads,
    principal: Principal,
    record: queries.MemberRecord,
    form: PersonForm | None = None,
    errors: Mapping[str, str] | None = None,
    reason: str = "",
    status_code: int = 200,
) -> Template:
    manager = None
    async with reads.session() as conn:
        if record.manager_id is not None:
            manager = await queries.get_member(conn, record.manager_id)
        reports = await queries.list_reports(
            conn, record.member_id, direct_only=True, limit=PAGE_SIZE, cursor=None
        )
    return page(
        "people/person.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        person=record,
        manager=manager,
        reports=reports.items,
        more_reports=reports.next_cursor is not None,
        form=form or PersonForm.of_record(record),
        managers=_choices(await _managers(reads), record, manager),
        errors=dict(errors or {}),
        reason=reason,
        role_labels=ROLE_LABELS,
        statuses=STATUS_LABELS,
        may_write=principal.has_scope(Scope.MEMBERS_WRITE),
    )


@get("/people/{member_id:uuid}", guards=READ)
async def person(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    member_id: FromPath[UUID],
    at: Position = None,
) -> Template:
    await _after(reads, at)
    return await _person_page(reads, principal, await _person(reads, member_id))


def _version(form: Any) -> int | None:
    """The version the form was shown at: a change made since refuses it (as ``If-Match``)."""
    value = str(form.get("version", ""))
    return int(value) if value.isdigit() and len(value) < 19 else None


@post("/people/{member_id:uuid}", guards=WRITE, status_code=303)
async def change_person(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    member_id: FromPath[UUID],
) -> Response[Any]:
    sent = await request.form()
    form = PersonForm.of(sent)
    checked = check(form, ("roles", "manager_id", "team", "job_title"))
    if not checked.errors:
        values = checked.values
        try:
            outcome = await commands.run(
                UpdateMember(
                    member_id,
                    roles=values["roles"],
                    manager_id=values["manager_id"],
                    clear_manager=values["manager_id"] is None,
                    team=values["team"],
                    job_title=values["job_title"],
                    expected_version=_version(sent),
                )
            )
        except (AlreadyExists, RuleViolated) as error:
            if not error.field:
                raise
            field, message = refusal(error)
            checked.errors[field] = message
        else:
            return Redirect(_shown(f"/people/{member_id}", outcome), status_code=303)
    record = await _person(reads, member_id)
    return await _person_page(
        reads, principal, record, form=form, errors=checked.errors, status_code=422
    )


@post("/people/{member_id:uuid}/deactivate", guards=WRITE, status_code=303)
async def deactivate(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    member_id: FromPath[UUID],
) -> Response[Any]:
    sent = await request.form()
    reason = str(sent.get("reason", "")).strip()[:1000]
    try:
        checked_reason = msgspec.convert(reason, Reason)
    except msgspec.ValidationError:
        record = await _person(reads, member_id)
        return await _person_page(
            reads,
            principal,
            record,
            errors={"reason": advice("reason")},
            reason=reason,
            status_code=422,
        )
    outcome = await commands.run(DeactivateMember(member_id, checked_reason, _version(sent)))
    return Redirect(_shown(f"/people/{member_id}", outcome), status_code=303)


@post("/people/{member_id:uuid}/reactivate", guards=WRITE, status_code=303)
async def reactivate(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    member_id: FromPath[UUID],
) -> Response[Any]:
    sent = await request.form()
    outcome = await commands.run(ReactivateMember(member_id, _version(sent)))
    return Redirect(_shown(f"/people/{member_id}", outcome), status_code=303)


async def _import_form(
    reads: Reads, principal: Principal, error: str = "", status_code: int = 200
) -> Template:
    # Jobs are read where the runner writes them (as the API reads them).
    async with reads.session(primary=True) as conn:
        recent = await jobs.list_imports(conn, limit=RECENT_IMPORTS, cursor=None)
    return page(
        "people/import.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        recent=recent.items,
        error=error,
        statuses=IMPORT_STATUS_LABELS,
    )


@get("/people/import", guards=WRITE)
async def import_form(
    reads: NamedDependency[Reads], principal: NamedDependency[Principal]
) -> Template:
    return await _import_form(reads, principal)


@post("/people/import", guards=WRITE, status_code=303)
async def upload(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    import_jobs: NamedDependency[ImportJobStore],
    import_runner: NamedDependency[ImportRunner],
) -> Response[Any]:
    sent = await request.form()
    file = sent.get("file")
    content = await file.read() if isinstance(file, UploadFile) else b""
    if not content.strip():
        return await _import_form(reads, principal, advice("file"), status_code=422)
    try:
        import_id = await start_import(
            commands, principal, import_jobs, import_runner, "csv", content
        )
    except HTTPException as error:
        if error.status_code >= 500:
            raise
        shown = gettext(FILE_UNREADABLE, detail=error.detail)
        return await _import_form(reads, principal, shown, status_code=422)
    return Redirect(f"/people/import/{import_id}", status_code=303)


@get("/people/import/{import_id:uuid}", guards=WRITE)
async def import_status(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    import_id: FromPath[UUID],
    errors_from: Annotated[int, QueryParameter(name="errors_from", ge=0, le=10**6)] = 0,
) -> Template:
    async with reads.session(primary=True) as conn:
        record = await jobs.get_import(conn, import_id)
    if record is None:
        raise NotFound(f"import {import_id} not found")
    shown = record.errors[errors_from : errors_from + ERRORS_PAGE]
    after = errors_from + ERRORS_PAGE
    return page(
        "people/import_status.html",
        viewer=principal,
        section=SECTION,
        job=record,
        running=record.status in UNFINISHED,
        status=IMPORT_STATUS_LABELS.get(record.status, record.status),
        errors=shown,
        errors_from=errors_from,
        next_errors=after if after < len(record.errors) else None,
        previous_errors=max(0, errors_from - ERRORS_PAGE) if errors_from else None,
    )


ROUTES: list[Any] = [
    people,
    new_person,
    add_person,
    import_form,
    upload,
    import_status,
    person,
    change_person,
    deactivate,
    reactivate,
]
