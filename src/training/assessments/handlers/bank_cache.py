"""The item banks attempts draw from, built once and kept while they are in use.

Every answer needs its skill's bank: the starter items and the tenant's private ones, under
the attempt's parameter version. Building it means loading (and copying) the tenant's
``ItemBank`` and ``ItemCalibration`` aggregates and merging them with the starter bank, which
cost more than the rest of an answer's reads together. Yet a bank only changes when the
tenant's ``ItemBank`` gets a new event (an item added or revised): a published parameter
version never changes. So a built bank is kept under (tenant, skill, parameter version,
version of the tenant's ``ItemBank``) and is immutable: a key that is found is right, and the
caller only has to learn the ``ItemBank``'s current version (one indexed read) to form it.

The cache is bounded in entries and in (estimated) bytes, drops the least recently used bank
first, and forgets a bank as soon as a newer version of the same tenant's items is stored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from uuid import UUID

from training.assessments.domain.items import Item
from training.assessments.domain.scoring import ItemParameters

# A starter skill bank (40 items) holds about 25 KB of text; a tenant with six skills and a
# few parameter versions in use needs a few dozen entries. These bounds hold several hundred
# tenants' banks and never more than 32 MB, whatever a tenant's private items weigh.
MAX_ENTRIES = 512
MAX_BYTES = 32 * 1024 * 1024
# What an item costs beyond its text: the objects, tuples and dict slots around it.
ITEM_OVERHEAD_BYTES = 600


@dataclass(frozen=True)
class BankKey:
    tenant_id: UUID
    skill: str
    parameter_version: int
    items_version: int  # the version of the tenant's ItemBank aggregate; 0 when it has none


@dataclass(frozen=True)
class SkillBank:
    """One skill's items with their parameters under one version; read-only, so threads
    share it."""

    items: Mapping[str, tuple[Item, ItemParameters]]
    parameters: Mapping[str, ItemParameters]

    @classmethod
    def of(cls, items: Mapping[str, tuple[Item, ItemParameters]]) -> SkillBank:
        return cls(
            MappingProxyType(dict(items)),
            MappingProxyType({item_id: params for item_id, (_, params) in items.items()}),
        )

    def get(self, item_id: str) -> tuple[Item, ItemParameters] | None:
        return self.items.get(item_id)

    def __getitem__(self, item_id: str) -> tuple[Item, ItemParameters]:
        return self.items[item_id]

    @property
    def estimated_bytes(self) -> int:
        """The text the bank holds plus a fixed overhead per item: an upper bound, as the
        starter items are shared by every tenant's banks."""
        total = 0
        for item, _ in self.items.values():
            text = len(item.stem) + len(item.code or "")
            text += sum(len(option.id) + len(option.text) for option in item.options)
            total += text + ITEM_OVERHEAD_BYTES
        return total


class BankCache:
    """Built banks by key, least recently used out first; safe to share between threads."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._banks: OrderedDict[BankKey, tuple[SkillBank, int]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._banks)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: BankKey) -> SkillBank | None:
        with self._lock:
            found = self._banks.get(key)
            if found is None:
                return None
            self._banks.move_to_end(key)
            return found[0]

    def get_or_build(
        self, key: BankKey, build: Callable[[], tuple[BankKey | None, SkillBank]]
    ) -> SkillBank:
        """The bank under ``key``, else the one ``build`` makes, kept under the key it
        returns (none: not kept): the build reads the tenant's items as they are then,
        which may be newer than ``key`` says. Two threads may build the same bank at once;
        both are right."""
        found = self.get(key)
        if found is not None:
            return found
        built_key, bank = build()
        if built_key is not None:
            self.put(built_key, bank)
        return bank

    def put(self, key: BankKey, bank: SkillBank) -> None:
        size = bank.estimated_bytes
        with self._lock:
            if any(_supersedes(k, key) for k in self._banks):
                return  # a slower build of items a newer bank already replaced
            self._drop(key)
            # Banks of older versions of the same items will not be asked for again.
            for stale in [k for k in self._banks if _supersedes(key, k)]:
                self._drop(stale)
            if size > self.max_bytes:
                return  # never kept: it would push out every other bank
            self._banks[key] = (bank, size)
            self._bytes += size
            while len(self._banks) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._banks)))

    def _drop(self, key: BankKey) -> None:
        found = self._banks.pop(key, None)
        if found is not None:
            self._bytes -= found[1]


def _supersedes(newer: BankKey, other: BankKey) -> bool:
    return (
        other.tenant_id == newer.tenant_id
        and other.skill == newer.skill
        and other.parameter_version == newer.parameter_version
        and other.items_version < newer.items_version
    )
