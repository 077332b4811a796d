"""What the curriculum pages share: who may read or write, the labels and advice of the
forms, a module's form as sent, and the curriculum's page."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import msgspec
from litestar import Response
from litestar.response import Redirect, Template

from training.core.access import Scope
from training.core.errors import NotFound
from training.core.http.principal import Principal, requires_scope
from training.core.http.reads import Reads
from training.core.web.forms import written_targets
from training.core.web.i18n import N_
from training.core.web.pages import after_position, page, shown_at
from training.curricula import views as queries
from training.curricula.views import CURRICULA

PAGE_SIZE = 25
SECTION = "curricula"
READ = [requires_scope(Scope.CURRICULA_READ)]
WRITE = [requires_scope(Scope.CURRICULA_WRITE)]

FORMAT_LABELS: dict[str, str] = {
    "video": N_("Video"),
    "reading": N_("Reading"),
    "lab": N_("Lab"),
    "live_session": N_("Live session"),
    "project": N_("Project"),
}
STATUS_LABELS: dict[str, str] = {"active": N_("Active"), "retired": N_("Retired")}
FIELD_LABELS: dict[str, str] = {
    "title": N_("Title"),
    "description": N_("Description"),
    "format": N_("Format"),
    "duration_minutes": N_("Minutes"),
    "targets": N_("Skills it teaches"),
    "prerequisites": N_("Prerequisites"),
}
FIELD_ADVICE: dict[str, str] = {
    "key": N_("Enter 1 to 64 lower-case letters, digits or inner hyphens, such as intro-1."),
    "title": N_("Enter a title of 1 to 200 characters."),
    "description": N_("Enter at most 4000 characters."),
    "format": N_("Choose a format."),
    "duration_minutes": N_("Enter a whole number of minutes from 5 to 10000."),
    "targets": N_("Write one skill a line as code: level (1 to 7), such as python: 3; at most 10."),
    "prerequisites": N_("Choose modules of this draft."),
    "reason": N_("Give a reason of 1 to 500 characters."),
    "version": N_("Choose a published version."),
}
CYCLE = N_("These prerequisites would form a cycle: %(cycle)s. Remove one of them.")


@dataclasses.dataclass
class ModuleForm:
    """A module's form as sent: every value kept, to be shown again when refused."""

    key: str = ""
    title: str = ""
    format: str = "reading"
    duration_minutes: str = "30"
    description: str = ""
    targets: str = ""
    prerequisites: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, form: Any, key: str | None = None) -> ModuleForm:
        return cls(
            key=key if key is not None else str(form.get("key", "")).strip()[:100],
            title=str(form.get("title", "")).strip()[:400],
            format=str(form.get("format", ""))[:32],
            duration_minutes=str(form.get("duration_minutes", "")).strip()[:12],
            description=str(form.get("description", "")).strip()[:8000],
            targets=str(form.get("targets", ""))[:4000],
            prerequisites=[str(p)[:100] for p in form.getall("prerequisites", [])][:200],
        )

    @classmethod
    def of_record(cls, record: queries.ModuleRecord) -> ModuleForm:
        return cls(
            key=record.key,
            title=record.title,
            format=record.format,
            duration_minutes=str(record.duration_minutes),
            description=record.description,
            targets=written_targets(record.targets),
            prerequisites=list(record.prerequisites),
        )


def convert(value: Any, kind: Any) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError:
        return None


async def after(reads: Reads, at: int | None) -> None:
    await after_position(reads, [CURRICULA.info], at)


async def find_curriculum(reads: Reads, curriculum_id: UUID) -> queries.CurriculumRecord:
    async with reads.session() as conn:
        record = await queries.get_curriculum(conn, curriculum_id)
    if record is None:
        raise NotFound(f"curriculum {curriculum_id} not found")
    return record


def redirect(location: str, outcome: Any) -> Response[Any]:
    return Redirect(shown_at(location, outcome), status_code=303)


async def curriculum_page(
    reads: Reads,
    principal: Principal,
    record: queries.CurriculumRecord,
    form: ModuleForm | None = None,
    errors: Mapping[str, str] | None = None,
    reason: str = "",
    status_code: int = 200,
) -> Template:
    async with reads.session() as conn:
        modules = await queries.modules_of(conn, record.curriculum_id)
    versions = list(range(1, (record.latest_version or 0) + 1))
    return page(
        "curricula/curriculum.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        curriculum=record,
        modules=modules,
        versions=versions,
        form=form or ModuleForm(),
        errors=dict(errors or {}),
        reason=reason,
        formats=FORMAT_LABELS,
        statuses=STATUS_LABELS,
        may_write=principal.has_scope(Scope.CURRICULA_WRITE),
        editable=not record.catalogue and record.status == "active",
    )
