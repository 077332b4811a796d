"""Curricula use cases: draft, publish, retire and fork curricula.

Who acts decides whose curriculum it is: the platform operator (no tenant) keeps the platform
catalogue, a tenant keeps private curricula. Each side edits only its own: the operator never
changes a tenant's curriculum and a tenant never changes the catalogue; both are reported as
not found, like a curriculum that does not exist. A tenant may read (and fork) a catalogue
curriculum, which is the one read that crosses the line; ``visible_curriculum`` does it.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from training.core.application import TrainingApplication
from training.core.bus import Handler, UnitOfWork
from training.core.errors import NotFound, RuleViolated, StaleVersion
from training.curricula.domain import Curriculum, CurriculumDiff, ModuleSpec
from training.curricula.queries import visible_curriculum
from training.skills.queries import usable_skills


@dataclass(frozen=True)
class CreateCurriculum:
    title: str
    description: str


@dataclass(frozen=True)
class RetitleCurriculum:
    """``None`` leaves the title or the description as it is."""

    curriculum_id: UUID
    title: str | None = None
    description: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True)
class AddModule:
    curriculum_id: UUID
    module: ModuleSpec
    expected_version: int | None = None


@dataclass(frozen=True)
class ReviseModule:
    curriculum_id: UUID
    module: ModuleSpec
    expected_version: int | None = None


@dataclass(frozen=True)
class RemoveModule:
    curriculum_id: UUID
    key: str
    expected_version: int | None = None


@dataclass(frozen=True)
class PublishCurriculum:
    curriculum_id: UUID
    expected_version: int | None = None


@dataclass(frozen=True)
class RetireCurriculum:
    curriculum_id: UUID
    reason: str
    expected_version: int | None = None


@dataclass(frozen=True)
class ForkCurriculum:
    """A tenant's private draft from a published version of a catalogue or own curriculum."""

    source_id: UUID
    version: int
    title: str | None = None


@dataclass(frozen=True)
class CurriculumSnapshot:
    """The curriculum as the command left it; ``modules`` is the draft, ordered by key."""

    curriculum_id: UUID
    tenant_id: UUID | None
    title: str
    description: str
    status: str
    latest_version: int | None
    has_unpublished_changes: bool
    forked_from: UUID | None
    forked_version: int | None
    modules: tuple[ModuleSpec, ...]
    version: int

    @classmethod
    def of(cls, curriculum: Curriculum) -> CurriculumSnapshot:
        latest = curriculum.latest_version
        return cls(
            curriculum.id,
            curriculum.tenant_id,
            curriculum.title,
            curriculum.description,
            str(curriculum.status),
            latest.version if latest else None,
            curriculum.has_unpublished_changes,
            curriculum.forked_from,
            curriculum.forked_version,
            tuple(curriculum.draft[key] for key in sorted(curriculum.draft)),
            curriculum.version,
        )


@dataclass(frozen=True)
class PublishedSnapshot:
    """What ``PublishCurriculum`` made: the new version's number and its ordered modules.

    ``aggregate_version`` is the curriculum's version after publishing (its ETag).
    """

    curriculum_id: UUID
    version: int
    modules: tuple[ModuleSpec, ...]
    aggregate_version: int


def own_curriculum(
    uow: UnitOfWork, curriculum_id: UUID, expected_version: int | None = None
) -> Curriculum:
    """A curriculum the caller may change: the operator's catalogue or the tenant's own.

    The version is compared only after the ownership check, so a stale ``If-Match`` on a
    curriculum the caller may not change still answers "not found".
    """
    curriculum = uow.get(Curriculum, curriculum_id)
    if curriculum.tenant_id != uow.context.tenant_id:
        raise NotFound(f"Curriculum {curriculum_id} not found")
    if expected_version is not None and curriculum.version != expected_version:
        raise StaleVersion(expected_version, curriculum.version)
    return curriculum


def curriculum_diff(
    app: TrainingApplication,
    tenant_id: UUID | None,
    curriculum_id: UUID,
    from_version: int,
    to_version: int,
) -> CurriculumDiff:
    """What changed between two published versions, by the domain's own comparison."""
    return visible_curriculum(app, tenant_id, curriculum_id).diff(from_version, to_version)


def check_targets(
    uow: UnitOfWork, curriculum: Curriculum, module: ModuleSpec, previous: ModuleSpec | None
) -> None:
    """Every target names a skill usable where the curriculum lives.

    A tenant's curriculum targets skills of the tenant's framework; the catalogue targets
    default skills. A skill the module already targeted stays allowed after it is retired,
    so a module copied by a fork, or written before the retirement, can still be revised.
    """
    usable = usable_skills(uow, curriculum.tenant_id)
    kept = {target.skill for target in previous.targets} if previous else set()
    for index, target in enumerate(module.targets):
        if target.skill not in usable and target.skill not in kept:
            raise RuleViolated(
                f"unknown or retired skill {target.skill!r}",
                field=f"modules.{module.key}.targets[{index}].skill",
            )


def create_curriculum(command: CreateCurriculum, uow: UnitOfWork) -> CurriculumSnapshot:
    curriculum = Curriculum.create(
        tenant_id=uow.context.tenant_id, title=command.title, description=command.description
    )
    uow.add(curriculum)
    return CurriculumSnapshot.of(curriculum)


def retitle_curriculum(command: RetitleCurriculum, uow: UnitOfWork) -> CurriculumSnapshot:
    curriculum = own_curriculum(uow, command.curriculum_id, command.expected_version)
    curriculum.retitle(
        curriculum.title if command.title is None else command.title,
        curriculum.description if command.description is None else command.description,
    )
    return CurriculumSnapshot.of(curriculum)


def add_module(command: AddModule, uow: UnitOfWork) -> CurriculumSnapshot:
    curriculum = own_curriculum(uow, command.curriculum_id, command.expected_version)
    # The domain checks the module first (state, shape, prerequisites); a refused skill
    # then discards the pending event with the rest of the command.
    curriculum.add_module(command.module)
    check_targets(uow, curriculum, command.module, None)
    return CurriculumSnapshot.of(curriculum)


def revise_module(command: ReviseModule, uow: UnitOfWork) -> CurriculumSnapshot:
    curriculum = own_curriculum(uow, command.curriculum_id, command.expected_version)
    previous = curriculum.draft.get(command.module.key)
    curriculum.revise_module(command.module)
    check_targets(uow, curriculum, command.module, previous)
    return CurriculumSnapshot.of(curriculum)


def remove_module(command: RemoveModule, uow: UnitOfWork) -> CurriculumSnapshot:
    curriculum = own_curriculum(uow, command.curriculum_id, command.expected_version)
    curriculum.remove_module(command.key)
    return CurriculumSnapshot.of(curriculum)


def publish_curriculum(command: PublishCurriculum, uow: UnitOfWork) -> PublishedSnapshot:
    curriculum = own_curriculum(uow, command.curriculum_id, command.expected_version)
    version = curriculum.publish()
    return PublishedSnapshot(
        curriculum.id, version, curriculum.version_of(version).modules, curriculum.version
    )


def retire_curriculum(command: RetireCurriculum, uow: UnitOfWork) -> CurriculumSnapshot:
    curriculum = own_curriculum(uow, command.curriculum_id, command.expected_version)
    curriculum.retire(command.reason)
    return CurriculumSnapshot.of(curriculum)


def fork_curriculum(command: ForkCurriculum, uow: UnitOfWork) -> CurriculumSnapshot:
    """Only a tenant forks. The source is read, never added to the unit of work.

    The fork copies the published modules as they are: their targets were checked when
    they were written, and a retired skill stays valid where it is already targeted.
    """
    tenant_id = uow.require_tenant()
    source = visible_curriculum(uow.app, tenant_id, command.source_id)
    fork = Curriculum.fork(source, command.version, tenant_id=tenant_id, title=command.title)
    uow.add(fork)
    return CurriculumSnapshot.of(fork)


HANDLERS: dict[type, Handler] = {
    CreateCurriculum: create_curriculum,
    RetitleCurriculum: retitle_curriculum,
    AddModule: add_module,
    ReviseModule: revise_module,
    RemoveModule: remove_module,
    PublishCurriculum: publish_curriculum,
    RetireCurriculum: retire_curriculum,
    ForkCurriculum: fork_curriculum,
}
