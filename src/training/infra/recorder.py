"""The event store's recorders.

Both write a transaction's statements one after another instead of in psycopg's pipeline
mode, which the library uses: with eventsourcing 9.5.6 and psycopg 3.3.9, a pipelined
transaction carrying more than about 600 KB of events (120 re-plans of a curriculum release,
or a large review import) never returns. The client waits in ``pipeline.sync()`` while the
server waits for the rest of the message, holding the events table's lock, so every other
write stops behind it. A transaction here is a handful of statements (set the tenant, lock,
notify, insert), so the pipeline saved only a few loopback round trips.

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

from training.application.personal_data import PersonalDataChange


class SequentialInserts(PostgresApplicationRecorder):
    """The library's ``insert_events``, without pipeline mode."""

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            with conn.cursor() as curs:
                self._insert_stored_events(curs, stored_events, **kwargs)
                return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)


class TrainingProcessRecorder(SequentialInserts, PostgresProcessRecorder):
    """The recorder of the planning process: its events and tracking position together."""


class TrainingRecorder(SequentialInserts):
    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> None:
        changes: Sequence[PersonalDataChange] = kwargs.get("personal_data", ())
        for change in changes:
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
