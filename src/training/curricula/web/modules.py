"""A draft's modules on the curriculum pages: add, revise and remove them with the same
commands as the API; a refused field is shown beside its message, and a prerequisite cycle
the domain refuses is named, module by module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template

from training.core.errors import NotFound, RuleViolated
from training.core.http.commands import Commands
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.web.forms import form_version, parse_targets, whole_number
from training.core.web.i18n import gettext
from training.core.web.pages import page
from training.curricula import views as queries
from training.curricula.domain import MAX_TARGETS, ModuleFormat, ModuleSpec, PrerequisiteCycle
from training.curricula.handlers import (
    AddModule,
    RemoveModule,
    ReviseModule,
)
from training.curricula.http.curricula import (
    Description,
    Duration,
    ModuleKey,
    Title,
)
from training.curricula.web.common import (
    CYCLE,
    FIELD_ADVICE,
    FORMAT_LABELS,
    SECTION,
    WRITE,
    ModuleForm,
    convert,
    curriculum_page,
    find_curriculum,
    redirect,
)
from training.skills.domain import SkillTarget


def check_module(form: ModuleForm) -> tuple[ModuleSpec | None, dict[str, str]]:
    """The module by the API's rules for each field, or what to say beside each refused one."""
    values: dict[str, Any] = {
        "key": convert(form.key, ModuleKey),
        "title": convert(form.title, Title),
        "description": convert(form.description, Description),
        "format": form.format if form.format in FORMAT_LABELS else None,
        "duration_minutes": convert(int(form.duration_minutes), Duration)
        if whole_number(form.duration_minutes)
        else None,
    }
    pairs = parse_targets(form.targets)
    values["targets"] = (
        tuple(SkillTarget(skill, level) for skill, level in pairs)
        if pairs is not None and len(pairs) <= MAX_TARGETS
        else None
    )
    prerequisites = [convert(p, ModuleKey) for p in form.prerequisites]
    values["prerequisites"] = None if None in prerequisites else tuple(prerequisites)
    errors = {name: gettext(FIELD_ADVICE[name]) for name, value in values.items() if value is None}
    if errors:
        return None, errors
    return ModuleSpec(
        key=values["key"],
        title=values["title"],
        description=values["description"],
        format=ModuleFormat(values["format"]),
        duration_minutes=values["duration_minutes"],
        targets=values["targets"],
        prerequisites=values["prerequisites"],
    ), {}


def module_refusal(error: RuleViolated, key: str) -> tuple[str, str]:
    """The field of the module's form a command refused and what to say beside it: a cycle
    is named, module by module."""
    if isinstance(error, PrerequisiteCycle):
        return "prerequisites", gettext(CYCLE, cycle=" → ".join(error.cycle))
    field = error.field or ""
    prefix = f"modules.{key}."
    name = field[len(prefix) :] if field.startswith(prefix) else field
    name = name.split(".")[0].split("[")[0]
    return (name if name in FIELD_ADVICE else ""), error.detail


@post("/curricula/{curriculum_id:uuid}/modules", guards=WRITE, status_code=303)
async def add_module(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    curriculum_id: FromPath[UUID],
) -> Response[Any]:
    sent = await request.form()
    form = ModuleForm.of(sent)
    spec, errors = check_module(form)
    if spec is not None:
        try:
            outcome = await commands.run(AddModule(curriculum_id, spec, form_version(sent)))
        except RuleViolated as error:
            field, message = module_refusal(error, spec.key)
            errors[field] = message
        else:
            return redirect(f"/curricula/{curriculum_id}", outcome)
    record = await find_curriculum(reads, curriculum_id)
    return await curriculum_page(reads, principal, record, form, errors, status_code=422)


async def _module(reads: Reads, curriculum_id: UUID, key: str) -> queries.ModuleRecord:
    async with reads.session() as conn:
        modules = await queries.modules_of(conn, curriculum_id)
    found = next((module for module in modules if module.key == key), None)
    if found is None:
        raise NotFound(f"module {key} not found")
    return found


async def _module_page(
    reads: Reads,
    principal: Principal,
    record: queries.CurriculumRecord,
    form: ModuleForm,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    async with reads.session() as conn:
        modules = await queries.modules_of(conn, record.curriculum_id)
    return page(
        "curricula/module.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        curriculum=record,
        modules=modules,
        form=form,
        errors=dict(errors or {}),
        formats=FORMAT_LABELS,
    )


@get("/curricula/{curriculum_id:uuid}/modules/{key:str}", guards=WRITE)
async def module_form(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    curriculum_id: FromPath[UUID],
    key: FromPath[str],
) -> Template:
    record = await find_curriculum(reads, curriculum_id)
    found = await _module(reads, curriculum_id, key)
    return await _module_page(reads, principal, record, ModuleForm.of_record(found))


@post("/curricula/{curriculum_id:uuid}/modules/{key:str}", guards=WRITE, status_code=303)
async def revise_module(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    curriculum_id: FromPath[UUID],
    key: FromPath[str],
) -> Response[Any]:
    sent = await request.form()
    form = ModuleForm.of(sent, key=key[:100])
    spec, errors = check_module(form)
    if spec is not None:
        try:
            outcome = await commands.run(ReviseModule(curriculum_id, spec, form_version(sent)))
        except RuleViolated as error:
            field, message = module_refusal(error, spec.key)
            errors[field] = message
        else:
            return redirect(f"/curricula/{curriculum_id}", outcome)
    record = await find_curriculum(reads, curriculum_id)
    return await _module_page(reads, principal, record, form, errors, status_code=422)


@post("/curricula/{curriculum_id:uuid}/modules/{key:str}/remove", guards=WRITE, status_code=303)
async def remove_module(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    curriculum_id: FromPath[UUID],
    key: FromPath[str],
) -> Response[Any]:
    sent = await request.form()
    outcome = await commands.run(RemoveModule(curriculum_id, key[:100], form_version(sent)))
    return redirect(f"/curricula/{curriculum_id}", outcome)


ROUTES: list[Any] = [add_module, module_form, revise_module, remove_module]
