"""Skills: the framework a tenant measures engineers against, and the role profiles on it.

Every tenant starts from the default framework shipped as data (a named, versioned list of
skills with seven level descriptors each). The tenant's ``SkillFramework`` aggregate records
what the tenant changed on top: custom skills, renames and retirements. Skills are never
deleted, because assessments, reviews and plans refer to them forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import InvalidTransition, NotFound, RuleViolated

LEVELS = range(1, 8)
SKILL_CODE_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_NAME = 120
MAX_DESCRIPTION = 2000
MAX_DESCRIPTOR = 500


@dataclass(frozen=True, slots=True)
class SkillDefinition:
    code: str
    name: str
    category: str
    description: str
    levels: tuple[str, ...]  # descriptors of levels 1..7, in order


@dataclass(frozen=True, slots=True)
class SkillTarget:
    """A level to reach in one skill."""

    skill: str
    level: int


def check_code(code: str, field: str = "code") -> str:
    if not SKILL_CODE_PATTERN.match(code):
        raise RuleViolated("a skill code is lower-case letters, digits and hyphens", field=field)
    return code


def check_skill_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME:
        raise RuleViolated(f"a skill name has 1-{MAX_NAME} characters", field="name")
    return cleaned


def check_definition(skill: SkillDefinition) -> SkillDefinition:
    check_code(skill.code)
    check_code(skill.category, "category")
    if len(skill.levels) != len(LEVELS):
        raise RuleViolated("describe each of the 7 levels", field="levels")
    if any(not d.strip() or len(d) > MAX_DESCRIPTOR for d in skill.levels):
        raise RuleViolated(
            f"each level descriptor has 1-{MAX_DESCRIPTOR} characters", field="levels"
        )
    if len(skill.description) > MAX_DESCRIPTION:
        raise RuleViolated("the description is too long", field="description")
    return SkillDefinition(
        skill.code,
        check_skill_name(skill.name),
        skill.category,
        skill.description.strip(),
        tuple(d.strip() for d in skill.levels),
    )


def check_level(level: int, field: str = "level") -> int:
    if level not in LEVELS:
        raise RuleViolated("a level is between 1 and 7", field=field)
    return level


class SkillFramework(TrainingAggregate):
    """One per tenant: the default framework it started from, plus the tenant's changes."""

    TOPIC = "training.skills:SkillFramework"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.skills:SkillFramework.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.skills:SkillFramework.Created"

    class Started(Created):
        TOPIC = "training.skills:SkillFramework.Started"
        base_framework: str
        base_version: str

    class SkillAdded(Event):
        TOPIC = "training.skills:SkillFramework.SkillAdded"
        skill: SkillDefinition

    class SkillRenamed(Event):
        TOPIC = "training.skills:SkillFramework.SkillRenamed"
        code: str
        name: str

    class SkillRetired(Event):
        TOPIC = "training.skills:SkillFramework.SkillRetired"
        code: str

    @staticmethod
    def create_id(tenant_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "skill-framework")

    @classmethod
    def start(cls, tenant_id: UUID, base_framework: str, base_version: str) -> SkillFramework:
        return cls(
            base_framework=base_framework,
            base_version=base_version,
            tenant_id=tenant_id,
        )

    @event(Started)
    def __init__(
        self, base_framework: str, base_version: str, *, tenant_id: UUID | None = None
    ) -> None:
        self.tenant_id = tenant_id
        self.base_framework = base_framework
        self.base_version = base_version
        self.custom: dict[str, SkillDefinition] = {}
        self.renamed: dict[str, str] = {}
        self.retired: set[str] = set()

    def knows(self, code: str, defaults: frozenset[str]) -> bool:
        return code in defaults or code in self.custom

    def is_usable(self, code: str, defaults: frozenset[str]) -> bool:
        """A skill new targets may name: known and not retired."""
        return self.knows(code, defaults) and code not in self.retired

    def add_skill(self, skill: SkillDefinition, defaults: frozenset[str]) -> None:
        skill = check_definition(skill)
        if self.knows(skill.code, defaults):
            raise RuleViolated(f"the skill {skill.code!r} exists already", field="code")
        self._skill_added(skill=skill)

    @event(SkillAdded)
    def _skill_added(self, skill: SkillDefinition) -> None:
        self.custom[skill.code] = skill

    def rename_skill(self, code: str, name: str, defaults: frozenset[str]) -> None:
        if not self.knows(code, defaults):
            raise NotFound(f"skill {code} not found")
        name = check_skill_name(name)
        if self.renamed.get(code) != name:
            self._skill_renamed(code=code, name=name)

    @event(SkillRenamed)
    def _skill_renamed(self, code: str, name: str) -> None:
        self.renamed[code] = name

    def retire_skill(self, code: str, defaults: frozenset[str]) -> None:
        if not self.knows(code, defaults):
            raise NotFound(f"skill {code} not found")
        if code in self.retired:
            raise InvalidTransition(f"the skill {code!r} is already retired")
        self._skill_retired(code=code)

    @event(SkillRetired)
    def _skill_retired(self, code: str) -> None:
        self.retired.add(code)


def check_targets(
    targets: tuple[SkillTarget, ...], usable: frozenset[str] | set[str]
) -> tuple[SkillTarget, ...]:
    seen: set[str] = set()
    for index, target in enumerate(targets):
        field = f"targets[{index}]"
        if target.skill not in usable:
            raise RuleViolated(f"unknown or retired skill {target.skill!r}", field=f"{field}.skill")
        if target.skill in seen:
            raise RuleViolated(f"the skill {target.skill!r} appears twice", field=f"{field}.skill")
        check_level(target.level, f"{field}.level")
        seen.add(target.skill)
    if not targets:
        raise RuleViolated("a role profile targets at least one skill", field="targets")
    return tuple(sorted(targets, key=lambda t: t.skill))


class RoleProfile(TrainingAggregate):
    """Target levels per skill for a role, such as "Backend Engineer L3"; each change revises it."""

    TOPIC = "training.skills:RoleProfile"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.skills:RoleProfile.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.skills:RoleProfile.Created"

    class Defined(Created):
        TOPIC = "training.skills:RoleProfile.Defined"
        key: str
        name: str
        description: str
        targets: tuple[SkillTarget, ...]

    class Revised(Event):
        TOPIC = "training.skills:RoleProfile.Revised"
        revision: int
        name: str
        description: str
        targets: tuple[SkillTarget, ...]

    class Retired(Event):
        TOPIC = "training.skills:RoleProfile.Retired"

    @staticmethod
    def create_id(tenant_id: UUID, key: str) -> UUID:
        return stable_id("tenants", tenant_id, "role-profiles", key)

    @classmethod
    def define(
        cls,
        *,
        tenant_id: UUID,
        key: str,
        name: str,
        description: str,
        targets: tuple[SkillTarget, ...],
        usable_skills: frozenset[str],
    ) -> RoleProfile:
        check_code(key, "key")
        return cls(
            key=key,
            name=check_skill_name(name),
            description=description.strip()[:MAX_DESCRIPTION],
            targets=check_targets(targets, usable_skills),
            tenant_id=tenant_id,
        )

    @event(Defined)
    def __init__(
        self,
        key: str,
        name: str,
        description: str,
        targets: tuple[SkillTarget, ...],
        *,
        tenant_id: UUID | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.key = key
        self.name = name
        self.description = description
        self.targets = targets
        self.revision = 1
        self.retired = False

    def revise(
        self,
        *,
        name: str,
        description: str,
        targets: tuple[SkillTarget, ...],
        usable_skills: frozenset[str],
    ) -> None:
        if self.retired:
            raise InvalidTransition("the role profile is retired")
        name = check_skill_name(name)
        description = description.strip()[:MAX_DESCRIPTION]
        # Skills retired since the last revision may stay; new ones must be usable.
        targets = check_targets(targets, usable_skills | {t.skill for t in self.targets})
        if (name, description, targets) != (self.name, self.description, self.targets):
            self._revised(
                revision=self.revision + 1, name=name, description=description, targets=targets
            )

    @event(Revised)
    def _revised(
        self, revision: int, name: str, description: str, targets: tuple[SkillTarget, ...]
    ) -> None:
        self.revision = revision
        self.name = name
        self.description = description
        self.targets = targets

    def retire(self) -> None:
        if self.retired:
            raise InvalidTransition("the role profile is already retired")
        self._retired()

    @event(Retired)
    def _retired(self) -> None:
        self.retired = True
