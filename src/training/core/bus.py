"""The single entry point for every command.

Controllers, the CLI, importers and policies all call ``CommandBus.execute``. A handler is a
plain function ``handler(command, uow) -> result``: it loads aggregates through the unit of
work (which enforces the tenant boundary), calls their methods and returns a result. The bus
stamps the actor and request id on every new event and saves everything the handler touched
in one transaction, which it shares with the commands saving at the same moment (group
commit, see ``group_commit``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from training.core import snapshots
from training.core.aggregate import TrainingAggregate
from training.core.application import TrainingApplication
from training.core.context import CommandContext
from training.core.errors import AlreadyExists, Forbidden, NotFound, StaleVersion
from training.core.group_commit import GroupCommit, SideChange
from training.core.idempotency import RequestCommands, request_commands
from training.core.loading import load_many
from training.core.outcome import Outcome
from training.core.personal_data import (
    UNIQUE_FIELDS,
    CohortReason,
    Erasure,
    LearningNote,
    MemberDataChange,
    NothingStored,
    PersonalData,
    PersonalDataChange,
    PersonalDataReader,
    ReviewText,
    ReviewTextChange,
)
from training.core.retry import RetryPolicy
from training.core.turns import AggregateTurns, NoTurn

A = TypeVar("A", bound=TrainingAggregate)
R = TypeVar("R")

Handler = Callable[[Any, "UnitOfWork"], Any]


class ConcurrentModification(Exception):
    """Other writers kept changing the command's aggregates for its whole time budget."""


class UnitOfWork:
    """Loads aggregates for one command and collects the ones to save."""

    def __init__(self, app: TrainingApplication, context: CommandContext) -> None:
        self.app = app
        self.context = context
        self._touched: dict[UUID, TrainingAggregate] = {}
        # Aggregates found missing: asked again, they are still missing for this command, so
        # a handler that checks and then acts reads one state, not two (a registration
        # committing between two reads of the same key let two members take one external id).
        self._missing: set[UUID] = set()
        self.personal_data: list[PersonalDataChange] = []
        recorder = app.recorder
        self._stored: PersonalDataReader = (
            recorder if isinstance(recorder, PersonalDataReader) else NothingStored()
        )

    def get(self, cls: type[A], aggregate_id: UUID, *, expected_version: int | None = None) -> A:
        """The aggregate, if it exists, is a ``cls`` and the caller's tenant may see it.

        Another tenant's aggregate is reported exactly like a missing one.
        """
        if aggregate_id in self._touched:
            aggregate = self._touched[aggregate_id]
        elif aggregate_id in self._missing:
            raise NotFound(f"{cls.__name__} {aggregate_id} not found")
        else:
            try:
                aggregate = self.app.repository.get(
                    aggregate_id, snapshots=cls.snapshot_interval is not None
                )
            except AggregateNotFoundError:
                self._missing.add(aggregate_id)
                raise NotFound(f"{cls.__name__} {aggregate_id} not found") from None
        if not isinstance(aggregate, cls) or not self._may_see(aggregate):
            raise NotFound(f"{cls.__name__} {aggregate_id} not found")
        if expected_version is not None and aggregate.version != expected_version:
            raise StaleVersion(expected_version, aggregate.version)
        self._touched[aggregate_id] = aggregate
        return aggregate

    def get_many(self, cls: type[A], aggregate_ids: Collection[UUID]) -> dict[UUID, A]:
        """Those of ``aggregate_ids`` that exist, are ``cls`` and the caller's tenant may see,
        read with one query (a batch); like ``get``, each is then held for the command, and
        each one found missing stays missing."""
        wanted = [i for i in dict.fromkeys(aggregate_ids) if i not in self._missing]
        found = load_many(self.app, [i for i in wanted if i not in self._touched])
        held: dict[UUID, A] = {}
        for aggregate_id in wanted:
            aggregate = self._touched.get(aggregate_id) or found.get(aggregate_id)
            if aggregate is None:
                self._missing.add(aggregate_id)
            elif isinstance(aggregate, cls) and self._may_see(aggregate):
                self._touched[aggregate_id] = aggregate
                held[aggregate_id] = aggregate
        return held

    def require_tenant(self) -> UUID:
        """The caller's tenant; platform callers cannot act on one tenant's people or plans."""
        if self.context.tenant_id is None:
            raise Forbidden("this belongs to a tenant; use a tenant's credentials")
        return self.context.tenant_id

    def exists(self, aggregate_id: UUID) -> bool:
        # One indexed read of the first event: loading (and copying) the whole aggregate just
        # to learn that it exists costs a lot for large ones such as a tenant's seat roster.
        if aggregate_id in self._touched:
            return True
        if aggregate_id in self._missing:
            return False
        if self.app.recorder.select_events(aggregate_id, limit=1):
            return True
        self._missing.add(aggregate_id)
        return False

    def get_or_add(self, cls: type[A], aggregate_id: UUID, create: Callable[[], A]) -> A:
        """The aggregate if it exists, else the one ``create`` makes (saved with the rest)."""
        if self.exists(aggregate_id):
            return self.get(cls, aggregate_id)
        aggregate = create()
        self.add(aggregate)
        return aggregate

    def discard(self, aggregate_id: UUID) -> None:
        """Forgets an aggregate and its pending events (one failed row of a batch)."""
        aggregate = self._touched.pop(aggregate_id, None)
        if aggregate is not None:
            aggregate.collect_events()
        self.personal_data = [
            c
            for c in self.personal_data
            if aggregate_id not in (c.member_id, getattr(c, "review_id", None))
        ]

    def keep_personal_data(self, member: TrainingAggregate, data: PersonalData) -> None:
        assert member.tenant_id is not None
        self.personal_data.append(MemberDataChange(member.id, member.tenant_id, data))

    def erase_personal_data(self, member: TrainingAggregate) -> None:
        assert member.tenant_id is not None
        self.personal_data.append(Erasure(member.id, member.tenant_id))

    def keep_review_text(
        self,
        review: TrainingAggregate,
        member_id: UUID,
        *,
        strengths: tuple[str, ...] | None = None,
        amendment_reason: str | None = None,
    ) -> None:
        """Free text of a review of ``member_id``, kept beside the review's events."""
        assert review.tenant_id is not None
        self.personal_data.append(
            ReviewTextChange(member_id, review.tenant_id, review.id, strengths, amendment_reason)
        )

    def keep_learning_note(
        self,
        record: TrainingAggregate,
        member_id: UUID,
        curriculum_id: str,
        module_key: str,
        note: str,
    ) -> None:
        """What the engineer wrote with the report ``record`` just recorded (at its version)."""
        assert record.tenant_id is not None
        self.personal_data.append(
            LearningNote(
                member_id,
                record.tenant_id,
                record.id,
                record.version,
                curriculum_id,
                module_key,
                note,
            )
        )

    def keep_cohort_reason(
        self,
        cohort: TrainingAggregate,
        version: int,
        withdrawn: tuple[UUID, ...],
        reason: str,
        member_id: UUID | None = None,
    ) -> None:
        """Why the cohort's event at ``version`` withdrew ``withdrawn``: one person's
        withdrawal (``member_id``) or the cohort's cancellation."""
        assert cohort.tenant_id is not None
        self.personal_data.append(
            CohortReason(member_id, cohort.tenant_id, cohort.id, version, withdrawn, reason)
        )

    def email_holders(self, emails: Collection[str]) -> dict[str, UUID]:
        """Which members of the caller's tenant hold these emails now (committed state).

        A check before the command for a clear refusal; the unique constraint on the stored
        emails decides races (the bus then runs the command again, which finds the holder).
        """
        tenant_id = self.require_tenant()
        return self._stored.email_holders(tenant_id, emails) if emails else {}

    def stored_review_text(self, review_id: UUID) -> ReviewText | None:
        return self._stored.review_text(self.require_tenant(), review_id)

    def add(self, aggregate: TrainingAggregate) -> None:
        if not self._may_see(aggregate):
            raise NotFound("the aggregate belongs to another tenant")
        self._touched[aggregate.id] = aggregate
        self._missing.discard(aggregate.id)

    def _may_see(self, aggregate: TrainingAggregate) -> bool:
        return self.context.is_platform or aggregate.tenant_id == self.context.tenant_id

    def touched(self) -> list[TrainingAggregate]:
        """The aggregates the handler loaded or created."""
        return list(self._touched.values())

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
class _Lost:
    """An attempt whose save another writer came before (or would have: it waits its turn)."""

    aggregates: frozenset[UUID]  # the aggregates it meant to write
    taken: str | None  # the personal data field another member took, if that was the race


class CommandBus:
    def __init__(
        self,
        app: TrainingApplication,
        handlers: Mapping[type, Handler],
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.app = app
        self.handlers = dict(handlers)
        self.retry = retry or RetryPolicy()
        self._commits = GroupCommit(self._store)
        self._turns = AggregateTurns()

    def _store(self, events: Sequence[Any], personal_data: Sequence[SideChange]) -> list[int]:
        recordings = self.app.save(*events, personal_data=tuple(personal_data))
        return [recording.notification.id for recording in recordings]

    def execute(self, context: CommandContext, command: Any) -> Outcome[Any]:
        """Runs the command's handler and saves what it changed.

        When another writer changed the same aggregates first, the handler runs again on
        fresh state: at once the first time, then in its turn among this process's
        commands on those aggregates (``turns``), and after a growing random delay when it
        loses even in its turn (a writer in another process). A command still losing when
        its time budget is spent raises ``ConcurrentModification``.
        """
        handler = self.handlers.get(type(command))
        if handler is None:
            msg = f"no handler for {type(command).__name__}"
            raise LookupError(msg)
        # In a request with an Idempotency-Key, a command an earlier attempt stored (before a
        # crash) answers what it answered then, and runs nothing.
        commands = request_commands()
        seq = commands.next_command() if commands is not None else 0
        if commands is not None and (recorded := commands.recorded(seq)) is not None:
            return recorded
        attempts = self.retry.start()
        turn: frozenset[UUID] = frozenset()  # what it waits its turn for; nothing at first
        while True:
            try:
                with self._turns.turn(turn, within=attempts.remaining()):
                    attempt = self._attempt(context, command, handler, commands, seq, turn)
                    while isinstance(attempt, _Lost) and turn and attempt.aggregates <= turn:
                        # It lost in its turn: a writer of another process came first. It
                        # keeps its place and tries again after a while.
                        if attempt.taken is None and not attempts.back_off():
                            raise self._gave_up(command, attempt)
                        if attempts.remaining() <= 0:
                            raise self._gave_up(command, attempt)
                        attempt = self._attempt(context, command, handler, commands, seq, turn)
            except NoTurn:
                raise self._gave_up(command, None) from None
            if not isinstance(attempt, _Lost):
                return attempt
            if attempts.remaining() <= 0:
                raise self._gave_up(command, attempt)
            turn |= attempt.aggregates

    def _gave_up(self, command: Any, lost: _Lost | None) -> Exception:
        if lost is not None and lost.taken is not None:
            taken = lost.taken
            return AlreadyExists(f"another member of this tenant has this {taken}", field=taken)
        return ConcurrentModification(
            f"other writers kept changing what {type(command).__name__} changes for "
            f"{self.retry.budget:g} s"
        )

    def _attempt(
        self,
        context: CommandContext,
        command: Any,
        handler: Handler,
        commands: RequestCommands | None,
        seq: int,
        turn: frozenset[UUID],
    ) -> Outcome[Any] | _Lost:
        uow = UnitOfWork(self.app, context)
        result = handler(command, uow)
        events = uow.collect_stamped_events()
        if not events:
            # Personal data is written with events only, so every change leaves a trace.
            assert not uow.personal_data, "personal data changed without an event"
            return Outcome(result, None)
        side: list[SideChange] = [*uow.personal_data]
        if commands is not None:  # its outcome, recorded with its events
            side.append(commands.marker(seq, result, events[-1]))
        written = frozenset(event.originator_id for event in events)
        if self._turns.claimed(written - turn):
            # Commands of this process wait their turn on these aggregates: saving now would
            # most likely conflict with theirs, and would overtake them if it did not.
            return _Lost(written, None)
        try:
            position = self._commits.save(events, side)
        except IntegrityError as error:
            if commands is not None and (recorded := commands.recorded_now(seq)) is not None:
                return recorded  # another attempt of this request stored it first
            taken = _unique_field_taken(error)
            if taken is not None:
                # Another member took the email (or identity) since the handler checked:
                # it runs again, finds the holder and refuses, naming the field.
                return _Lost(written, taken)
            if not self._lost_a_race(events):
                raise  # a broken constraint elsewhere is a bug, not a race
            # Another writer appended to one of these aggregates (or created the same
            # natural key) first: run the handler again on fresh state, where it sees
            # the other write and decides again.
            return _Lost(written, None)
        snapshots.store(self.app, snapshots.due(uow.touched(), events))
        return Outcome(result, position)

    def _lost_a_race(self, events: list[TrainingAggregate.Event]) -> bool:
        """Whether another writer stored a version this save meant to write."""
        first_new: dict[UUID, int] = {}
        for event in events:
            known = first_new.get(event.originator_id, event.originator_version)
            first_new[event.originator_id] = min(known, event.originator_version)
        return any(
            self.app.recorder.select_events(originator_id, gt=version - 1, limit=1)
            for originator_id, version in first_new.items()
        )


def _unique_field_taken(error: BaseException) -> str | None:
    """The personal data field another member holds, when that is why the database refused
    the save (None for any other refusal).

    The library wraps the driver's error; the constraint's name is on the original (its
    message is never shown: it quotes the value)."""
    diagnostic = getattr(error.__cause__, "diag", None)
    return UNIQUE_FIELDS.get(str(getattr(diagnostic, "constraint_name", None)))
