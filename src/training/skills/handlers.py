"""Skills use cases: the default framework shipped as data, tenant changes, role profiles."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from training.core.bus import Handler, UnitOfWork
from training.core.errors import AlreadyExists
from training.skills.domain import (
    RoleProfile,
    SkillDefinition,
    SkillTarget,
)
from training.skills.queries import default_framework, tenant_framework, usable_skills


@dataclass(frozen=True)
class AddSkill:
    skill: SkillDefinition


@dataclass(frozen=True)
class RenameSkill:
    code: str
    name: str


@dataclass(frozen=True)
class RetireSkill:
    code: str


@dataclass(frozen=True)
class DefineRoleProfile:
    key: str
    name: str
    description: str
    targets: tuple[SkillTarget, ...]


@dataclass(frozen=True)
class ReviseRoleProfile:
    key: str
    name: str
    description: str
    targets: tuple[SkillTarget, ...]
    expected_version: int | None = None


@dataclass(frozen=True)
class RetireRoleProfile:
    key: str


@dataclass(frozen=True)
class RoleProfileSnapshot:
    profile_id: UUID
    key: str
    name: str
    description: str
    revision: int
    retired: bool
    targets: tuple[SkillTarget, ...]
    version: int

    @classmethod
    def of(cls, profile: RoleProfile) -> RoleProfileSnapshot:
        return cls(
            profile.id,
            profile.key,
            profile.name,
            profile.description,
            profile.revision,
            profile.retired,
            profile.targets,
            profile.version,
        )


def add_skill(command: AddSkill, uow: UnitOfWork) -> int:
    tenant_id = uow.require_tenant()
    framework = tenant_framework(uow, tenant_id)
    framework.add_skill(command.skill, default_framework().codes)
    return int(framework.version)


def rename_skill(command: RenameSkill, uow: UnitOfWork) -> int:
    tenant_id = uow.require_tenant()
    framework = tenant_framework(uow, tenant_id)
    framework.rename_skill(command.code, command.name, default_framework().codes)
    return int(framework.version)


def retire_skill(command: RetireSkill, uow: UnitOfWork) -> int:
    tenant_id = uow.require_tenant()
    framework = tenant_framework(uow, tenant_id)
    framework.retire_skill(command.code, default_framework().codes)
    return int(framework.version)


def define_role_profile(command: DefineRoleProfile, uow: UnitOfWork) -> RoleProfileSnapshot:
    tenant_id = uow.require_tenant()
    if uow.exists(RoleProfile.create_id(tenant_id, command.key)):
        raise AlreadyExists(f"a role profile with key {command.key!r} exists", field="key")
    profile = RoleProfile.define(
        tenant_id=tenant_id,
        key=command.key,
        name=command.name,
        description=command.description,
        targets=command.targets,
        usable_skills=usable_skills(uow, tenant_id),
    )
    uow.add(profile)
    return RoleProfileSnapshot.of(profile)


def revise_role_profile(command: ReviseRoleProfile, uow: UnitOfWork) -> RoleProfileSnapshot:
    tenant_id = uow.require_tenant()
    profile = uow.get(
        RoleProfile,
        RoleProfile.create_id(tenant_id, command.key),
        expected_version=command.expected_version,
    )
    profile.revise(
        name=command.name,
        description=command.description,
        targets=command.targets,
        usable_skills=usable_skills(uow, tenant_id),
    )
    return RoleProfileSnapshot.of(profile)


def retire_role_profile(command: RetireRoleProfile, uow: UnitOfWork) -> RoleProfileSnapshot:
    tenant_id = uow.require_tenant()
    profile = uow.get(RoleProfile, RoleProfile.create_id(tenant_id, command.key))
    profile.retire()
    return RoleProfileSnapshot.of(profile)


HANDLERS: dict[type, Handler] = {
    AddSkill: add_skill,
    RenameSkill: rename_skill,
    RetireSkill: retire_skill,
    DefineRoleProfile: define_role_profile,
    ReviseRoleProfile: revise_role_profile,
    RetireRoleProfile: retire_role_profile,
}
