"""What other contexts may ask of skills: questions over its aggregates, read inside their unit
of work."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from uuid import UUID

from training.core.bus import UnitOfWork
from training.skills.domain import (
    SkillDefinition,
    SkillFramework,
)


@cache
def default_framework() -> DefaultFramework:
    """The framework every tenant starts from; versioned, so replays see the same skills."""
    raw = json.loads(resources.files("training.data").joinpath(FRAMEWORK_FILE).read_text())
    return DefaultFramework(
        name=raw["framework"],
        version=raw["version"],
        levels=tuple(
            Level(int(item["level"]), item["name"], item["summary"]) for item in raw["levels"]
        ),
        categories=tuple(Category(item["code"], item["name"]) for item in raw["categories"]),
        skills=tuple(
            SkillDefinition(
                code=item["code"],
                name=item["name"],
                category=item["category"],
                description=item.get("description", ""),
                levels=tuple(item["levels"][str(level)] for level in range(1, 8)),
            )
            for item in raw["skills"]
        ),
    )


def framework_for(version: str) -> DefaultFramework:
    framework = default_framework()
    if framework.version != version:
        msg = f"the default skill framework {version} is not shipped with this release"
        raise LookupError(msg)
    return framework


def usable_skills(uow: UnitOfWork, tenant_id: UUID | None) -> frozenset[str]:
    """Skills new targets may name: the tenant's (defaults and custom, not retired), or for
    the platform catalogue the default framework's."""
    defaults = default_framework().codes
    if tenant_id is None:
        return defaults
    framework = tenant_framework(uow, tenant_id)
    return frozenset(
        code for code in defaults | set(framework.custom) if code not in framework.retired
    )


FRAMEWORK_FILE = "skill_framework.json"


@dataclass(frozen=True)
class DefaultFramework:
    name: str
    version: str
    levels: tuple[Level, ...]
    categories: tuple[Category, ...]
    skills: tuple[SkillDefinition, ...]

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(skill.code for skill in self.skills)


def tenant_framework(uow: UnitOfWork, tenant_id: UUID) -> SkillFramework:
    return uow.get_or_add(
        SkillFramework, SkillFramework.create_id(tenant_id), lambda: start_framework(tenant_id)
    )


@dataclass(frozen=True)
class Level:
    level: int
    name: str
    summary: str


@dataclass(frozen=True)
class Category:
    code: str
    name: str


def start_framework(tenant_id: UUID) -> SkillFramework:
    framework = default_framework()
    return SkillFramework.start(tenant_id, framework.name, framework.version)
