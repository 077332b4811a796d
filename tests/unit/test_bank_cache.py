"""The cache of built item banks: bounded in entries and bytes, keyed by version."""

from __future__ import annotations

import threading
import uuid

from training.assessments.domain.items import Item, ItemKind, Option
from training.assessments.domain.scoring import ItemParameters
from training.assessments.handlers.bank_cache import BankCache, BankKey, SkillBank

TENANT = uuid.uuid4()


def skill_bank(n: int = 3, stem: str = "Which one?") -> SkillBank:
    options = (Option("a", "one"), Option("b", "two"))
    return SkillBank.of(
        {
            f"py-{i}": (
                Item(f"py-{i}", "python", ItemKind.SINGLE_CHOICE, stem, None, options, ("b",), 60),
                ItemParameters(f"py-{i}", 0.1 * i),
            )
            for i in range(n)
        }
    )


def key(items_version: int = 1, parameter_version: int = 0, skill: str = "python") -> BankKey:
    return BankKey(TENANT, skill, parameter_version, items_version)


def test_a_bank_is_built_once_per_key() -> None:
    cache = BankCache()
    builds: list[BankKey] = []

    def build() -> tuple[BankKey | None, SkillBank]:
        builds.append(key())
        return key(), skill_bank()

    first = cache.get_or_build(key(), build)
    assert cache.get_or_build(key(), build) is first
    assert len(builds) == 1
    assert dict(first.parameters) == {p.item_id: p for _, p in first.items.values()}


def test_a_bank_of_unsaved_items_is_not_kept() -> None:
    cache = BankCache()
    cache.get_or_build(key(), lambda: (None, skill_bank()))
    assert len(cache) == 0


def test_a_newer_version_of_the_items_replaces_the_older_bank() -> None:
    cache = BankCache()
    cache.put(key(1), skill_bank())
    cache.put(key(1, parameter_version=2), skill_bank())  # another parameter version: kept
    cache.put(key(2), skill_bank(4))
    assert cache.get(key(1)) is None
    assert cache.get(key(1, parameter_version=2)) is not None
    newer = cache.get(key(2))
    assert newer is not None
    assert len(newer.items) == 4
    # A slower build of the older items, stored after the newer one, is not kept.
    cache.put(key(1), skill_bank())
    assert cache.get(key(1)) is None


def test_entries_are_bounded_least_recently_used_first() -> None:
    cache = BankCache(max_entries=2)
    cache.put(key(skill="a"), skill_bank())
    cache.put(key(skill="b"), skill_bank())
    assert cache.get(key(skill="a")) is not None  # now b is the least recently used
    cache.put(key(skill="c"), skill_bank())
    assert len(cache) == 2
    assert cache.get(key(skill="b")) is None
    assert cache.get(key(skill="a")) is not None


def test_bytes_are_bounded() -> None:
    one = skill_bank(10, stem="x" * 1_000).estimated_bytes
    cache = BankCache(max_bytes=3 * one)
    for skill in "abcde":
        cache.put(key(skill=skill), skill_bank(10, stem="x" * 1_000))
    assert len(cache) == 3
    assert cache.bytes == 3 * one
    assert cache.get(key(skill="a")) is None
    # A bank larger than the whole budget is never kept, and pushes nothing out.
    cache.put(key(skill="huge"), skill_bank(50, stem="x" * 1_000))
    assert cache.get(key(skill="huge")) is None
    assert len(cache) == 3


def test_threads_share_the_cache() -> None:
    cache = BankCache(max_entries=8)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(300):
                skill = f"s{(n + offset) % 12}"
                cache.get_or_build(key(skill=skill), lambda s=skill: (key(skill=s), skill_bank()))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(cache) <= 8
    assert cache.bytes == skill_bank().estimated_bytes * len(cache)
