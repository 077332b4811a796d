"""Commands of an idempotent request act once, even across a crash.

An HTTP request with an ``Idempotency-Key`` runs its commands with ``RequestCommands`` set
for its context (the API's middleware sets it; ``sync_to_thread`` carries it into the worker
thread). The command bus numbers each command of the request, and:

* writes a ``CommandMarker`` beside the command's events, in their transaction: the outcome
  the command answered (sealed: it may hold a secret), so the outcome is recorded exactly
  when the events are;
* before running a command, asks whether an earlier attempt of the same request already
  recorded it; then it answers that outcome and runs nothing. The controller shapes the same
  response from it, so a retry after a crash answers what the first attempt would have.

Outside such a request (background jobs, the CLI) nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from training.core.outcome import Outcome


@dataclass(frozen=True, slots=True)
class CommandMarker:
    """Written in the transaction of a command's events: the command numbered ``seq`` of the
    request ``key`` (with fingerprint ``request_hash``) of ``principal`` is stored, and
    ``outcome`` (sealed) is what it answered."""

    tenant_id: UUID | None
    principal: str
    key: str
    request_hash: str
    seq: int
    outcome: bytes
    last_event_id: UUID
    last_event_version: int
    expires_at: datetime


class RequestCommands(Protocol):
    """The commands of one idempotent request, as the command bus sees them."""

    def next_command(self) -> int:
        """Numbers the request's next command (1, 2, ...)."""
        ...

    def recorded(self, seq: int) -> Outcome[Any] | None:
        """The outcome an earlier attempt of the request recorded for command ``seq``."""
        ...

    def recorded_now(self, seq: int) -> Outcome[Any] | None:
        """The same, read again from the database (another attempt may have just stored it)."""
        ...

    def marker(self, seq: int, result: Any, last_event: Any) -> CommandMarker:
        """The marker of command ``seq``, which answered ``result``; ``last_event`` is the
        last of its events (its position is the command's)."""
        ...


_CURRENT: ContextVar[RequestCommands | None] = ContextVar("request_commands", default=None)


def request_commands() -> RequestCommands | None:
    """The commands of the idempotent request being served, if any."""
    return _CURRENT.get()


@contextmanager
def commands_of_request(commands: RequestCommands) -> Iterator[None]:
    token = _CURRENT.set(commands)
    try:
        yield
    finally:
        _CURRENT.reset(token)
