"""The curricula: the company's and the platform catalogue's, a curriculum with its published
versions and what changed between two, creating, publishing, retiring and forking."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Template

from training.core.access import Scope
from training.core.application import TrainingApplication
from training.core.errors import NotFound, RuleViolated
from training.core.http.commands import Commands
from training.core.http.params import Cursor
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.web.forms import form_version, whole_number
from training.core.web.i18n import gettext
from training.core.web.pages import Position, page
from training.curricula import views as queries
from training.curricula.handlers import (
    CreateCurriculum,
    ForkCurriculum,
    PublishCurriculum,
    RetireCurriculum,
    curriculum_diff,
)
from training.curricula.http.curricula import (
    Description,
    Reason,
    Title,
    VersionNumber,
)
from training.curricula.web.common import (
    FIELD_ADVICE,
    FIELD_LABELS,
    FORMAT_LABELS,
    PAGE_SIZE,
    READ,
    SECTION,
    STATUS_LABELS,
    WRITE,
    after,
    convert,
    curriculum_page,
    find_curriculum,
    redirect,
)

CatalogueCursor = Annotated[
    str | None, QueryParameter(name="catalogue_cursor", max_length=512, required=False)
]


@get("/curricula", guards=READ)
async def curricula(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cursor: Cursor = None,
    catalogue_cursor: CatalogueCursor = None,
    at: Position = None,
) -> Template:
    await after(reads, at)
    async with reads.session() as conn:
        own = await queries.list_curricula(conn, limit=PAGE_SIZE, cursor=cursor, scope="tenant")
        catalogue = await queries.list_curricula(
            conn, limit=PAGE_SIZE, cursor=catalogue_cursor, scope="catalogue"
        )

    def link(**query: str | None) -> str:
        kept = {name: value for name, value in query.items() if value}
        return "/curricula" + (f"?{urlencode(kept)}" if kept else "")

    return page(
        "curricula/list.html",
        viewer=principal,
        section=SECTION,
        own=own.items,
        catalogue=catalogue.items,
        next_own=link(cursor=own.next_cursor, catalogue_cursor=catalogue_cursor)
        if own.next_cursor
        else "",
        next_catalogue=link(cursor=cursor, catalogue_cursor=catalogue.next_cursor)
        if catalogue.next_cursor
        else "",
        first_page=link() if cursor or catalogue_cursor else "",
        statuses=STATUS_LABELS,
        may_write=principal.has_scope(Scope.CURRICULA_WRITE),
    )


def _new_page(
    principal: Principal,
    form: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    return page(
        "curricula/new.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        form=form,
        errors=dict(errors or {}),
    )


@get("/curricula/new", guards=WRITE)
async def new_curriculum(principal: NamedDependency[Principal]) -> Template:
    return _new_page(principal, {"title": "", "description": ""})


@post("/curricula", guards=WRITE, status_code=303)
async def create(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
) -> Response[Any]:
    sent = await request.form()
    form = {
        "title": str(sent.get("title", "")).strip()[:400],
        "description": str(sent.get("description", "")).strip()[:8000],
    }
    values = {"title": convert(form["title"], Title)}
    values["description"] = convert(form["description"], Description)
    errors = {name: gettext(FIELD_ADVICE[name]) for name, value in values.items() if value is None}
    if not errors:
        try:
            outcome = await commands.run(CreateCurriculum(values["title"], values["description"]))
        except RuleViolated as error:
            errors[error.field if error.field in form else ""] = error.detail
        else:
            return redirect(f"/curricula/{outcome.result.curriculum_id}", outcome)
    return _new_page(principal, form, errors, status_code=422)


@get("/curricula/{curriculum_id:uuid}", guards=READ)
async def curriculum(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    curriculum_id: FromPath[UUID],
    at: Position = None,
) -> Template:
    await after(reads, at)
    return await curriculum_page(reads, principal, await find_curriculum(reads, curriculum_id))


@get("/curricula/{curriculum_id:uuid}/versions/{version:int}", guards=READ)
async def curriculum_version(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    curriculum_id: FromPath[UUID],
    version: FromPath[int],
) -> Template:
    record = await find_curriculum(reads, curriculum_id)
    if record.latest_version is None or not 1 <= version <= record.latest_version:
        raise NotFound(f"version {version} of curriculum {curriculum_id} not found")
    async with reads.session() as conn:
        modules = await queries.modules_of(conn, curriculum_id, version)
    return page(
        "curricula/version.html",
        viewer=principal,
        section=SECTION,
        curriculum=record,
        number=version,
        modules=modules,
        formats=FORMAT_LABELS,
    )


@get("/curricula/{curriculum_id:uuid}/diff", guards=READ)
async def diff(
    app: NamedDependency[TrainingApplication],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    curriculum_id: FromPath[UUID],
    from_version: Annotated[int, QueryParameter(name="from", ge=1, le=1_000_000)],
    to_version: Annotated[int, QueryParameter(name="to", ge=1, le=1_000_000)],
) -> Template:
    """The same comparison as ``diffCurriculumVersions``: by the curriculum itself."""
    found = await sync_to_thread(
        curriculum_diff, app, principal.tenant_id, curriculum_id, from_version, to_version
    )
    return page(
        "curricula/diff.html",
        viewer=principal,
        section=SECTION,
        curriculum=await find_curriculum(reads, curriculum_id),
        diff=found,
        field_labels=FIELD_LABELS,
    )


@post("/curricula/{curriculum_id:uuid}/publish", guards=WRITE, status_code=303)
async def publish(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    curriculum_id: FromPath[UUID],
) -> Response[Any]:
    sent = await request.form()
    outcome = await commands.run(PublishCurriculum(curriculum_id, form_version(sent)))
    return redirect(f"/curricula/{curriculum_id}", outcome)


@post("/curricula/{curriculum_id:uuid}/retire", guards=WRITE, status_code=303)
async def retire(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    curriculum_id: FromPath[UUID],
) -> Response[Any]:
    sent = await request.form()
    reason = str(sent.get("reason", "")).strip()[:1000]
    checked = convert(reason, Reason)
    if checked is None:
        record = await find_curriculum(reads, curriculum_id)
        errors = {"reason": gettext(FIELD_ADVICE["reason"])}
        return await curriculum_page(
            reads, principal, record, errors=errors, reason=reason, status_code=422
        )
    outcome = await commands.run(RetireCurriculum(curriculum_id, checked, form_version(sent)))
    return redirect(f"/curricula/{curriculum_id}", outcome)


@post("/curricula/{curriculum_id:uuid}/fork", guards=WRITE, status_code=303)
async def fork(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    curriculum_id: FromPath[UUID],
) -> Response[Any]:
    sent = await request.form()
    raw = str(sent.get("version", "")).strip()
    number = convert(int(raw), VersionNumber) if whole_number(raw) else None
    title = str(sent.get("fork_title", "")).strip()[:400]
    checked_title = convert(title, Title) if title else None
    errors: dict[str, str] = {}
    if number is None:
        errors["version"] = gettext(FIELD_ADVICE["version"])
    if title and checked_title is None:
        errors["fork_title"] = gettext(FIELD_ADVICE["title"])
    if errors or number is None:
        record = await find_curriculum(reads, curriculum_id)
        return await curriculum_page(reads, principal, record, errors=errors, status_code=422)
    outcome = await commands.run(ForkCurriculum(curriculum_id, number, checked_title))
    return redirect(f"/curricula/{outcome.result.curriculum_id}", outcome)


ROUTES: list[Any] = [
    curricula,
    new_curriculum,
    create,
    curriculum,
    curriculum_version,
    diff,
    publish,
    retire,
    fork,
]
