"""How many processes answer the API: one unless told, and a wrong value is refused at start."""

from __future__ import annotations

import pytest

from training.cli import main
from training.infra.settings import Settings


def test_one_api_process_by_default() -> None:
    assert Settings.from_env({}).api_processes == 1


def test_the_number_of_api_processes_can_be_set() -> None:
    assert Settings.from_env({"TRAINING_API_PROCESSES": "4"}).api_processes == 4


@pytest.mark.parametrize("value", ["0", "-1", "65", "two", "1.5"])
def test_a_number_out_of_range_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="TRAINING_API_PROCESSES"):
        Settings.from_env({"TRAINING_API_PROCESSES": value})


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_serve_refuses_a_wrong_number_of_processes(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--processes", value])
    assert stopped.value.code == 2
    assert "a whole number from 1 to 64" in capsys.readouterr().err
