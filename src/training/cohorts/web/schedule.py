"""The HR manager's list of cohorts, filtered by status and paged, and scheduling a cohort
with the API's fields (a curriculum chosen from the published ones, its latest version unless
another is given); a refused form is shown again with the values kept and the reason beside
the field (422). The same command and view as ``scheduleCohort`` and ``listCohorts``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from training.cohorts.domain.cohorts import check_timezone
from training.cohorts.handlers.cohorts import ScheduleCohort
from training.cohorts.http.cohorts import CohortIn
from training.cohorts.http.common import READ, WRITE
from training.cohorts.views import cohorts as queries
from training.cohorts.views.projection import COHORTS
from training.cohorts.web.common import COHORT_TYPES, FIELD_ADVICE, SECTION, form_of
from training.cohorts.web.mine import COHORT_STATUS_LABELS
from training.core.access import Scope
from training.core.errors import DomainError, StaleVersion
from training.core.http.commands import Commands
from training.core.http.params import Cursor
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.web.i18n import gettext
from training.core.web.pages import Position, after_position, page, shown_at
from training.curricula import views as curricula

PAGE_SIZE = 25
CURRICULUM_CHOICES = 200
COHORT_FIELDS = (
    "name",
    "curriculum_id",
    "curriculum_version",
    "starts_on",
    "ends_on",
    "timezone",
    "capacity",
)


@get("/cohorts", guards=[READ])
async def cohorts(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cursor: Cursor = None,
    status: Annotated[str | None, QueryParameter(name="status", max_length=32)] = None,
    at: Position = None,
) -> Template:
    chosen = status if status in COHORT_STATUS_LABELS else ""
    await after_position(reads, [COHORTS.info], at)
    async with reads.session() as conn:
        found = await queries.list_cohorts(
            conn, limit=PAGE_SIZE, cursor=cursor, status=chosen or None, curriculum_id=None
        )
    kept = {"status": chosen} if chosen else {}
    next_page = (
        "/cohorts?" + urlencode({**kept, "cursor": found.next_cursor}) if found.next_cursor else ""
    )
    return page(
        "cohorts/list.html",
        viewer=principal,
        section=SECTION,
        cohorts=found.items,
        status=chosen,
        statuses=COHORT_STATUS_LABELS,
        next_page=next_page,
        first_page="/cohorts?" + urlencode(kept) if cursor else "",
        may_write=principal.has_scope(Scope.MEMBERS_WRITE),
    )


async def _latest_version(reads: Reads, curriculum_id: str) -> str:
    """The version a curriculum published last, for a form that names none."""
    try:
        key = UUID(curriculum_id)
    except ValueError:
        return ""
    async with reads.session() as conn:
        found = await curricula.get_curriculum(conn, key)
    return str(found.latest_version) if found and found.latest_version else ""


async def _new_page(
    reads: Reads,
    principal: Principal,
    form: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    # The curricula with a published version, to choose from (the id field takes any).
    async with reads.session() as conn:
        found = await curricula.list_curricula(conn, limit=CURRICULUM_CHOICES, cursor=None)
    return page(
        "cohorts/new.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        form=dict(form),
        errors=dict(errors or {}),
        curricula=[c for c in found.items if c.latest_version is not None],
    )


@get("/cohorts/new", guards=[WRITE])
async def new_cohort(
    reads: NamedDependency[Reads], principal: NamedDependency[Principal], at: Position = None
) -> Template:
    await after_position(reads, [curricula.CURRICULA.info], at)
    form = dict.fromkeys(COHORT_FIELDS, "")
    form.update(timezone="UTC", capacity="20", curriculum_version="")
    return await _new_page(reads, principal, form)


def _checked(form: Mapping[str, str]) -> tuple[CohortIn | None, dict[str, str]]:
    """The form by the API's rules for each field: the body, or what to say beside each."""
    errors: dict[str, str] = {}
    for name in COHORT_FIELDS:
        try:
            msgspec.convert(form[name], COHORT_TYPES[name], strict=False)
        except (msgspec.ValidationError, TypeError, ValueError):
            errors[name] = gettext(FIELD_ADVICE[name])
    if errors:
        return None, errors
    return msgspec.convert(dict(form), CohortIn, strict=False), {}


@post("/cohorts", guards=[WRITE], status_code=303)
async def schedule(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
) -> Response[Any]:
    form = form_of(await request.form(), COHORT_FIELDS)
    if not form["curriculum_version"]:
        form["curriculum_version"] = await _latest_version(reads, form["curriculum_id"])
    data, errors = _checked(form)
    if data is not None:
        try:
            outcome = await commands.run(
                ScheduleCohort(
                    data.name,
                    data.curriculum_id,
                    data.curriculum_version,
                    data.starts_on,
                    data.ends_on,
                    check_timezone(data.timezone),
                    data.capacity,
                )
            )
        except DomainError as error:
            if isinstance(error, StaleVersion):
                raise
            field = error.field if error.field in COHORT_FIELDS else ""
            errors[field or ""] = error.detail
        else:
            location = f"/cohorts/{outcome.result.cohort_id}"
            return Redirect(shown_at(location, outcome), status_code=303)
    return await _new_page(reads, principal, form, errors, status_code=422)


ROUTES: list[Any] = [cohorts, new_cohort, schedule]
