"""What the commands of an idempotent request recorded, sealed with the service's key, and how a
retry of the request reads them back (ADR 0022)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import psycopg
from cryptography.exceptions import InvalidTag
from psycopg import Cursor

from training.core.idempotency import CommandMarker
from training.core.moved_modules import unpickle
from training.core.outcome import Outcome
from training.core.tenant_scope import leave_scope, scope_to


class Sealer(Protocol):
    """Authenticated encryption bound to a context (the service's ``SecretBox``)."""

    def seal(self, plaintext: bytes, *, context: bytes = b"") -> bytes: ...

    def open(self, sealed: bytes, *, context: bytes = b"") -> bytes: ...


# A request's recorded outcomes with the position of each (its last event's notification id).
RECORDED = (
    "SELECT o.seq, o.outcome, e.notification_id FROM training.command_outcomes o "
    "LEFT JOIN training.training_events e ON e.originator_id = o.last_event_id "
    "AND e.originator_version = o.last_event_version "
    "WHERE o.principal = %s AND o.key = %s AND o.request_hash = %s"
)


def sealing_context(tenant_id: UUID | None, principal: str, key: str) -> bytes:
    """The associated data of a stored body: the row it belongs to."""
    tenant = str(tenant_id) if tenant_id is not None else "platform"
    return "\x00".join(("idempotency", tenant, principal, key)).encode()


def outcome_context(tenant_id: UUID | None, principal: str, key: str, seq: int) -> bytes:
    """The associated data of a recorded command outcome: its row."""
    return sealing_context(tenant_id, principal, key) + f"\x00command\x00{seq}".encode()


def record_command_outcome(curs: Cursor[Any], marker: CommandMarker) -> None:
    """Writes a command's outcome in the transaction of its events (the recorder calls it).

    A second recording of the same command of the same request breaks the primary key, and
    so the whole save: the bus then answers the outcome recorded first.
    """
    scope_to(curs, marker.tenant_id)
    curs.execute(
        "INSERT INTO training.command_outcomes (principal, key, request_hash, seq, tenant_id, "
        "outcome, last_event_id, last_event_version, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            marker.principal,
            marker.key,
            marker.request_hash,
            marker.seq,
            marker.tenant_id,
            marker.outcome,
            marker.last_event_id,
            marker.last_event_version,
            marker.expires_at,
        ),
    )
    # The platform setting must not outlive the marker in a transaction shared with others.
    leave_scope(curs)


class UnreadableOutcome(Exception):
    """A recorded outcome was sealed under another secret key, or names a class that no
    longer exists."""


@dataclass(eq=False)
class IdempotentRequest:
    """The commands of one attempt of an idempotent request (``RequestCommands``).

    ``recorded`` holds what earlier attempts of the request stored, by command number. The
    request is its key and its fingerprint (``request_hash``): another request sent with the
    same key never sees these outcomes.
    """

    box: Sealer
    conninfo: str
    tenant_id: UUID | None
    principal: str
    key: str
    request_hash: str
    expires_at: datetime
    recorded_outcomes: dict[int, Outcome[Any]] = field(default_factory=dict)
    # For the response: whether a command was answered from a record, or stored its outcome.
    replayed: int = 0
    committed: int = 0
    _next: int = 0

    def next_command(self) -> int:
        self._next += 1
        return self._next

    def recorded(self, seq: int) -> Outcome[Any] | None:
        outcome = self.recorded_outcomes.get(seq)
        if outcome is not None:
            self.replayed += 1
        return outcome

    def recorded_now(self, seq: int) -> Outcome[Any] | None:
        with psycopg.connect(self.conninfo) as conn, conn.transaction():
            scope_to(conn, self.tenant_id)
            rows = conn.execute(
                RECORDED + " AND o.seq = %s", (self.principal, self.key, self.request_hash, seq)
            )
            found = open_outcomes(self.box, self.tenant_id, self.principal, self.key, rows)
        self.recorded_outcomes.update(found)
        return self.recorded(seq)

    def marker(self, seq: int, result: Any, last_event: Any) -> CommandMarker:
        # pickle: results are the handlers' own types (dataclasses, snapshots, aggregates). The
        # bytes are sealed with the service's key, so only what this service wrote is loaded.
        sealed = self.box.seal(
            pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL),
            context=outcome_context(self.tenant_id, self.principal, self.key, seq),
        )
        self.committed += 1
        return CommandMarker(
            tenant_id=self.tenant_id,
            principal=self.principal,
            key=self.key,
            request_hash=self.request_hash,
            seq=seq,
            outcome=sealed,
            last_event_id=last_event.originator_id,
            last_event_version=int(last_event.originator_version),
            expires_at=self.expires_at,
        )


def open_outcomes(
    box: Sealer,
    tenant_id: UUID | None,
    principal: str,
    key: str,
    rows: Any,
) -> dict[int, Outcome[Any]]:
    opened: dict[int, Outcome[Any]] = {}
    for seq, sealed, position in rows:
        context = outcome_context(tenant_id, principal, key, int(seq))
        try:
            result = unpickle(box.open(bytes(sealed), context=context))
        except (InvalidTag, ImportError, AttributeError, pickle.UnpicklingError) as error:
            # Sealed under another key, or naming a class no release knows any more.
            raise UnreadableOutcome from error
        opened[int(seq)] = Outcome(result, int(position) if position is not None else None)
    return opened
