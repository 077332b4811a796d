"""The module search over HTTP: modules of the latest published versions the caller sees."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from training.core.http.params import Cursor, Limit
from training.core.http.reads import Reads
from training.core.pagination import DEFAULT_LIMIT
from training.curricula import views as queries
from training.curricula.domain import ModuleFormat
from training.curricula.http.common import READ, aliased_validation_error
from training.curricula.views import CURRICULA
from training.skills.domain import SKILL_CODE_PATTERN


class ModulePage(msgspec.Struct):
    items: list[queries.ModuleListing]
    next_cursor: str | None


class ModuleController(Controller):
    path = "/v1/modules"
    tags = ["Curricula"]
    security = [{"bearer": []}]
    exception_handlers = {ValidationException: aliased_validation_error}

    @get(
        "/",
        guards=[READ],
        operation_id="listModules",
        summary="Search the modules of the latest published versions",
        description="Modules of the latest published version of each active curriculum the "
        "caller sees (its own and the catalogue's). `level` matches a target's level: with "
        "`skill`, the level of that skill's target. Filters combine with AND. Ordered by "
        "curriculum (as created), then by the published order.",
    )
    async def list_modules(
        self,
        reads: NamedDependency[Reads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        skill: Annotated[
            str | None,
            QueryParameter(name="skill", pattern=SKILL_CODE_PATTERN.pattern, max_length=64),
        ] = None,
        level: Annotated[int | None, QueryParameter(name="level", ge=1, le=7)] = None,
        module_format: Annotated[ModuleFormat | None, QueryParameter(name="format")] = None,
        curriculum_id: Annotated[UUID | None, QueryParameter(name="curriculum_id")] = None,
    ) -> ModulePage:
        await reads.after([CURRICULA.info])
        async with reads.session() as conn:
            page = await queries.list_modules(
                conn,
                limit=limit,
                cursor=cursor,
                skill=skill,
                level=level,
                module_format=str(module_format) if module_format else None,
                curriculum_id=curriculum_id,
            )
        return ModulePage(page.items, page.next_cursor)
