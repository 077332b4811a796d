"""The event store's recorders.

The library sends a transaction's statements (set the tenant, lock the events table, notify,
insert, commit) in psycopg's pipeline mode: one round trip. That matters under load: the
events table stays locked until the commit, and between round trips the writing thread may
wait for the interpreter lock while other threads of the process run, so every extra round
trip lengthens the time every other writer waits.

But with eventsourcing 9.5.6 and psycopg 3.3.9, a pipelined transaction of more than about
600 KB (120 re-plans of a curriculum release, a large review import) never returns: the
client waits in ``pipeline.sync()`` while the server waits for the rest of the message,
holding the lock, so every write of the service stops behind it. So a transaction up to
``PIPELINE_LIMIT_BYTES`` is pipelined, and a larger one sends its statements one after
another (a few more round trips, on a transaction that is long anyway).

``TrainingRecorder`` also writes personal data (the ``people`` table) in the events'
transaction, so a member's name and the event that registers them commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresProcessRecorder
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow

from training.application.idempotency import CommandMarker
from training.application.personal_data import PersonalDataChange
from training.infra.idempotency import record_command_outcome

# Well below the size that hangs (about 600 KB); a command's transaction is a few KB.
PIPELINE_LIMIT_BYTES = 256 * 1024
# What a personal data change adds to the transaction (a statement with a name and an email).
PERSONAL_DATA_BYTES = 300


def transaction_size(stored_events: Sequence[StoredEvent], **kwargs: Any) -> int:
    changes: Sequence[PersonalDataChange] = kwargs.get("personal_data", ())
    return sum(len(event.state) for event in stored_events) + PERSONAL_DATA_BYTES * len(changes)


class SizedInserts(PostgresApplicationRecorder):
    """The library's pipelined ``insert_events``, or statement by statement when large."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: Sequence[int] | None
        if transaction_size(stored_events, **kwargs) <= PIPELINE_LIMIT_BYTES:
            ids = super().insert_events(stored_events, **kwargs)
        else:
            ids = self._insert_statement_by_statement(stored_events, **kwargs)
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_statement_by_statement(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
            with conn.cursor() as curs:
                self._insert_stored_events(curs, stored_events, **kwargs)
                return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)


class TrainingProcessRecorder(SizedInserts, PostgresProcessRecorder):
    """The recorder of the planning process: its events and tracking position together."""


class TrainingRecorder(SizedInserts):
    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> None:
        changes: Sequence[PersonalDataChange] = kwargs.get("personal_data", ())
        for change in changes:
            if isinstance(change, CommandMarker):  # an idempotent request's command outcome
                record_command_outcome(curs, change)
                continue
            # Row-level security checks every row against the transaction's tenant.
            curs.execute("SELECT set_config('app.tenant_id', %s, true)", (str(change.tenant_id),))
            if change.data is None:
                curs.execute(
                    "DELETE FROM training.people WHERE member_id = %s", (change.member_id,)
                )
            elif change.data.display_name is None:
                # A partial change of an existing member (its row exists: it was registered).
                curs.execute(
                    "UPDATE training.people SET email = COALESCE(%s, email), updated_at = now() "
                    "WHERE member_id = %s",
                    (change.data.email, change.member_id),
                )
            else:
                curs.execute(
                    "INSERT INTO training.people (member_id, tenant_id, display_name, email, "
                    "updated_at) VALUES (%s, %s, %s, %s, now()) ON CONFLICT (member_id) DO UPDATE "
                    "SET display_name = EXCLUDED.display_name, "
                    "email = COALESCE(EXCLUDED.email, people.email), updated_at = now()",
                    (
                        change.member_id,
                        change.tenant_id,
                        change.data.display_name,
                        change.data.email,
                    ),
                )
        super()._insert_events(curs, stored_events, **kwargs)
