"""Outcomes pickled by a release whose modules have since moved are still read."""

from __future__ import annotations

import pickle

import pytest

from training.core.context import Actor, ActorKind
from training.core.moved_modules import MOVED_CLASSES, MOVED_MODULES, unpickle


def pickled_by_old_release(value: object, new_module: str, old_module: str) -> bytes:
    # Protocol 2 names classes as text lines ("c<module>\n<name>\n"), so the module can be
    # swapped for the one an earlier release wrote.
    data = pickle.dumps(value, protocol=2)
    assert new_module.encode() in data
    return data.replace(f"{new_module}\n".encode(), f"{old_module}\n".encode())


def test_a_value_pickled_under_an_old_module_name_is_read() -> None:
    actor = Actor(ActorKind.CLIENT, "client-1")
    data = pickled_by_old_release(actor, "training.core.context", "training.application.context")
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(data)  # noqa: S301 (made by this test)
    assert unpickle(data) == actor


def test_every_new_module_exists() -> None:
    import importlib

    for new in MOVED_MODULES.values():
        importlib.import_module(new)


def test_a_class_no_release_knows_is_refused() -> None:
    actor = Actor(ActorKind.CLIENT, "client-1")
    data = pickled_by_old_release(actor, "training.core.context", "training.nowhere")
    with pytest.raises(ModuleNotFoundError):
        unpickle(data)


def test_every_class_of_a_moved_module_is_found_where_it_lives_now() -> None:
    import importlib

    for key, new in MOVED_CLASSES.items():
        old, name = key.split(":")
        assert old in MOVED_MODULES
        assert isinstance(getattr(importlib.import_module(new), name), type), key


def test_a_class_that_left_its_module_is_read_from_its_new_one() -> None:
    from training.assessments.domain.items import Option

    option = Option("a", "Paris")
    data = pickled_by_old_release(
        option, "training.assessments.domain.items", "training.domain.assessments"
    )
    assert unpickle(data) == option
