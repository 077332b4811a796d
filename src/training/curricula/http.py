"""Curricula over HTTP: draft, publish, compare, retire and fork; search published modules.

The same endpoints serve the operator, who keeps the platform catalogue, and the tenants,
who keep private curricula and read (and fork) the catalogue. Reads by the operator see the
catalogue only.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.concurrency import sync_to_thread
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from training.core.access import Scope
from training.core.errors import NotFound
from training.core.http.principal import requires_scope
from training.core.http.problems import EXCEPTION_HANDLERS
from training.core.http.services import (
    IfMatch,
    command_headers,
    etag,
    expected_version,
    principal_of,
    read_after,
    run_command,
    services_of,
)
from training.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from training.curricula import views as queries
from training.curricula.domain import (
    MAX_DESCRIPTION,
    MAX_DURATION_MINUTES,
    MAX_TARGETS,
    MAX_TITLE,
    MIN_DURATION_MINUTES,
    ModuleFormat,
    ModuleSpec,
)
from training.curricula.handlers import (
    AddModule,
    CreateCurriculum,
    CurriculumSnapshot,
    ForkCurriculum,
    PublishCurriculum,
    PublishedSnapshot,
    RemoveModule,
    RetireCurriculum,
    RetitleCurriculum,
    ReviseModule,
    curriculum_diff,
)
from training.curricula.views import CURRICULA
from training.skills.domain import SkillTarget

# Text is stored in PostgreSQL, which refuses NUL characters: refuse them at the edge.
NO_NUL = r"^[^\x00]*$"
KEY_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
MAX_PREREQUISITES = 100

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE, pattern=NO_NUL)]
Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION, pattern=NO_NUL)]
ModuleKey = Annotated[
    str, msgspec.Meta(pattern=KEY_PATTERN, description="lower-case letters, digits, hyphens")
]
SkillCode = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN)]
Level = Annotated[int, msgspec.Meta(ge=1, le=7)]
Duration = Annotated[int, msgspec.Meta(ge=MIN_DURATION_MINUTES, le=MAX_DURATION_MINUTES)]
VersionNumber = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=NO_NUL)]
Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None,
    QueryParameter(name="cursor", max_length=512, description="next_cursor of the previous page"),
]
KeyPath = Annotated[str, PathParameter(name="key", min_length=1, max_length=64)]
# Checked here rather than by the router, so a bad value is a 400 naming it, after the
# caller was authenticated, rather than a 404 before.
VersionPath = Annotated[
    str, PathParameter(name="version", pattern=r"^[1-9][0-9]{0,8}$", description="1, 2, ...")
]


class TargetIn(msgspec.Struct, forbid_unknown_fields=True):
    skill: SkillCode
    level: Level


class ModuleBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A module without its key (the key is in the path when revising)."""

    title: Title
    format: ModuleFormat
    duration_minutes: Duration
    description: Description = ""
    targets: Annotated[list[TargetIn], msgspec.Meta(max_length=MAX_TARGETS)] = []
    prerequisites: Annotated[list[ModuleKey], msgspec.Meta(max_length=MAX_PREREQUISITES)] = []

    def spec(self, key: str) -> ModuleSpec:
        return ModuleSpec(
            key=key,
            title=self.title,
            description=self.description,
            format=self.format,
            duration_minutes=self.duration_minutes,
            targets=tuple(SkillTarget(t.skill, t.level) for t in self.targets),
            prerequisites=tuple(self.prerequisites),
        )


class ModuleIn(ModuleBody, forbid_unknown_fields=True, kw_only=True):
    key: ModuleKey


class CurriculumIn(msgspec.Struct, forbid_unknown_fields=True):
    title: Title
    description: Description = ""


class CurriculumPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Send only what changes."""

    title: Title | None = None
    description: Description | None = None


class PublishIn(msgspec.Struct, forbid_unknown_fields=True):
    pass


class RetirementIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class ForkIn(msgspec.Struct, forbid_unknown_fields=True):
    version: VersionNumber
    title: Title | None = None


class CurriculumOut(msgspec.Struct):
    """A curriculum as a command left it, with its draft modules in key order."""

    curriculum_id: UUID
    tenant_id: UUID | None
    catalogue: bool
    title: str
    description: str
    status: str
    latest_version: int | None
    has_unpublished_changes: bool
    forked_from: UUID | None
    forked_version: int | None
    modules: list[queries.ModuleRecord]
    version: int


class CurriculumDetail(queries.CurriculumRecord, kw_only=True):
    """A curriculum and its draft modules (``modules``) in key order."""

    modules: list[queries.ModuleRecord]


class VersionOut(msgspec.Struct):
    """A published version: immutable, modules in order (prerequisites first)."""

    curriculum_id: UUID
    version: int
    modules: list[queries.ModuleRecord]


class ChangeOut(msgspec.Struct):
    key: str
    fields: list[str]


class DiffOut(msgspec.Struct):
    from_version: int
    to_version: int
    added: list[str]
    removed: list[str]
    changed: list[ChangeOut]


class CurriculumPage(msgspec.Struct):
    items: list[queries.CurriculumRecord]
    next_cursor: str | None


class ModulePage(msgspec.Struct):
    items: list[queries.ModuleListing]
    next_cursor: str | None


def _module_out(module: ModuleSpec, position: int | None = None) -> queries.ModuleRecord:
    return queries.ModuleRecord(
        key=module.key,
        title=module.title,
        description=module.description,
        format=str(module.format),
        duration_minutes=module.duration_minutes,
        targets=[queries.TargetRecord(t.skill, t.level) for t in module.targets],
        prerequisites=list(module.prerequisites),
        position=position,
    )


def _out(snapshot: CurriculumSnapshot) -> CurriculumOut:
    return CurriculumOut(
        snapshot.curriculum_id,
        snapshot.tenant_id,
        snapshot.tenant_id is None,
        snapshot.title,
        snapshot.description,
        snapshot.status,
        snapshot.latest_version,
        snapshot.has_unpublished_changes,
        snapshot.forked_from,
        snapshot.forked_version,
        [_module_out(module) for module in snapshot.modules],
        snapshot.version,
    )


def _version_out(published: PublishedSnapshot) -> VersionOut:
    return VersionOut(
        published.curriculum_id,
        published.version,
        [_module_out(m, position) for position, m in enumerate(published.modules, start=1)],
    )


async def _changed(request: Request[Any, Any, Any], command: Any) -> Response[CurriculumOut]:
    outcome = await run_command(request, command)
    body = _out(outcome.result)
    return Response(body, headers=command_headers(outcome, version=body.version))


async def _created(request: Request[Any, Any, Any], command: Any) -> Response[CurriculumOut]:
    outcome = await run_command(request, command)
    body = _out(outcome.result)
    headers = command_headers(outcome, version=body.version)
    headers["Location"] = f"/v1/curricula/{body.curriculum_id}"
    return Response(body, status_code=201, headers=headers)


# Query parameters whose names are not Python names (or are reserved by Litestar) are
# declared under another name; a validation error names them as the client sent them.
QUERY_ALIASES = {
    "from_version": "from",
    "to_version": "to",
    "visibility": "scope",
    "module_format": "format",
}


def _aliased_validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Any]:
    extra = exc.extra
    if isinstance(extra, list):
        extra = [
            {**item, "key": QUERY_ALIASES.get(str(item.get("key")), item.get("key"))}
            if isinstance(item, dict) and item.get("source") == "query"
            else item
            for item in extra
        ]
    handler = EXCEPTION_HANDLERS[ValidationException]
    response: Response[Any] = handler(request, ValidationException(detail=exc.detail, extra=extra))
    return response


READ = requires_scope(Scope.CURRICULA_READ, operator=True)
WRITE = requires_scope(Scope.CURRICULA_WRITE, operator=True)


class CurriculumController(Controller):
    path = "/v1/curricula"
    tags = ["Curricula"]
    security = [{"bearer": []}]
    exception_handlers = {ValidationException: _aliased_validation_error}

    @post(
        "/",
        guards=[WRITE],
        operation_id="createCurriculum",
        summary="Create a curriculum (the operator's go to the platform catalogue)",
        status_code=201,
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[CurriculumIn]
    ) -> Response[CurriculumOut]:
        return await _created(request, CreateCurriculum(data.title, data.description))

    @get(
        "/",
        guards=[READ],
        operation_id="listCurricula",
        summary="List curricula: the tenant's own and the catalogue's",
        description="`scope=tenant` lists the tenant's own, `scope=catalogue` the platform "
        "catalogue's, `all` both. The operator sees the catalogue only. Ordered by creation.",
    )
    async def list_curricula(
        self,
        request: Request[Any, Any, Any],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        # "scope" is a reserved keyword argument of Litestar's, hence the alias.
        visibility: Annotated[
            str, QueryParameter(name="scope", pattern="^(all|tenant|catalogue)$")
        ] = "all",
        status: Annotated[
            str | None, QueryParameter(name="status", pattern="^(active|retired)$")
        ] = None,
    ) -> CurriculumPage:
        await read_after(request, [CURRICULA.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            page = await queries.list_curricula(
                conn, limit=limit, cursor=cursor, scope=visibility, status=status
            )
        return CurriculumPage(page.items, page.next_cursor)

    @get(
        "/{curriculum_id:uuid}",
        guards=[READ],
        operation_id="getCurriculum",
        summary="Read a curriculum and its draft modules",
    )
    async def get_curriculum(
        self, request: Request[Any, Any, Any], curriculum_id: FromPath[UUID]
    ) -> Response[CurriculumDetail]:
        await read_after(request, [CURRICULA.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            record = await queries.get_curriculum(conn, curriculum_id)
            if record is None:
                raise NotFound(f"curriculum {curriculum_id} not found")
            modules = await queries.modules_of(conn, curriculum_id)
        body = CurriculumDetail(**msgspec.structs.asdict(record), modules=modules)
        return Response(body, headers={"ETag": etag(record.version)})

    @patch(
        "/{curriculum_id:uuid}",
        guards=[WRITE],
        operation_id="updateCurriculum",
        summary="Change a curriculum's title or description",
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        curriculum_id: FromPath[UUID],
        data: JSONBody[CurriculumPatch],
        if_match: IfMatch = None,
    ) -> Response[CurriculumOut]:
        command = RetitleCurriculum(
            curriculum_id, data.title, data.description, expected_version(if_match)
        )
        return await _changed(request, command)

    @post(
        "/{curriculum_id:uuid}/modules",
        guards=[WRITE],
        operation_id="addCurriculumModule",
        summary="Add a module to the draft",
        description="Prerequisites name modules of the draft and may not form a cycle; target "
        "skills must be usable in the tenant's framework (the catalogue: default skills).",
        status_code=201,
    )
    async def add_module(
        self,
        request: Request[Any, Any, Any],
        curriculum_id: FromPath[UUID],
        data: JSONBody[ModuleIn],
        if_match: IfMatch = None,
    ) -> Response[CurriculumOut]:
        command = AddModule(curriculum_id, data.spec(data.key), expected_version(if_match))
        outcome = await run_command(request, command)
        body = _out(outcome.result)
        return Response(
            body, status_code=201, headers=command_headers(outcome, version=body.version)
        )

    @put(
        "/{curriculum_id:uuid}/modules/{key:str}",
        guards=[WRITE],
        operation_id="reviseCurriculumModule",
        summary="Revise a module of the draft",
    )
    async def revise_module(
        self,
        request: Request[Any, Any, Any],
        curriculum_id: FromPath[UUID],
        key: KeyPath,
        data: JSONBody[ModuleBody],
        if_match: IfMatch = None,
    ) -> Response[CurriculumOut]:
        command = ReviseModule(curriculum_id, data.spec(key), expected_version(if_match))
        return await _changed(request, command)

    @delete(
        "/{curriculum_id:uuid}/modules/{key:str}",
        guards=[WRITE],
        operation_id="removeCurriculumModule",
        summary="Remove a module from the draft",
        status_code=200,
    )
    async def remove_module(
        self,
        request: Request[Any, Any, Any],
        curriculum_id: FromPath[UUID],
        key: KeyPath,
        if_match: IfMatch = None,
    ) -> Response[CurriculumOut]:
        return await _changed(request, RemoveModule(curriculum_id, key, expected_version(if_match)))

    @post(
        "/{curriculum_id:uuid}/publish",
        guards=[WRITE],
        operation_id="publishCurriculum",
        summary="Publish the draft as the next immutable version",
        status_code=200,
    )
    async def publish(
        self,
        request: Request[Any, Any, Any],
        curriculum_id: FromPath[UUID],
        data: JSONBody[PublishIn],
        if_match: IfMatch = None,
    ) -> Response[VersionOut]:
        outcome = await run_command(
            request, PublishCurriculum(curriculum_id, expected_version(if_match))
        )
        published: PublishedSnapshot = outcome.result
        headers = command_headers(outcome, version=published.aggregate_version)
        headers["Location"] = f"/v1/curricula/{curriculum_id}/versions/{published.version}"
        return Response(_version_out(published), headers=headers)

    @get(
        "/{curriculum_id:uuid}/versions/{version:str}",
        guards=[READ],
        operation_id="getCurriculumVersion",
        summary="A published version's modules, in order",
    )
    async def get_version(
        self, request: Request[Any, Any, Any], curriculum_id: FromPath[UUID], version: VersionPath
    ) -> VersionOut:
        number = int(version)
        await read_after(request, [CURRICULA.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
            record = await queries.get_curriculum(conn, curriculum_id)
            if record is None:
                raise NotFound(f"curriculum {curriculum_id} not found")
            if record.latest_version is None or number > record.latest_version:
                raise NotFound(f"version {number} of curriculum {curriculum_id} not found")
            modules = await queries.modules_of(conn, curriculum_id, number)
        return VersionOut(curriculum_id, number, modules)

    @get(
        "/{curriculum_id:uuid}/diff",
        guards=[READ],
        operation_id="diffCurriculumVersions",
        summary="What changed between two published versions",
        description="Compared by the curriculum itself (the write model), so the answer "
        "never lags behind a publish and follows the same rules as the domain.",
    )
    async def diff(
        self,
        request: Request[Any, Any, Any],
        curriculum_id: FromPath[UUID],
        from_version: Annotated[int, QueryParameter(name="from", ge=1, le=1_000_000)],
        to_version: Annotated[int, QueryParameter(name="to", ge=1, le=1_000_000)],
    ) -> DiffOut:
        found = await sync_to_thread(
            curriculum_diff,
            services_of(request).app,
            principal_of(request).tenant_id,
            curriculum_id,
            from_version,
            to_version,
        )
        return DiffOut(
            found.from_version,
            found.to_version,
            list(found.added),
            list(found.removed),
            [ChangeOut(change.key, list(change.fields)) for change in found.changed],
        )

    @post(
        "/{curriculum_id:uuid}/retire",
        guards=[WRITE],
        operation_id="retireCurriculum",
        summary="Retire a curriculum: no more edits; published versions stay readable",
        status_code=200,
    )
    async def retire(
        self,
        request: Request[Any, Any, Any],
        curriculum_id: FromPath[UUID],
        data: JSONBody[RetirementIn],
        if_match: IfMatch = None,
    ) -> Response[CurriculumOut]:
        return await _changed(
            request, RetireCurriculum(curriculum_id, data.reason, expected_version(if_match))
        )

    @post(
        "/{curriculum_id:uuid}/fork",
        guards=[WRITE],
        operation_id="forkCurriculum",
        summary="Fork a published version into a new private draft (tenants only)",
        status_code=201,
    )
    async def fork(
        self, request: Request[Any, Any, Any], curriculum_id: FromPath[UUID], data: JSONBody[ForkIn]
    ) -> Response[CurriculumOut]:
        return await _created(request, ForkCurriculum(curriculum_id, data.version, data.title))


class ModuleController(Controller):
    path = "/v1/modules"
    tags = ["Curricula"]
    security = [{"bearer": []}]
    exception_handlers = {ValidationException: _aliased_validation_error}

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
        request: Request[Any, Any, Any],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        skill: Annotated[
            str | None, QueryParameter(name="skill", pattern=KEY_PATTERN, max_length=64)
        ] = None,
        level: Annotated[int | None, QueryParameter(name="level", ge=1, le=7)] = None,
        module_format: Annotated[ModuleFormat | None, QueryParameter(name="format")] = None,
        curriculum_id: Annotated[UUID | None, QueryParameter(name="curriculum_id")] = None,
    ) -> ModulePage:
        await read_after(request, [CURRICULA.info])
        async with services_of(request).store.session(principal_of(request).tenant_id) as conn:
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


ROUTES = [CurriculumController, ModuleController]
