"""Items and the tenant's bank of them, and the item parameters a calibration publishes.

Every tenant shares the starter bank (shipped with its parameters, version 0); a tenant adds
its own private items, with their keys and initial parameters, to its ``ItemBank``. A
calibration re-estimates the difficulties from the recorded responses and publishes them as
the next version of the tenant's ``ItemCalibration``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from training.assessments.domain.scoring import ItemParameters
from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import RuleViolated


class ItemKind(StrEnum):
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    CODE_OUTPUT = "code_output"
    ORDERING = "ordering"


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class Item:
    """An item's content and key. ``version`` grows with every revision of the content."""

    item_id: str
    skill: str
    kind: ItemKind
    stem: str
    code: str | None
    options: tuple[Option, ...]
    answer: tuple[str, ...]
    time_limit_seconds: int
    version: int = 1

    def is_correct(self, answer: tuple[str, ...]) -> bool:
        """Ordering items compare the sequence; choice items compare the set."""
        if self.kind is ItemKind.ORDERING:
            return answer == self.answer
        return sorted(answer) == sorted(self.answer)


def check_item(item: Item) -> Item:
    option_ids = [o.id for o in item.options]
    if len(set(option_ids)) != len(option_ids) or len(option_ids) < 2:
        raise RuleViolated("an item has two or more options with distinct ids", field="options")
    if not item.stem.strip():
        raise RuleViolated("an item has a question", field="stem")
    if not set(item.answer) <= set(option_ids) or not item.answer:
        raise RuleViolated("the answer names the item's options", field="answer")
    expected = {
        ItemKind.SINGLE_CHOICE: len(item.answer) == 1,
        ItemKind.CODE_OUTPUT: len(item.answer) == 1,
        ItemKind.MULTIPLE_CHOICE: 1 <= len(item.answer) < len(option_ids),
        ItemKind.ORDERING: sorted(item.answer) == sorted(option_ids),
    }[item.kind]
    if not expected:
        raise RuleViolated(f"the answer does not fit a {item.kind} item", field="answer")
    if not 15 <= item.time_limit_seconds <= 900:
        raise RuleViolated("a time limit is 15-900 seconds", field="time_limit_seconds")
    return item


class ItemBank(TrainingAggregate):
    """A tenant's private items, on top of the starter bank every tenant shares."""

    TOPIC = "training.assessments:ItemBank"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.assessments:ItemBank.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.assessments:ItemBank.Created"

    class Opened(Created):
        TOPIC = "training.assessments:ItemBank.Opened"

    class ItemAdded(Event):
        TOPIC = "training.assessments:ItemBank.ItemAdded"
        item: Item
        difficulty: float
        discrimination: float

    class ItemRevised(Event):
        TOPIC = "training.assessments:ItemBank.ItemRevised"
        item: Item

    @staticmethod
    def create_id(tenant_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "item-bank")

    @classmethod
    def open(cls, tenant_id: UUID) -> ItemBank:
        return cls(tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.items: dict[str, Item] = {}
        self.initial: dict[str, ItemParameters] = {}

    def add(self, item: Item, difficulty: float, discrimination: float, taken: set[str]) -> None:
        item = check_item(item)
        if item.item_id in self.items or item.item_id in taken:
            raise RuleViolated(f"the item {item.item_id!r} exists", field="item_id")
        ItemParameters(item.item_id, difficulty, discrimination)  # validates the numbers
        self._item_added(
            item=replace(item, version=1),
            difficulty=difficulty,
            discrimination=discrimination,
        )

    @event(ItemAdded)
    def _item_added(self, item: Item, difficulty: float, discrimination: float) -> None:
        self.items[item.item_id] = item
        self.initial[item.item_id] = ItemParameters(item.item_id, difficulty, discrimination)

    def revise(self, item: Item) -> Item:
        current = self.items.get(item.item_id)
        if current is None:
            raise RuleViolated(f"no private item {item.item_id!r}", field="item_id")
        revised = replace(check_item(item), version=current.version + 1)
        if replace(revised, version=0) != replace(current, version=0):
            self._item_revised(item=revised)
        return self.items[item.item_id]

    @event(ItemRevised)
    def _item_revised(self, item: Item) -> None:
        self.items[item.item_id] = item


class ItemCalibration(TrainingAggregate):
    """A tenant's published item-parameter versions. Version 0 is the shipped parameters."""

    TOPIC = "training.assessments:ItemCalibration"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.assessments:ItemCalibration.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.assessments:ItemCalibration.Created"

    class Opened(Created):
        TOPIC = "training.assessments:ItemCalibration.Opened"

    class ParametersPublished(Event):
        TOPIC = "training.assessments:ItemCalibration.ParametersPublished"
        version: int
        parameters: tuple[ItemParameters, ...]
        responses_used: int

    @staticmethod
    def create_id(tenant_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "item-calibration")

    @classmethod
    def open(cls, tenant_id: UUID) -> ItemCalibration:
        return cls(tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.versions: dict[int, dict[str, ItemParameters]] = {}

    @property
    def current_version(self) -> int:
        return max(self.versions, default=0)

    def publish(self, parameters: tuple[ItemParameters, ...], responses_used: int) -> int:
        version = self.current_version + 1
        self._parameters_published(
            version=version, parameters=parameters, responses_used=responses_used
        )
        return version

    @event(ParametersPublished)
    def _parameters_published(
        self, version: int, parameters: tuple[ItemParameters, ...], responses_used: int
    ) -> None:
        self.versions[version] = {p.item_id: p for p in parameters}
