"""The skill framework and role profiles, without infrastructure."""

from __future__ import annotations

import uuid

import pytest

from training.core.errors import InvalidTransition, NotFound, RuleViolated
from training.skills.domain import RoleProfile, SkillDefinition, SkillFramework, SkillTarget
from training.skills.queries import default_framework

TENANT = uuid.uuid4()
DEFAULTS = frozenset({"python", "sql"})
LEVELS = tuple(f"does level {n} things" for n in range(1, 8))


def framework() -> SkillFramework:
    return SkillFramework.start(TENANT, "software-engineering", "2026.1")


def test_the_default_framework_ships_enough_skills_with_seven_levels() -> None:
    shipped = default_framework()
    assert len(shipped.skills) >= 40
    assert [level.level for level in shipped.levels] == list(range(1, 8))
    categories = {c.code for c in shipped.categories}
    assert all(skill.category in categories for skill in shipped.skills)
    assert all(len(skill.levels) == 7 and all(skill.levels) for skill in shipped.skills)
    assert len({skill.code for skill in shipped.skills}) == len(shipped.skills)


def test_custom_skills_are_added_once() -> None:
    skills = framework()
    skills.add_skill(SkillDefinition("cobol", "COBOL", "programming", "", LEVELS), DEFAULTS)
    with pytest.raises(RuleViolated):
        skills.add_skill(SkillDefinition("cobol", "COBOL", "programming", "", LEVELS), DEFAULTS)
    with pytest.raises(RuleViolated):
        skills.add_skill(SkillDefinition("python", "Python", "programming", "", LEVELS), DEFAULTS)
    with pytest.raises(RuleViolated) as raised:
        skills.add_skill(SkillDefinition("x", "X", "programming", "", LEVELS[:3]), DEFAULTS)
    assert raised.value.field == "levels"


def test_skills_are_renamed_and_retired_never_deleted() -> None:
    skills = framework()
    skills.rename_skill("python", "Python 3", DEFAULTS)
    skills.retire_skill("sql", DEFAULTS)
    assert skills.knows("sql", DEFAULTS)
    assert not skills.is_usable("sql", DEFAULTS)
    with pytest.raises(InvalidTransition):
        skills.retire_skill("sql", DEFAULTS)
    with pytest.raises(NotFound):
        skills.rename_skill("astrology", "x", DEFAULTS)


def test_a_role_profile_revision_counts_real_changes() -> None:
    profile = RoleProfile.define(
        tenant_id=TENANT,
        key="backend-l3",
        name="Backend L3",
        description="",
        targets=(SkillTarget("python", 3),),
        usable_skills=DEFAULTS,
    )
    profile.revise(
        name="Backend L3",
        description="",
        targets=(SkillTarget("python", 3),),
        usable_skills=DEFAULTS,
    )
    assert profile.revision == 1
    profile.revise(
        name="Backend L3",
        description="",
        targets=(SkillTarget("python", 4), SkillTarget("sql", 2)),
        usable_skills=DEFAULTS,
    )
    assert profile.revision == 2
    assert [t.skill for t in profile.targets] == ["python", "sql"]
    profile.retire()
    with pytest.raises(InvalidTransition):
        profile.revise(
            name="x", description="", targets=(SkillTarget("python", 4),), usable_skills=DEFAULTS
        )


def test_a_retired_skill_may_stay_in_a_profile_but_not_be_added() -> None:
    profile = RoleProfile.define(
        tenant_id=TENANT,
        key="k",
        name="K",
        description="",
        targets=(SkillTarget("sql", 3),),
        usable_skills=DEFAULTS,
    )
    without_sql = frozenset({"python"})
    profile.revise(
        name="K", description="", targets=(SkillTarget("sql", 4),), usable_skills=without_sql
    )
    with pytest.raises(RuleViolated):
        RoleProfile.define(
            tenant_id=TENANT,
            key="k2",
            name="K2",
            description="",
            targets=(SkillTarget("sql", 3),),
            usable_skills=without_sql,
        )


@pytest.mark.parametrize(
    ("targets", "field"),
    [
        ((SkillTarget("python", 0),), "targets[0].level"),
        ((SkillTarget("python", 8),), "targets[0].level"),
        ((SkillTarget("python", 3), SkillTarget("python", 4)), "targets[1].skill"),
        ((), "targets"),
    ],
)
def test_role_profile_targets_are_checked(targets: tuple[SkillTarget, ...], field: str) -> None:
    with pytest.raises(RuleViolated) as raised:
        RoleProfile.define(
            tenant_id=TENANT,
            key="k",
            name="K",
            description="",
            targets=targets,
            usable_skills=DEFAULTS,
        )
    assert raised.value.field == field
