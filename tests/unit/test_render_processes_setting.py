"""How many reports a process renders at once: one per core unless told, and a wrong value
stops the service at start instead of later."""

from __future__ import annotations

import os

import pytest

from training.infra.settings import Settings


def test_one_render_process_per_core_by_default() -> None:
    assert Settings.from_env({}).render_processes == max(1, min(os.cpu_count() or 1, 64))


def test_the_number_of_render_processes_can_be_set() -> None:
    assert Settings.from_env({"TRAINING_RENDER_PROCESSES": "3"}).render_processes == 3


@pytest.mark.parametrize("value", ["0", "-1", "65", "two", "1.5"])
def test_a_number_out_of_range_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="TRAINING_RENDER_PROCESSES"):
        Settings.from_env({"TRAINING_RENDER_PROCESSES": value})
