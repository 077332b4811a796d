"""The curriculum aggregate and its module rules, without any infrastructure."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace

import pytest
from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

from training.catalog import event_classes
from training.core.errors import InvalidTransition, NotFound, RuleViolated
from training.core.mapper import MsgspecMapper, PassThroughTranscoder
from training.curricula.domain import (
    Curriculum,
    CurriculumDiff,
    CurriculumStatus,
    ModuleChange,
    ModuleFormat,
    ModuleSpec,
    PrerequisiteCycle,
    check_module,
    check_prerequisites,
    diff_modules,
    find_cycle,
    topological_order,
)
from training.skills.domain import SkillTarget


def module(
    key: str,
    *prerequisites: str,
    title: str | None = None,
    format: ModuleFormat = ModuleFormat.READING,
    duration_minutes: int = 30,
    targets: tuple[SkillTarget, ...] = (),
) -> ModuleSpec:
    return ModuleSpec(
        key=key,
        title=title or key.title(),
        description=f"All about {key}.",
        format=format,
        duration_minutes=duration_minutes,
        targets=targets,
        prerequisites=prerequisites,
    )


def catalogue_curriculum(*modules: ModuleSpec) -> Curriculum:
    curriculum = Curriculum.create(tenant_id=None, title="Backend basics", description="Start")
    for spec in modules:
        curriculum.add_module(spec)
    return curriculum


def test_a_curriculum_starts_as_an_empty_active_draft() -> None:
    tenant_id = uuid.uuid4()
    curriculum = Curriculum.create(tenant_id=tenant_id, title="  Go  ", description=" Intro ")
    assert (curriculum.title, curriculum.description) == ("Go", "Intro")
    assert curriculum.tenant_id == tenant_id
    assert curriculum.status is CurriculumStatus.ACTIVE
    assert curriculum.draft == {}
    assert curriculum.versions == []
    assert curriculum.latest_version is None
    assert (curriculum.forked_from, curriculum.forked_version) == (None, None)
    assert not curriculum.has_unpublished_changes
    assert curriculum.version == 1


def test_a_catalogue_curriculum_belongs_to_no_tenant() -> None:
    assert catalogue_curriculum().tenant_id is None


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (module("Intro"), "key"),
        (module("-intro"), "key"),
        (module("a" * 65), "key"),
        (module("intro", title="  "), "modules.intro.title"),
        (module("intro", title="x" * 201), "modules.intro.title"),
        (replace(module("intro"), description="x" * 4001), "modules.intro.description"),
        # An enum value the API failed to convert still gets a field-level answer.
        (replace(module("intro"), format="podcast"), "modules.intro.format"),  # type: ignore[arg-type]
        (module("intro", duration_minutes=4), "modules.intro.duration_minutes"),
        (module("intro", duration_minutes=10_001), "modules.intro.duration_minutes"),
        (
            module("intro", targets=tuple(SkillTarget(f"s{i}", 2) for i in range(11))),
            "modules.intro.targets",
        ),
        (
            module("intro", targets=(SkillTarget("sql", 2), SkillTarget("sql", 3))),
            "modules.intro.targets[1].skill",
        ),
        (module("intro", targets=(SkillTarget("sql", 8),)), "modules.intro.targets[0].level"),
        (module("intro", targets=(SkillTarget("SQL", 2),)), "modules.intro.targets[0].skill"),
        (module("intro", "basics", "basics"), "modules.intro.prerequisites"),
        (module("intro", "Basics"), "modules.intro.prerequisites"),
        (module("intro", "intro"), "modules.intro.prerequisites"),
    ],
)
def test_a_module_is_checked_field_by_field(spec: ModuleSpec, field: str) -> None:
    with pytest.raises(RuleViolated) as raised:
        check_module(spec)
    assert raised.value.field == field


def test_a_checked_module_is_trimmed_and_sorted() -> None:
    spec = ModuleSpec(
        key="intro",
        title=" Intro ",
        description=" Why. ",
        format=ModuleFormat.LAB,
        duration_minutes=5,
        targets=(SkillTarget("sql", 2), SkillTarget("go", 3)),
        prerequisites=("setup", "basics"),
    )
    checked = check_module(spec)
    assert (checked.title, checked.description) == ("Intro", "Why.")
    assert [t.skill for t in checked.targets] == ["go", "sql"]
    assert checked.prerequisites == ("basics", "setup")


def test_a_cycle_is_found_in_order_from_its_smallest_key() -> None:
    modules = [module("c", "a"), module("b", "c"), module("a", "b"), module("z", "b")]
    assert find_cycle(modules) == ["a", "b", "c", "a"]
    assert find_cycle(reversed(modules)) == ["a", "b", "c", "a"]


def test_a_self_loop_is_a_cycle_but_validation_refuses_it_first() -> None:
    assert find_cycle([module("a", "a")]) == ["a", "a"]
    curriculum = catalogue_curriculum()
    with pytest.raises(RuleViolated) as raised:
        curriculum.add_module(module("a", "a"))
    assert raised.value.field == "modules.a.prerequisites"


def test_a_diamond_is_no_cycle() -> None:
    diamond = [module("top"), module("left", "top"), module("right", "top")]
    diamond.append(module("bottom", "left", "right"))
    assert find_cycle(diamond) is None
    check_prerequisites(diamond)


def test_the_cycle_error_names_the_cycle_in_order() -> None:
    with pytest.raises(RuleViolated) as raised:
        check_prerequisites([module("a", "b"), module("b", "c"), module("c", "a")])
    assert raised.value.detail == "prerequisites form a cycle: a → b → c → a"
    assert raised.value.field == "prerequisites"
    assert isinstance(raised.value, PrerequisiteCycle)
    assert raised.value.cycle == ("a", "b", "c", "a")


def test_an_unknown_prerequisite_is_named() -> None:
    with pytest.raises(RuleViolated) as raised:
        check_prerequisites([module("a"), module("b", "a", "ghost")])
    assert raised.value.detail == "module 'b' requires unknown module 'ghost'"
    assert raised.value.field == "prerequisites"


def test_the_topological_order_puts_prerequisites_first_and_breaks_ties_by_key() -> None:
    modules = [
        module("testing", "python"),
        module("python"),
        module("docker"),
        module("deploy", "docker", "testing"),
        module("apis", "python"),
    ]
    expected = ["docker", "python", "apis", "testing", "deploy"]
    assert topological_order(modules) == expected
    assert topological_order(reversed(modules)) == expected


def test_the_draft_refuses_unknown_prerequisites_and_cycles_at_once() -> None:
    curriculum = catalogue_curriculum(module("a"), module("b", "a"))
    with pytest.raises(RuleViolated, match="unknown module 'ghost'"):
        curriculum.add_module(module("c", "ghost"))
    curriculum.add_module(module("c", "b"))
    with pytest.raises(RuleViolated) as raised:
        curriculum.revise_module(module("a", "c"))
    assert raised.value.detail == "prerequisites form a cycle: a → c → b → a"
    assert curriculum.draft["a"] == module("a")


def test_a_module_key_is_unique_in_the_draft() -> None:
    curriculum = catalogue_curriculum(module("a"))
    with pytest.raises(RuleViolated) as raised:
        curriculum.add_module(module("a", title="Again"))
    assert raised.value.field == "key"


def test_revising_needs_a_known_module_and_records_only_real_changes() -> None:
    curriculum = catalogue_curriculum(module("a"))
    with pytest.raises(NotFound):
        curriculum.revise_module(module("ghost"))
    curriculum.collect_events()
    curriculum.revise_module(replace(module("a"), title=" A "))
    assert curriculum.collect_events() == []
    curriculum.revise_module(module("a", duration_minutes=45))
    [revised] = curriculum.collect_events()
    assert isinstance(revised, Curriculum.ModuleRevised)
    assert curriculum.draft["a"].duration_minutes == 45


def test_retitling_to_the_same_text_records_nothing() -> None:
    curriculum = catalogue_curriculum()
    curriculum.collect_events()
    curriculum.retitle(" Backend basics ", "Start")
    assert curriculum.collect_events() == []
    curriculum.retitle("Backend", "From scratch")
    [retitled] = curriculum.collect_events()
    assert isinstance(retitled, Curriculum.Retitled)
    assert (curriculum.title, curriculum.description) == ("Backend", "From scratch")


def test_a_module_others_require_cannot_be_removed() -> None:
    curriculum = catalogue_curriculum(module("a"), module("c", "a"), module("b", "a"))
    with pytest.raises(NotFound):
        curriculum.remove_module("ghost")
    with pytest.raises(RuleViolated) as raised:
        curriculum.remove_module("a")
    assert raised.value.detail == "module 'a' is required by 'b', 'c'"
    curriculum.remove_module("b")
    assert sorted(curriculum.draft) == ["a", "c"]


def test_publishing_snapshots_the_draft_as_numbered_versions() -> None:
    curriculum = catalogue_curriculum(module("intro"), module("advanced", "intro"))
    assert curriculum.publish() == 1
    assert not curriculum.has_unpublished_changes
    curriculum.revise_module(module("intro", duration_minutes=90))
    curriculum.add_module(module("capstone", "advanced"))
    assert curriculum.has_unpublished_changes
    assert curriculum.publish() == 2
    first = curriculum.version_of(1)
    assert [m.key for m in first.modules] == ["intro", "advanced"]
    assert first.modules[0].duration_minutes == 30
    second = curriculum.version_of(2)
    assert [m.key for m in second.modules] == ["intro", "advanced", "capstone"]
    assert curriculum.latest_version == second
    # Editing the draft after publishing leaves the published versions alone.
    curriculum.remove_module("capstone")
    curriculum.revise_module(module("intro", duration_minutes=10))
    assert curriculum.version_of(2) == second
    assert second.modules[0].duration_minutes == 90
    with pytest.raises(NotFound):
        curriculum.version_of(3)
    with pytest.raises(NotFound):
        curriculum.version_of(0)


def test_an_empty_or_unchanged_draft_is_not_published() -> None:
    curriculum = catalogue_curriculum()
    with pytest.raises(RuleViolated) as raised:
        curriculum.publish()
    assert raised.value.field == "modules"
    curriculum.add_module(module("a"))
    curriculum.publish()
    with pytest.raises(InvalidTransition) as unchanged:
        curriculum.publish()
    assert unchanged.value.detail == "nothing to publish: the draft equals version 1"
    # Changing and changing back is no change either.
    curriculum.revise_module(module("a", duration_minutes=60))
    curriculum.revise_module(module("a"))
    with pytest.raises(InvalidTransition):
        curriculum.publish()


def test_the_diff_between_versions_names_added_removed_and_changed_fields() -> None:
    curriculum = catalogue_curriculum(module("a"), module("b"), module("gone"))
    curriculum.publish()
    curriculum.remove_module("gone")
    curriculum.add_module(module("new"))
    curriculum.revise_module(module("b", "a", format=ModuleFormat.LAB, duration_minutes=60))
    curriculum.publish()
    assert curriculum.diff(1, 2) == CurriculumDiff(
        from_version=1,
        to_version=2,
        added=("new",),
        removed=("gone",),
        changed=(ModuleChange("b", ("duration_minutes", "format", "prerequisites")),),
    )
    assert diff_modules([], [module("b"), module("a")], 0, 1).added == ("a", "b")


def test_a_tenant_forks_a_catalogue_version_into_a_private_draft() -> None:
    source = catalogue_curriculum(module("a"), module("b", "a"))
    source.publish()
    source.add_module(module("c", "b"))
    source.publish()
    tenant_id = uuid.uuid4()
    fork = Curriculum.fork(source, 1, tenant_id=tenant_id)
    assert fork.tenant_id == tenant_id
    assert (fork.forked_from, fork.forked_version) == (source.id, 1)
    assert fork.title == source.title
    assert fork.draft == {m.key: m for m in source.version_of(1).modules}
    assert fork.versions == []
    assert fork.has_unpublished_changes
    assert fork.publish() == 1
    renamed = Curriculum.fork(source, 2, tenant_id=tenant_id, title="Our backend")
    assert renamed.title == "Our backend"
    assert sorted(renamed.draft) == ["a", "b", "c"]


def test_a_tenant_forks_its_own_curriculum_but_never_another_tenants() -> None:
    tenant_id = uuid.uuid4()
    own = Curriculum.create(tenant_id=tenant_id, title="Ours", description="")
    own.add_module(module("a"))
    own.publish()
    assert Curriculum.fork(own, 1, tenant_id=tenant_id).forked_from == own.id
    with pytest.raises(NotFound):
        Curriculum.fork(own, 1, tenant_id=uuid.uuid4())


def test_only_a_published_version_of_an_active_curriculum_is_forked() -> None:
    source = catalogue_curriculum(module("a"))
    with pytest.raises(NotFound):
        Curriculum.fork(source, 1, tenant_id=uuid.uuid4())
    source.publish()
    source.retire("superseded")
    with pytest.raises(InvalidTransition):
        Curriculum.fork(source, 1, tenant_id=uuid.uuid4())


def test_a_retired_curriculum_refuses_every_change() -> None:
    curriculum = catalogue_curriculum(module("a"), module("b"))
    with pytest.raises(RuleViolated):
        curriculum.retire(" ")
    curriculum.retire(" superseded ")
    assert curriculum.status is CurriculumStatus.RETIRED
    changes = [
        lambda: curriculum.retitle("New", ""),
        lambda: curriculum.add_module(module("c")),
        lambda: curriculum.revise_module(module("a", duration_minutes=60)),
        lambda: curriculum.remove_module("b"),
        curriculum.publish,
    ]
    for change in changes:
        with pytest.raises(InvalidTransition, match="the curriculum is retired"):
            change()
    with pytest.raises(InvalidTransition, match="already retired"):
        curriculum.retire("again")


def history() -> Curriculum:
    """A curriculum that has recorded every kind of event."""
    source = catalogue_curriculum(module("a"))
    source.publish()
    curriculum = Curriculum.fork(source, 1, tenant_id=uuid.uuid4(), title="Ours")
    curriculum.retitle("Our backend", "Adapted")
    curriculum.add_module(
        module(
            "lab",
            "a",
            format=ModuleFormat.LIVE_SESSION,
            targets=(SkillTarget("sql", 3), SkillTarget("go", 2)),
        )
    )
    curriculum.add_module(module("extra", format=ModuleFormat.PROJECT))
    curriculum.publish()
    curriculum.revise_module(module("a", duration_minutes=90, format=ModuleFormat.VIDEO))
    curriculum.remove_module("extra")
    curriculum.publish()
    curriculum.retire("superseded")
    return curriculum


def rebuilt(events: Iterable[CanMutateAggregate[uuid.UUID]]) -> Curriculum:
    copy = None
    for event in events:
        copy = event.mutate(copy)
    assert isinstance(copy, Curriculum)
    return copy


def assert_same_state(copy: Curriculum, original: Curriculum) -> None:
    assert copy.id == original.id
    assert copy.version == original.version
    assert (copy.title, copy.description, copy.status) == (
        original.title,
        original.description,
        original.status,
    )
    assert (copy.tenant_id, copy.forked_from, copy.forked_version) == (
        original.tenant_id,
        original.forked_from,
        original.forked_version,
    )
    assert copy.draft == original.draft
    assert copy.versions == original.versions


def test_a_curriculum_is_rebuilt_from_its_events() -> None:
    original = history()
    events = original.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Drafted",
        "Retitled",
        "ModuleAdded",
        "ModuleAdded",
        "VersionPublished",
        "ModuleRevised",
        "ModuleRemoved",
        "VersionPublished",
        "Retired",
    ]
    assert_same_state(rebuilt(events), original)


def test_events_survive_the_msgspec_mapper() -> None:
    original = history()
    events = original.collect_events()
    mapper = MsgspecMapper(transcoder=PassThroughTranscoder())
    restored = [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]
    assert restored == events
    drafted, *_, published, _retired = restored
    assert isinstance(drafted, Curriculum.Drafted)
    assert isinstance(drafted.forked_from, uuid.UUID)
    assert isinstance(published, Curriculum.VersionPublished)
    assert isinstance(published.modules, tuple)
    lab = next(m for m in published.modules if m.key == "lab")
    assert isinstance(lab, ModuleSpec)
    assert lab.format is ModuleFormat.LIVE_SESSION
    assert isinstance(lab.targets, tuple)
    assert lab.targets == (SkillTarget("go", 2), SkillTarget("sql", 3))
    assert isinstance(lab.prerequisites, tuple)
    copy = rebuilt([e for e in restored if isinstance(e, Curriculum.Event)])
    assert_same_state(copy, original)


def test_every_curriculum_event_pins_its_own_topic() -> None:
    assert resolve_topic(Curriculum.TOPIC) is Curriculum
    for cls in event_classes(Curriculum):
        assert cls.TOPIC.startswith("training.curricula:Curriculum.")
        assert cls.TOPIC.endswith(f".{cls.__name__}")
        assert get_topic(cls) == cls.TOPIC
        assert resolve_topic(cls.TOPIC) is cls
