"""The event store's recorder, extended to write personal data in the events' transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor
from psycopg.rows import DictRow

from training.application.personal_data import PersonalDataChange


class TrainingRecorder(PostgresApplicationRecorder):
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
