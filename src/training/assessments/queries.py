"""What other contexts may ask of assessments: the starter bank every tenant shares."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from training.assessments.domain.items import Item, ItemKind, Option
from training.assessments.domain.scoring import CutScores, ItemParameters

BANK_FILE = "item_bank.json"

Bank = dict[str, tuple[Item, ItemParameters]]


@dataclass(frozen=True)
class StarterBank:
    version: str
    cut_scores: CutScores
    items: dict[str, Bank]  # skill -> item id -> (item, shipped parameters)

    @property
    def skills(self) -> frozenset[str]:
        return frozenset(self.items)


@cache
def starter_bank() -> StarterBank:
    """The items every tenant shares, with their shipped parameters (version 0)."""
    raw = json.loads(resources.files("training.data").joinpath(BANK_FILE).read_text())
    items: dict[str, Bank] = {}
    for skill in raw["skills"]:
        bank: Bank = {}
        for entry in skill["items"]:
            item = Item(
                item_id=entry["item_id"],
                skill=skill["skill"],
                kind=ItemKind(entry["kind"]),
                stem=entry["stem"],
                code=entry.get("code"),
                options=tuple(Option(o["id"], o["text"]) for o in entry["options"]),
                answer=tuple(entry["answer"]),
                time_limit_seconds=int(entry["time_limit_seconds"]),
            )
            parameters = ItemParameters(
                item.item_id, float(entry["difficulty"]), float(entry["discrimination"])
            )
            bank[item.item_id] = (item, parameters)
        items[skill["skill"]] = bank
    return StarterBank(raw["version"], CutScores(tuple(raw["cut_scores"])), items)
