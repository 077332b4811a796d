"""Writing from a controller: run a command as the caller, and answer with what it did.

``Commands.run`` is the only way a controller writes: the command context comes from the
authenticated principal and the request id, and the bus runs in a worker thread (the event
store is synchronous). ``answer`` is the only way a command's response is shaped: the
aggregate's version as ``ETag``, the position of its last event as ``Training-Position`` (send
it back on a query to read your own write) and, for what was created, ``Location``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from litestar import Response
from litestar.concurrency import sync_to_thread

from training.core.bus import CommandBus
from training.core.context import CommandContext
from training.core.http.params import POSITION_HEADER, etag
from training.core.outcome import Outcome

T = TypeVar("T")


@dataclass(frozen=True)
class Commands:
    """The command bus as one request's caller uses it."""

    bus: CommandBus
    context: CommandContext

    async def run(self, command: Any) -> Outcome[Any]:
        return await sync_to_thread(self.bus.execute, self.context, command)


def command_headers(outcome: Outcome[Any], *, version: int | None = None) -> dict[str, str]:
    headers = {}
    if outcome.position is not None:
        headers[POSITION_HEADER] = str(outcome.position)
    if version is not None:
        headers["ETag"] = etag(version)
    return headers


def answer(
    outcome: Outcome[Any],
    body: T,
    *,
    status: int = 200,
    version: int | None = None,
    location: str | None = None,
) -> Response[T]:
    """The response to a command: ``body`` with the headers that say what it did."""
    headers = command_headers(outcome, version=version)
    if location is not None:
        headers["Location"] = location
    return Response(body, status_code=status, headers=headers)
