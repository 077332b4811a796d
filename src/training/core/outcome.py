"""What a command returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    """What a command returns: the handler's result and the position of its last event."""

    result: R
    position: int | None
