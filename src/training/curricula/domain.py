"""Curricula: ordered learning modules, edited as a draft and published as immutable versions.

A curriculum with no tenant belongs to the platform catalogue; a tenant's curriculum is
private to it. Learners and plans refer to a published version, never to the draft, so a
version's modules are a snapshot that later edits cannot change. A tenant adapts a catalogue
curriculum by forking one of its versions into a private draft.

The draft's prerequisites are kept known and acyclic after every change, so the mistake is
reported by the command that makes it rather than by a later publish.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate
from training.core.errors import InvalidTransition, NotFound, RuleViolated
from training.skills.domain import SkillTarget, check_code, check_level

MODULE_KEY_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MAX_TITLE = 200
MAX_DESCRIPTION = 4000
MIN_DURATION_MINUTES = 5
MAX_DURATION_MINUTES = 10_000
MAX_TARGETS = 10

# What a learner sees of a module; a change to any of them is a change of the curriculum.
COMPARED_FIELDS = (
    "title",
    "description",
    "format",
    "duration_minutes",
    "targets",
    "prerequisites",
)


class ModuleFormat(StrEnum):
    VIDEO = "video"
    READING = "reading"
    LAB = "lab"
    LIVE_SESSION = "live_session"
    PROJECT = "project"


class CurriculumStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class ModuleSpec:
    """One module of a curriculum; ``key`` identifies it across versions and forks."""

    key: str
    title: str
    description: str
    format: ModuleFormat
    duration_minutes: int
    targets: tuple[SkillTarget, ...]
    prerequisites: tuple[str, ...]  # keys of modules to complete first


@dataclass(frozen=True, slots=True)
class PublishedVersion:
    version: int
    modules: tuple[ModuleSpec, ...]  # prerequisites before dependants


@dataclass(frozen=True, slots=True)
class ModuleChange:
    key: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CurriculumDiff:
    from_version: int
    to_version: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[ModuleChange, ...]


def check_title(title: str, *, field: str = "title") -> str:
    cleaned = title.strip()
    if not cleaned or len(cleaned) > MAX_TITLE:
        raise RuleViolated(f"a title has 1-{MAX_TITLE} characters", field=field)
    return cleaned


def check_description(description: str, *, field: str = "description") -> str:
    cleaned = description.strip()
    if len(cleaned) > MAX_DESCRIPTION:
        raise RuleViolated(f"a description has at most {MAX_DESCRIPTION} characters", field=field)
    return cleaned


def check_module_key(key: str, *, field: str = "key") -> str:
    if not MODULE_KEY_PATTERN.match(key):
        raise RuleViolated(
            "a module key is 1-64 lower-case letters, digits or inner hyphens", field=field
        )
    return key


def check_module(spec: ModuleSpec) -> ModuleSpec:
    """The spec with text trimmed and targets and prerequisites sorted, or RuleViolated.

    Sorting makes equal content compare equal, so reordering alone is never a revision.
    """
    key = check_module_key(spec.key)
    prefix = f"modules.{key}"
    try:
        module_format = ModuleFormat(spec.format)
    except ValueError:
        raise RuleViolated(
            f"a module format is one of {', '.join(ModuleFormat)}", field=f"{prefix}.format"
        ) from None
    if not MIN_DURATION_MINUTES <= spec.duration_minutes <= MAX_DURATION_MINUTES:
        raise RuleViolated(
            f"a module takes {MIN_DURATION_MINUTES}-{MAX_DURATION_MINUTES} minutes",
            field=f"{prefix}.duration_minutes",
        )
    if len(spec.targets) > MAX_TARGETS:
        raise RuleViolated(
            f"a module targets at most {MAX_TARGETS} skills", field=f"{prefix}.targets"
        )
    seen: set[str] = set()
    for index, target in enumerate(spec.targets):
        field = f"{prefix}.targets[{index}]"
        check_code(target.skill, f"{field}.skill")
        if target.skill in seen:
            raise RuleViolated(f"the skill {target.skill!r} appears twice", field=f"{field}.skill")
        check_level(target.level, f"{field}.level")
        seen.add(target.skill)
    for prerequisite in spec.prerequisites:
        check_module_key(prerequisite, field=f"{prefix}.prerequisites")
    if key in spec.prerequisites:
        raise RuleViolated(f"module {key!r} cannot require itself", field=f"{prefix}.prerequisites")
    if len(set(spec.prerequisites)) != len(spec.prerequisites):
        raise RuleViolated(
            f"module {key!r} names a prerequisite twice", field=f"{prefix}.prerequisites"
        )
    return ModuleSpec(
        key=key,
        title=check_title(spec.title, field=f"{prefix}.title"),
        description=check_description(spec.description, field=f"{prefix}.description"),
        format=module_format,
        duration_minutes=spec.duration_minutes,
        targets=tuple(sorted(spec.targets, key=lambda t: t.skill)),
        prerequisites=tuple(sorted(spec.prerequisites)),
    )


class PrerequisiteCycle(RuleViolated):
    """Prerequisites that would form a cycle; ``cycle`` names its modules, the first repeated
    last (``("a", "b", "a")``)."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(f"prerequisites form a cycle: {' → '.join(cycle)}", field="prerequisites")
        self.cycle = tuple(cycle)


def _requirements(modules: Iterable[ModuleSpec]) -> dict[str, tuple[str, ...]]:
    return {module.key: module.prerequisites for module in modules}


def find_cycle(modules: Iterable[ModuleSpec]) -> list[str] | None:
    """A prerequisite cycle as keys, the first repeated last (``["a", "b", "a"]``), or None.

    Module ``a`` followed by ``b`` means ``a`` requires ``b``. The cycle starts at its
    smallest key, so the same modules always report the same cycle. Unknown prerequisites
    are ignored here; ``check_prerequisites`` reports them.
    """
    requires = _requirements(modules)
    done: set[str] = set()
    for start in sorted(requires):
        if start in done:
            continue
        # Iterative depth-first search: a long chain of modules must not hit the
        # interpreter's recursion limit.
        path = [start]
        on_path = {start}
        pending = [iter(sorted(requires[start]))]
        while pending:
            following = next(
                (key for key in pending[-1] if key in requires and key not in done), None
            )
            if following is None:
                pending.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if following in on_path:
                cycle = path[path.index(following) :]
                smallest = cycle.index(min(cycle))
                cycle = cycle[smallest:] + cycle[:smallest]
                return [*cycle, cycle[0]]
            path.append(following)
            on_path.add(following)
            pending.append(iter(sorted(requires[following])))
    return None


def check_prerequisites(modules: Iterable[ModuleSpec]) -> None:
    modules = list(modules)
    known = {module.key for module in modules}
    for module in sorted(modules, key=lambda m: m.key):
        for prerequisite in module.prerequisites:
            if prerequisite not in known:
                raise RuleViolated(
                    f"module {module.key!r} requires unknown module {prerequisite!r}",
                    field="prerequisites",
                )
    cycle = find_cycle(modules)
    if cycle is not None:
        raise PrerequisiteCycle(cycle)


def topological_order(modules: Iterable[ModuleSpec]) -> list[str]:
    """Keys with every prerequisite before its dependants; among ready modules, by key."""
    modules = list(modules)
    check_prerequisites(modules)
    waiting_on = {module.key: len(module.prerequisites) for module in modules}
    dependants: dict[str, list[str]] = {module.key: [] for module in modules}
    for module in modules:
        for prerequisite in module.prerequisites:
            dependants[prerequisite].append(module.key)
    ready = [key for key, count in waiting_on.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        key = heapq.heappop(ready)
        order.append(key)
        for dependant in dependants[key]:
            waiting_on[dependant] -= 1
            if waiting_on[dependant] == 0:
                heapq.heappush(ready, dependant)
    return order


def diff_modules(
    old: Iterable[ModuleSpec], new: Iterable[ModuleSpec], from_version: int, to_version: int
) -> CurriculumDiff:
    before = {module.key: module for module in old}
    after = {module.key: module for module in new}
    changed = []
    for key in sorted(before.keys() & after.keys()):
        fields = tuple(
            sorted(
                name
                for name in COMPARED_FIELDS
                if getattr(before[key], name) != getattr(after[key], name)
            )
        )
        if fields:
            changed.append(ModuleChange(key=key, fields=fields))
    return CurriculumDiff(
        from_version=from_version,
        to_version=to_version,
        added=tuple(sorted(after.keys() - before.keys())),
        removed=tuple(sorted(before.keys() - after.keys())),
        changed=tuple(changed),
    )


class Curriculum(TrainingAggregate):
    """A draft of modules and the versions published from it."""

    TOPIC = "training.curricula:Curriculum"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.curricula:Curriculum.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.curricula:Curriculum.Created"

    class Drafted(Created):
        TOPIC = "training.curricula:Curriculum.Drafted"
        title: str
        description: str
        forked_from: UUID | None
        forked_version: int | None
        modules: tuple[ModuleSpec, ...]

    class Retitled(Event):
        TOPIC = "training.curricula:Curriculum.Retitled"
        title: str
        description: str

    class ModuleAdded(Event):
        TOPIC = "training.curricula:Curriculum.ModuleAdded"
        module: ModuleSpec

    class ModuleRevised(Event):
        TOPIC = "training.curricula:Curriculum.ModuleRevised"
        module: ModuleSpec

    class ModuleRemoved(Event):
        TOPIC = "training.curricula:Curriculum.ModuleRemoved"
        key: str

    class VersionPublished(Event):
        TOPIC = "training.curricula:Curriculum.VersionPublished"
        version: int
        modules: tuple[ModuleSpec, ...]

    class Retired(Event):
        TOPIC = "training.curricula:Curriculum.Retired"
        reason: str

    @classmethod
    def create(cls, *, tenant_id: UUID | None, title: str, description: str) -> Curriculum:
        return cls(
            title=check_title(title),
            description=check_description(description),
            forked_from=None,
            forked_version=None,
            modules=(),
            tenant_id=tenant_id,
        )

    @classmethod
    def fork(
        cls, source: Curriculum, version: int, *, tenant_id: UUID, title: str | None = None
    ) -> Curriculum:
        """A private draft for ``tenant_id`` starting from a published version of ``source``."""
        if source.tenant_id is not None and source.tenant_id != tenant_id:
            # Another tenant's curriculum is never revealed, not even by a different error.
            raise NotFound(f"curriculum {source.id} not found")
        if source.status is CurriculumStatus.RETIRED:
            raise InvalidTransition("the curriculum is retired")
        published = source.version_of(version)
        return cls(
            title=check_title(source.title if title is None else title),
            description=source.description,
            forked_from=source.id,
            forked_version=published.version,
            modules=published.modules,
            tenant_id=tenant_id,
        )

    @event(Drafted)
    def __init__(
        self,
        title: str,
        description: str,
        forked_from: UUID | None,
        forked_version: int | None,
        modules: tuple[ModuleSpec, ...],
        *,
        tenant_id: UUID | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.title = title
        self.description = description
        self.forked_from = forked_from
        self.forked_version = forked_version
        self.status = CurriculumStatus.ACTIVE
        self.draft: dict[str, ModuleSpec] = {module.key: module for module in modules}
        self.versions: list[PublishedVersion] = []

    @property
    def is_catalogue(self) -> bool:
        return self.tenant_id is None

    @property
    def latest_version(self) -> PublishedVersion | None:
        return self.versions[-1] if self.versions else None

    def version_of(self, version: int) -> PublishedVersion:
        if not 1 <= version <= len(self.versions):
            raise NotFound(f"version {version} of curriculum {self.id} not found")
        return self.versions[version - 1]

    @property
    def has_unpublished_changes(self) -> bool:
        latest = self.latest_version
        if latest is None:
            return bool(self.draft)
        return self.draft != {module.key: module for module in latest.modules}

    def diff(self, from_version: int, to_version: int) -> CurriculumDiff:
        return diff_modules(
            self.version_of(from_version).modules,
            self.version_of(to_version).modules,
            from_version,
            to_version,
        )

    def _ensure_active(self) -> None:
        if self.status is CurriculumStatus.RETIRED:
            raise InvalidTransition("the curriculum is retired")

    def retitle(self, title: str, description: str) -> None:
        self._ensure_active()
        title = check_title(title)
        description = check_description(description)
        if (title, description) != (self.title, self.description):
            self._retitled(title=title, description=description)

    @event(Retitled)
    def _retitled(self, title: str, description: str) -> None:
        self.title = title
        self.description = description

    def add_module(self, spec: ModuleSpec) -> None:
        self._ensure_active()
        module = check_module(spec)
        if module.key in self.draft:
            raise RuleViolated(f"the module {module.key!r} exists already", field="key")
        check_prerequisites([*self.draft.values(), module])
        self._module_added(module=module)

    @event(ModuleAdded)
    def _module_added(self, module: ModuleSpec) -> None:
        self.draft[module.key] = module

    def revise_module(self, spec: ModuleSpec) -> None:
        self._ensure_active()
        if spec.key not in self.draft:
            raise NotFound(f"module {spec.key} not found")
        module = check_module(spec)
        if module == self.draft[module.key]:
            return
        check_prerequisites({**self.draft, module.key: module}.values())
        self._module_revised(module=module)

    @event(ModuleRevised)
    def _module_revised(self, module: ModuleSpec) -> None:
        self.draft[module.key] = module

    def remove_module(self, key: str) -> None:
        self._ensure_active()
        if key not in self.draft:
            raise NotFound(f"module {key} not found")
        dependants = sorted(m.key for m in self.draft.values() if key in m.prerequisites)
        if dependants:
            raise RuleViolated(
                f"module {key!r} is required by {', '.join(map(repr, dependants))}",
                field="key",
            )
        self._module_removed(key=key)

    @event(ModuleRemoved)
    def _module_removed(self, key: str) -> None:
        del self.draft[key]

    def publish(self) -> int:
        """Publish the draft as the next version and return its number."""
        self._ensure_active()
        if not self.draft:
            raise RuleViolated("a curriculum needs at least one module", field="modules")
        latest = self.latest_version
        if latest is not None and not self.has_unpublished_changes:
            raise InvalidTransition(
                f"nothing to publish: the draft equals version {latest.version}"
            )
        order = topological_order(self.draft.values())
        version = len(self.versions) + 1
        self._version_published(version=version, modules=tuple(self.draft[key] for key in order))
        return version

    @event(VersionPublished)
    def _version_published(self, version: int, modules: tuple[ModuleSpec, ...]) -> None:
        self.versions.append(PublishedVersion(version=version, modules=modules))

    def retire(self, reason: str) -> None:
        if self.status is CurriculumStatus.RETIRED:
            raise InvalidTransition("the curriculum is already retired")
        if not reason.strip():
            raise RuleViolated("say why the curriculum is retired", field="reason")
        self._retired(reason=reason.strip())

    @event(Retired)
    def _retired(self, reason: str) -> None:
        self.status = CurriculumStatus.RETIRED
