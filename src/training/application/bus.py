"""The single entry point for every command.

Controllers, the CLI, importers and policies all call ``CommandBus.execute``. A handler is a
plain function ``handler(command, uow) -> result``: it loads aggregates through the unit of
work (which enforces the tenant boundary), calls their methods and returns a result. The bus
stamps the actor and request id on every new event and saves everything the handler touched
in one transaction. Because every write goes through here, batching many commands into one
transaction (group commit) is a change to this module alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from training.application.app import TrainingApplication
from training.application.context import CommandContext
from training.domain.base import TrainingAggregate
from training.domain.errors import NotFound, StaleVersion

A = TypeVar("A", bound=TrainingAggregate)
R = TypeVar("R")

Handler = Callable[[Any, "UnitOfWork"], Any]

# A concurrent writer touched the same aggregate: the handler runs again on fresh state.
MAX_ATTEMPTS = 5


class ConcurrentModification(Exception):
    """Another writer won the race several times in a row."""


class UnitOfWork:
    """Loads aggregates for one command and collects the ones to save."""

    def __init__(self, app: TrainingApplication, context: CommandContext) -> None:
        self.app = app
        self.context = context
        self._touched: dict[UUID, TrainingAggregate] = {}

    def get(self, cls: type[A], aggregate_id: UUID, *, expected_version: int | None = None) -> A:
        """The aggregate, if it exists, is a ``cls`` and the caller's tenant may see it.

        Another tenant's aggregate is reported exactly like a missing one.
        """
        if aggregate_id in self._touched:
            aggregate = self._touched[aggregate_id]
        else:
            try:
                aggregate = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                raise NotFound(f"{cls.__name__} {aggregate_id} not found") from None
        if not isinstance(aggregate, cls) or not self._may_see(aggregate):
            raise NotFound(f"{cls.__name__} {aggregate_id} not found")
        if expected_version is not None and aggregate.version != expected_version:
            raise StaleVersion(expected_version, aggregate.version)
        self._touched[aggregate_id] = aggregate
        return aggregate

    def exists(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self._touched or aggregate_id in self.app.repository

    def add(self, aggregate: TrainingAggregate) -> None:
        if not self._may_see(aggregate):
            raise NotFound("the aggregate belongs to another tenant")
        self._touched[aggregate.id] = aggregate

    def _may_see(self, aggregate: TrainingAggregate) -> bool:
        return self.context.is_platform or aggregate.tenant_id == self.context.tenant_id

    def collect_stamped_events(self) -> list[TrainingAggregate.Event]:
        stamped: list[TrainingAggregate.Event] = []
        for aggregate in self._touched.values():
            for pending in aggregate.collect_events():
                # Events are frozen dataclasses; replace() copies one with the stamps set.
                stamped.append(
                    dataclasses.replace(
                        cast(Any, pending),
                        actor=str(self.context.actor),
                        request_id=self.context.request_id,
                        tenant_id=aggregate.tenant_id,
                    )
                )
        return stamped


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    """What a command returns: the handler's result and the position of its last event."""

    result: R
    position: int | None


class CommandBus:
    def __init__(self, app: TrainingApplication, handlers: Mapping[type, Handler]) -> None:
        self.app = app
        self.handlers = dict(handlers)

    def execute(self, context: CommandContext, command: Any) -> Outcome[Any]:
        handler = self.handlers.get(type(command))
        if handler is None:
            msg = f"no handler for {type(command).__name__}"
            raise LookupError(msg)
        for _attempt in range(MAX_ATTEMPTS):
            uow = UnitOfWork(self.app, context)
            result = handler(command, uow)
            events = uow.collect_stamped_events()
            if not events:
                return Outcome(result, None)
            try:
                recordings = self.app.save(*events)
            except IntegrityError:
                # Another writer appended to one of these aggregates (or created the same
                # natural key) first: run the handler again on fresh state, where it sees
                # the other write and decides again.
                continue
            return Outcome(result, max(r.notification.id for r in recordings))
        raise ConcurrentModification(
            f"{type(command).__name__} lost {MAX_ATTEMPTS} races for the same aggregate"
        )
