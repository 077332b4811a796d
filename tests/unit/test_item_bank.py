"""The shipped starter bank: every item well formed, keyed and parameterised within range."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest

from training.assessments.domain.items import ItemKind, check_item
from training.assessments.domain.scoring import THETA_MAX, THETA_MIN, ItemParameters
from training.assessments.queries import BANK_FILE, starter_bank

FIELDS = [
    "item_id",
    "kind",
    "stem",
    "code",
    "options",
    "answer",
    "difficulty",
    "discrimination",
    "time_limit_seconds",
]
SKILLS = {"python", "sql", "http-apis", "git", "automated-testing", "kubernetes"}


def raw_bank() -> Any:
    return json.loads(resources.files("training.data").joinpath(BANK_FILE).read_text())


def raw_items() -> list[tuple[str, dict[str, Any]]]:
    return [(skill["skill"], item) for skill in raw_bank()["skills"] for item in skill["items"]]


def test_every_skill_has_items_from_very_easy_to_very_hard() -> None:
    bank = starter_bank()
    assert set(bank.items) == SKILLS
    for skill, items in bank.items.items():
        difficulties = sorted(parameters.difficulty for _, parameters in items.values())
        # The adaptive test needs well over its 25-item ceiling, and items at both ends of
        # the scale, to reach its SE target for engineers far from the middle.
        assert len(items) >= 40, skill
        assert sum(b <= -1.8 for b in difficulties) >= 6, skill
        assert sum(b >= 1.8 for b in difficulties) >= 6, skill


def test_item_ids_are_unique_and_numbered_within_their_skill() -> None:
    ids = [item["item_id"] for _, item in raw_items()]
    assert len(ids) == len(set(ids))
    for skill in raw_bank()["skills"]:
        numbers = []
        for item in skill["items"]:
            found = re.fullmatch(rf"{re.escape(skill['skill'])}-(\d{{3}})", item["item_id"])
            assert found, item["item_id"]
            numbers.append(int(found.group(1)))
        assert numbers == list(range(1, len(numbers) + 1)), skill["skill"]


@pytest.mark.parametrize(("skill", "raw"), raw_items(), ids=lambda value: str(value)[:40])
def test_each_item_is_well_formed(skill: str, raw: dict[str, Any]) -> None:
    assert list(raw) == FIELDS
    kind = ItemKind(raw["kind"])
    assert (raw["code"] is not None) == (kind is ItemKind.CODE_OUTPUT)
    item, parameters = starter_bank().items[skill][raw["item_id"]]
    assert check_item(item) == item  # options, answer for the kind, time limit
    option_ids = [option["id"] for option in raw["options"]]
    assert set(raw["answer"]) <= set(option_ids)
    if kind is ItemKind.ORDERING:
        assert sorted(raw["answer"]) == sorted(option_ids)
    else:
        assert len(set(raw["answer"])) == len(raw["answer"])
    assert all(option["text"].strip() for option in raw["options"])
    texts = [option["text"] for option in raw["options"]]
    assert len(set(texts)) == len(texts)
    assert parameters == ItemParameters(raw["item_id"], raw["difficulty"], raw["discrimination"])
    assert THETA_MIN < parameters.difficulty < THETA_MAX
    assert 0.5 <= parameters.discrimination <= 2.0
