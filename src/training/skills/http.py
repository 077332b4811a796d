"""Skills and role profiles over HTTP."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from training.core.access import Scope
from training.core.errors import NotFound
from training.core.http.commands import Commands, answer
from training.core.http.params import Cursor, IfMatch, Limit, etag, expected_version, text
from training.core.http.principal import requires_scope
from training.core.http.reads import Reads
from training.core.pagination import DEFAULT_LIMIT
from training.skills import views as queries
from training.skills.domain import (
    MAX_DESCRIPTION,
    MAX_DESCRIPTOR,
    MAX_NAME,
    SkillDefinition,
    SkillTarget,
)
from training.skills.handlers import (
    AddSkill,
    DefineRoleProfile,
    RenameSkill,
    RetireRoleProfile,
    RetireSkill,
    ReviseRoleProfile,
    RoleProfileSnapshot,
)
from training.skills.queries import default_framework
from training.skills.views import SKILLS

Code = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
Name = Annotated[str, text(max_length=MAX_NAME)]
Description = Annotated[str, text(min_length=0, max_length=MAX_DESCRIPTION)]
Descriptor = Annotated[str, text(max_length=MAX_DESCRIPTOR)]
Level = Annotated[int, msgspec.Meta(ge=1, le=7)]
# Path parameters are checked by their PathParameter; a msgspec.Meta here would be ignored.
CodePath = Annotated[str, PathParameter(max_length=64)]


class LevelOut(msgspec.Struct):
    level: int
    name: str
    summary: str


class CategoryOut(msgspec.Struct):
    code: str
    name: str


class FrameworkOut(msgspec.Struct):
    framework: str
    version: str
    levels: list[LevelOut]
    categories: list[CategoryOut]


class SkillIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    name: Name
    category: Code
    levels: Annotated[list[Descriptor], msgspec.Meta(min_length=7, max_length=7)]
    description: Description = ""


class SkillRename(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class Empty(msgspec.Struct, forbid_unknown_fields=True):
    pass


class TargetIn(msgspec.Struct, forbid_unknown_fields=True):
    skill: Code
    level: Level


class RoleProfileIn(msgspec.Struct, forbid_unknown_fields=True):
    key: Code
    name: Name
    targets: Annotated[list[TargetIn], msgspec.Meta(min_length=1, max_length=100)]
    description: Description = ""


class RoleProfileRevision(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    targets: Annotated[list[TargetIn], msgspec.Meta(min_length=1, max_length=100)]
    description: Description = ""


class ChangeAccepted(msgspec.Struct):
    framework_version: int


class RoleProfileOut(msgspec.Struct):
    profile_id: str
    key: str
    name: str
    description: str
    revision: int
    retired: bool
    targets: list[queries.TargetRecord]
    version: int


class SkillPage(msgspec.Struct):
    items: list[queries.SkillRecord]
    next_cursor: str | None


class RoleProfilePage(msgspec.Struct):
    items: list[queries.RoleProfileRecord]
    next_cursor: str | None


class RevisionPage(msgspec.Struct):
    items: list[queries.RevisionRecord]
    next_cursor: str | None


def role_profile_out(snapshot: RoleProfileSnapshot) -> RoleProfileOut:
    return RoleProfileOut(
        str(snapshot.profile_id),
        snapshot.key,
        snapshot.name,
        snapshot.description,
        snapshot.revision,
        snapshot.retired,
        [queries.TargetRecord(t.skill, t.level) for t in snapshot.targets],
        snapshot.version,
    )


def skill_targets(targets: list[TargetIn]) -> tuple[SkillTarget, ...]:
    return tuple(SkillTarget(t.skill, t.level) for t in targets)


class SkillController(Controller):
    path = "/v1"
    tags = ["Skills"]
    security = [{"bearer": []}]

    @get(
        "/skill-framework",
        guards=[requires_scope(Scope.SKILLS_READ)],
        operation_id="getSkillFramework",
        summary="The level scale and skill categories",
    )
    async def framework(self) -> FrameworkOut:
        framework = default_framework()
        return FrameworkOut(
            framework.name,
            framework.version,
            [LevelOut(level.level, level.name, level.summary) for level in framework.levels],
            [CategoryOut(c.code, c.name) for c in framework.categories],
        )

    @get(
        "/skills",
        guards=[requires_scope(Scope.SKILLS_READ)],
        operation_id="listSkills",
        summary="The tenant's skills, ordered by code",
    )
    async def list_skills(
        self,
        reads: NamedDependency[Reads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        category: Annotated[str | None, QueryParameter(name="category", max_length=64)] = None,
        source: Annotated[
            str | None, QueryParameter(name="source", pattern="^(default|custom)$")
        ] = None,
        include_retired: Annotated[bool, QueryParameter(name="include_retired")] = False,
    ) -> SkillPage:
        await reads.after([SKILLS.info])
        async with reads.session() as conn:
            page = await queries.list_skills(
                conn,
                limit=limit,
                cursor=cursor,
                category=category,
                include_retired=include_retired,
                source=source,
            )
        return SkillPage(page.items, page.next_cursor)

    @get(
        "/skills/{code:str}",
        guards=[requires_scope(Scope.SKILLS_READ)],
        operation_id="getSkill",
        summary="One skill with its seven level descriptors",
    )
    async def get_skill(self, reads: NamedDependency[Reads], code: CodePath) -> queries.SkillRecord:
        await reads.after([SKILLS.info])
        async with reads.session() as conn:
            record = await queries.get_skill(conn, code)
        if record is None:
            raise NotFound(f"skill {code} not found")
        return record

    @post(
        "/skills",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="addSkill",
        summary="Add a custom skill",
        status_code=201,
    )
    async def add_skill(
        self, commands: NamedDependency[Commands], data: JSONBody[SkillIn]
    ) -> Response[ChangeAccepted]:
        skill = SkillDefinition(
            data.code, data.name, data.category, data.description, tuple(data.levels)
        )
        outcome = await commands.run(AddSkill(skill))
        body = ChangeAccepted(outcome.result)
        return answer(outcome, body, status=201, location=f"/v1/skills/{data.code}")

    @patch(
        "/skills/{code:str}",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="renameSkill",
        summary="Rename a skill (default or custom)",
    )
    async def rename_skill(
        self, commands: NamedDependency[Commands], code: CodePath, data: JSONBody[SkillRename]
    ) -> Response[ChangeAccepted]:
        outcome = await commands.run(RenameSkill(code, data.name))
        return answer(outcome, ChangeAccepted(outcome.result))

    @post(
        "/skills/{code:str}/retire",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="retireSkill",
        summary="Retire a skill; it stays in history",
        status_code=200,
    )
    async def retire_skill(
        self, commands: NamedDependency[Commands], code: CodePath, data: JSONBody[Empty]
    ) -> Response[ChangeAccepted]:
        outcome = await commands.run(RetireSkill(code))
        return answer(outcome, ChangeAccepted(outcome.result))


class RoleProfileController(Controller):
    path = "/v1/role-profiles"
    tags = ["Skills"]
    security = [{"bearer": []}]

    @get(
        "/",
        guards=[requires_scope(Scope.SKILLS_READ)],
        operation_id="listRoleProfiles",
        summary="Role profiles, ordered by key",
    )
    async def list_profiles(
        self,
        reads: NamedDependency[Reads],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
        include_retired: Annotated[bool, QueryParameter(name="include_retired")] = False,
    ) -> RoleProfilePage:
        await reads.after([SKILLS.info])
        async with reads.session() as conn:
            page = await queries.list_role_profiles(
                conn, limit=limit, cursor=cursor, include_retired=include_retired
            )
        return RoleProfilePage(page.items, page.next_cursor)

    @post(
        "/",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="defineRoleProfile",
        summary="Define a role profile (revision 1)",
        status_code=201,
    )
    async def define(
        self, commands: NamedDependency[Commands], data: JSONBody[RoleProfileIn]
    ) -> Response[RoleProfileOut]:
        targets = skill_targets(data.targets)
        outcome = await commands.run(
            DefineRoleProfile(data.key, data.name, data.description, targets)
        )
        body = role_profile_out(outcome.result)
        location = f"/v1/role-profiles/{body.key}"
        return answer(outcome, body, status=201, version=body.version, location=location)

    @get(
        "/{key:str}",
        guards=[requires_scope(Scope.SKILLS_READ)],
        operation_id="getRoleProfile",
        summary="A role profile's current revision",
    )
    async def get_profile(
        self, reads: NamedDependency[Reads], key: CodePath
    ) -> Response[queries.RoleProfileRecord]:
        await reads.after([SKILLS.info])
        async with reads.session() as conn:
            record = await queries.get_role_profile(conn, key)
        if record is None:
            raise NotFound(f"role profile {key} not found")
        return Response(record, headers={"ETag": etag(record.version)})

    @put(
        "/{key:str}",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="reviseRoleProfile",
        summary="Revise a role profile (a new revision when anything changes)",
    )
    async def revise(
        self,
        commands: NamedDependency[Commands],
        key: CodePath,
        data: JSONBody[RoleProfileRevision],
        if_match: IfMatch = None,
    ) -> Response[RoleProfileOut]:
        targets = skill_targets(data.targets)
        command = ReviseRoleProfile(
            key, data.name, data.description, targets, expected_version(if_match)
        )
        outcome = await commands.run(command)
        body = role_profile_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @post(
        "/{key:str}/retire",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="retireRoleProfile",
        summary="Retire a role profile",
        status_code=200,
    )
    async def retire(
        self, commands: NamedDependency[Commands], key: CodePath, data: JSONBody[Empty]
    ) -> Response[RoleProfileOut]:
        outcome = await commands.run(RetireRoleProfile(key))
        body = role_profile_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @get(
        "/{key:str}/revisions",
        guards=[requires_scope(Scope.SKILLS_READ)],
        operation_id="listRoleProfileRevisions",
        summary="Every revision of a role profile",
    )
    async def revisions(
        self,
        reads: NamedDependency[Reads],
        key: CodePath,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> RevisionPage:
        await reads.after([SKILLS.info])
        async with reads.session() as conn:
            profile = await queries.get_role_profile(conn, key)
            if profile is None:
                raise NotFound(f"role profile {key} not found")
            page = await queries.list_revisions(
                conn, profile.profile_id, limit=limit, cursor=cursor
            )
        return RevisionPage(page.items, page.next_cursor)


ROUTES = [SkillController, RoleProfileController]
