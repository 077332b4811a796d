"""Curricula over HTTP: draft, publish, compare, retire and fork."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post, put
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from training.core.application import TrainingApplication
from training.core.errors import NotFound
from training.core.http.commands import Commands, answer
from training.core.http.params import Cursor, IfMatch, Limit, etag, expected_version, text
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.pagination import DEFAULT_LIMIT
from training.curricula import views as queries
from training.curricula.domain import (
    MAX_DESCRIPTION,
    MAX_DURATION_MINUTES,
    MAX_TARGETS,
    MAX_TITLE,
    MIN_DURATION_MINUTES,
    MODULE_KEY_PATTERN,
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
from training.curricula.http.common import READ, WRITE, aliased_validation_error
from training.curricula.views import CURRICULA
from training.skills.domain import SKILL_CODE_PATTERN, SkillTarget

MAX_PREREQUISITES = 100

Title = Annotated[str, text(max_length=MAX_TITLE)]
Description = Annotated[str, text(min_length=0, max_length=MAX_DESCRIPTION)]
ModuleKey = Annotated[
    str,
    msgspec.Meta(
        pattern=MODULE_KEY_PATTERN.pattern, description="lower-case letters, digits, hyphens"
    ),
]
SkillCode = Annotated[str, msgspec.Meta(pattern=SKILL_CODE_PATTERN.pattern)]
Level = Annotated[int, msgspec.Meta(ge=1, le=7)]
Duration = Annotated[int, msgspec.Meta(ge=MIN_DURATION_MINUTES, le=MAX_DURATION_MINUTES)]
VersionNumber = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
Reason = Annotated[str, text(max_length=500)]
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


def module_record(module: ModuleSpec, position: int | None = None) -> queries.ModuleRecord:
    """A module as the read model shows it: of the draft (no position) or of a version."""
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


def curriculum_out(snapshot: CurriculumSnapshot) -> CurriculumOut:
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
        [module_record(module) for module in snapshot.modules],
        snapshot.version,
    )


def version_out(published: PublishedSnapshot) -> VersionOut:
    return VersionOut(
        published.curriculum_id,
        published.version,
        [module_record(m, position) for position, m in enumerate(published.modules, start=1)],
    )


def curriculum_location(curriculum_id: UUID) -> str:
    return f"/v1/curricula/{curriculum_id}"


class CurriculumController(Controller):
    path = "/v1/curricula"
    tags = ["Curricula"]
    security = [{"bearer": []}]
    exception_handlers = {ValidationException: aliased_validation_error}

    @post(
        "/",
        guards=[WRITE],
        operation_id="createCurriculum",
        summary="Create a curriculum (the operator's go to the platform catalogue)",
        status_code=201,
    )
    async def create(
        self, commands: NamedDependency[Commands], data: JSONBody[CurriculumIn]
    ) -> Response[CurriculumOut]:
        outcome = await commands.run(CreateCurriculum(data.title, data.description))
        body = curriculum_out(outcome.result)
        location = curriculum_location(body.curriculum_id)
        return answer(outcome, body, status=201, version=body.version, location=location)

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
        reads: NamedDependency[Reads],
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
        await reads.after([CURRICULA.info])
        async with reads.session() as conn:
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
        self, reads: NamedDependency[Reads], curriculum_id: FromPath[UUID]
    ) -> Response[CurriculumDetail]:
        await reads.after([CURRICULA.info])
        async with reads.session() as conn:
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
        commands: NamedDependency[Commands],
        curriculum_id: FromPath[UUID],
        data: JSONBody[CurriculumPatch],
        if_match: IfMatch = None,
    ) -> Response[CurriculumOut]:
        outcome = await commands.run(
            RetitleCurriculum(
                curriculum_id, data.title, data.description, expected_version(if_match)
            )
        )
        body = curriculum_out(outcome.result)
        return answer(outcome, body, version=body.version)

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
        commands: NamedDependency[Commands],
        curriculum_id: FromPath[UUID],
        data: JSONBody[ModuleIn],
        if_match: IfMatch = None,
    ) -> Response[CurriculumOut]:
        outcome = await commands.run(
            AddModule(curriculum_id, data.spec(data.key), expected_version(if_match))
        )
        body = curriculum_out(outcome.result)
        return answer(outcome, body, status=201, version=body.version)

    @put(
        "/{curriculum_id:uuid}/modules/{key:str}",
        guards=[WRITE],
        operation_id="reviseCurriculumModule",
        summary="Revise a module of the draft",
    )
    async def revise_module(
        self,
        commands: NamedDependency[Commands],
        curriculum_id: FromPath[UUID],
        key: KeyPath,
        data: JSONBody[ModuleBody],
        if_match: IfMatch = None,
    ) -> Response[CurriculumOut]:
        outcome = await commands.run(
            ReviseModule(curriculum_id, data.spec(key), expected_version(if_match))
        )
        body = curriculum_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @delete(
        "/{curriculum_id:uuid}/modules/{key:str}",
        guards=[WRITE],
        operation_id="removeCurriculumModule",
        summary="Remove a module from the draft",
        status_code=200,
    )
    async def remove_module(
        self,
        commands: NamedDependency[Commands],
        curriculum_id: FromPath[UUID],
        key: KeyPath,
        if_match: IfMatch = None,
    ) -> Response[CurriculumOut]:
        outcome = await commands.run(RemoveModule(curriculum_id, key, expected_version(if_match)))
        body = curriculum_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @post(
        "/{curriculum_id:uuid}/publish",
        guards=[WRITE],
        operation_id="publishCurriculum",
        summary="Publish the draft as the next immutable version",
        status_code=200,
    )
    async def publish(
        self,
        commands: NamedDependency[Commands],
        curriculum_id: FromPath[UUID],
        data: JSONBody[PublishIn],
        if_match: IfMatch = None,
    ) -> Response[VersionOut]:
        outcome = await commands.run(PublishCurriculum(curriculum_id, expected_version(if_match)))
        published: PublishedSnapshot = outcome.result
        # The ETag is the curriculum's version; the location is the version just published.
        location = f"{curriculum_location(curriculum_id)}/versions/{published.version}"
        return answer(
            outcome,
            version_out(published),
            version=published.aggregate_version,
            location=location,
        )

    @get(
        "/{curriculum_id:uuid}/versions/{version:str}",
        guards=[READ],
        operation_id="getCurriculumVersion",
        summary="A published version's modules, in order",
    )
    async def get_version(
        self, reads: NamedDependency[Reads], curriculum_id: FromPath[UUID], version: VersionPath
    ) -> VersionOut:
        number = int(version)
        await reads.after([CURRICULA.info])
        async with reads.session() as conn:
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
        app: NamedDependency[TrainingApplication],
        principal: NamedDependency[Principal],
        curriculum_id: FromPath[UUID],
        from_version: Annotated[int, QueryParameter(name="from", ge=1, le=1_000_000)],
        to_version: Annotated[int, QueryParameter(name="to", ge=1, le=1_000_000)],
    ) -> DiffOut:
        found = await sync_to_thread(
            curriculum_diff, app, principal.tenant_id, curriculum_id, from_version, to_version
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
        commands: NamedDependency[Commands],
        curriculum_id: FromPath[UUID],
        data: JSONBody[RetirementIn],
        if_match: IfMatch = None,
    ) -> Response[CurriculumOut]:
        outcome = await commands.run(
            RetireCurriculum(curriculum_id, data.reason, expected_version(if_match))
        )
        body = curriculum_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @post(
        "/{curriculum_id:uuid}/fork",
        guards=[WRITE],
        operation_id="forkCurriculum",
        summary="Fork a published version into a new private draft (tenants only)",
        status_code=201,
    )
    async def fork(
        self,
        commands: NamedDependency[Commands],
        curriculum_id: FromPath[UUID],
        data: JSONBody[ForkIn],
    ) -> Response[CurriculumOut]:
        outcome = await commands.run(ForkCurriculum(curriculum_id, data.version, data.title))
        body = curriculum_out(outcome.result)
        location = curriculum_location(body.curriculum_id)
        return answer(outcome, body, status=201, version=body.version, location=location)
