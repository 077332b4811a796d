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

``TrainingRecorder`` also writes personal data (the ``people``, ``review_texts``,
``learning_notes`` and ``cohort_reasons`` tables) in the events' transaction, so a member's
name and the event that registers them commit together, and an erasure deletes everything
that names the person (``training.erase_member``, migrations 0017 and 0028) in the
transaction of the ``Erased`` event. It reads them back for the command handlers
(``PersonalDataReader``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent, Tracking
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresProcessRecorder
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow

from training.core import quarantine
from training.core.command_outcomes import record_command_outcome
from training.core.idempotency import CommandMarker
from training.core.personal_data import (
    CohortReason,
    Erasure,
    LearningNote,
    MemberDataChange,
    PersonalDataChange,
    ReviewText,
    ReviewTextChange,
)
from training.core.quarantine import EventRef
from training.core.tenant_scope import scope_to

# Well below the size that hangs (about 600 KB); a command's transaction is a few KB.
PIPELINE_LIMIT_BYTES = 256 * 1024
# What a personal data change adds to the transaction (a statement with a name and an email),
# besides the free text it carries.
PERSONAL_DATA_BYTES = 300


def _change_size(change: PersonalDataChange) -> int:
    text = 0
    if isinstance(change, ReviewTextChange):
        text = sum(len(s) for s in change.strengths or ()) + len(change.amendment_reason or "")
    elif isinstance(change, MemberDataChange):
        text = len(change.data.deactivation_reason or "")
    elif isinstance(change, LearningNote):
        text = len(change.note)
    elif isinstance(change, CohortReason):
        text = len(change.reason) + 10 * len(change.withdrawn)  # ids, as text, take more
    return PERSONAL_DATA_BYTES + 4 * text  # up to 4 bytes a character in UTF-8


def transaction_size(stored_events: Sequence[StoredEvent], **kwargs: Any) -> int:
    changes: Sequence[PersonalDataChange] = kwargs.get("personal_data", ())
    return sum(len(event.state) for event in stored_events) + sum(map(_change_size, changes))


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
    """The recorder of the planning process: its events and tracking position together.

    ``projections retry`` re-applies an event the process set aside (ADR 0026) while the
    recorder is ``releasing`` it: that event's position was recorded when it was set aside, so
    the transaction that stores what the policy made of it resolves its quarantine row
    instead, and both commit together.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._releasing: EventRef | None = None
        self.released = False

    @contextmanager
    def releasing(self, ref: EventRef) -> Iterator[None]:
        self._releasing, self.released = ref, False
        try:
            yield
        finally:
            self._releasing = None

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        releasing = self._releasing_at(kwargs.get("tracking"))
        if releasing is None:
            return super().insert_events(stored_events, **kwargs)
        ids = self._insert_releasing(releasing, stored_events, **kwargs)
        self.released = True
        return ids

    def _insert_releasing(
        self, ref: EventRef, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        # Not pipelined: the release reads the row count of its update.
        kwargs.pop("tracking")
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                quarantine.lock_exclusive(curs, ref.view, ref.tenant_id)
                quarantine.release(curs, ref)
                self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return []
            with conn.cursor() as curs:
                self._insert_stored_events(curs, stored_events, **kwargs)
                return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs) or []

    def _releasing_at(self, tracking: Tracking | None) -> EventRef | None:
        ref = self._releasing
        return ref if ref is not None and ref.tracking == tracking else None


# Who holds each of a list of emails in a tenant: one probe of (tenant_id, email) per email,
# whatever the tenant's size (ADR 0040). Asked as ``email = ANY(...)``, the planner reads
# every row of the tenant for an import batch's 500 emails.
EMAIL_HOLDERS = (
    "SELECT held.email, held.member_id FROM unnest(%s::text[]) AS wanted(email) "
    "CROSS JOIN LATERAL (SELECT email, member_id FROM training.people "
    "WHERE tenant_id = %s AND email = wanted.email LIMIT 1) AS held"
)

UPSERT_PERSON = (
    "INSERT INTO training.people (member_id, tenant_id, display_name, email, sso_subject, "
    "deactivation_reason, updated_at) VALUES (%s, %s, %s, %s, %s, %s, now()) "
    "ON CONFLICT (member_id) DO UPDATE SET display_name = EXCLUDED.display_name, "
    "email = COALESCE(EXCLUDED.email, people.email), "
    "sso_subject = COALESCE(EXCLUDED.sso_subject, people.sso_subject), "
    "deactivation_reason = COALESCE(EXCLUDED.deactivation_reason, people.deactivation_reason), "
    "updated_at = now()"
)
# A partial change of an existing member (its row exists: it was registered). An erased
# member has no row, and nothing is written for them.
UPDATE_PERSON = (
    "UPDATE training.people SET email = COALESCE(%s, email), "
    "sso_subject = COALESCE(%s, sso_subject), "
    "deactivation_reason = COALESCE(%s, deactivation_reason), updated_at = now() "
    "WHERE member_id = %s"
)
UPSERT_REVIEW_TEXT = (
    "INSERT INTO training.review_texts (review_id, tenant_id, member_id, strengths, "
    "amendment_reasons, updated_at) VALUES (%(review)s, %(tenant)s, %(member)s, "
    "COALESCE(%(strengths)s::text[], '{}'), "
    "CASE WHEN %(reason)s::text IS NULL THEN '{}'::text[] ELSE ARRAY[%(reason)s::text] END, "
    "now()) ON CONFLICT (review_id) DO UPDATE SET "
    "strengths = COALESCE(%(strengths)s::text[], review_texts.strengths), "
    "amendment_reasons = CASE WHEN %(reason)s::text IS NULL THEN review_texts.amendment_reasons "
    "ELSE review_texts.amendment_reasons || %(reason)s::text END, updated_at = now()"
)


INSERT_LEARNING_NOTE = (
    "INSERT INTO training.learning_notes (record_id, version, tenant_id, member_id, "
    "curriculum_id, module_key, note, noted_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now())"
)
INSERT_COHORT_REASON = (
    "INSERT INTO training.cohort_reasons (cohort_id, version, tenant_id, member_id, withdrawn, "
    "reason, given_at) VALUES (%s, %s, %s, %s, %s, %s, now())"
)


# People upserts sent in one round trip at most (an import batch writes 500). In a large
# transaction, sent statement by statement, each is one pipeline of that many statements, far
# below the size that stalls (above).
UPSERTS_PER_ROUND_TRIP = 100
# No tenant set yet in the transaction (None is the platform's scope).
_UNSCOPED = object()


class _PeopleWrites:
    """The tenant a transaction is scoped to, set again only when it changes, and the people
    upserts in a row, sent together (``executemany``, one round trip for many): an import
    batch sent two statements per member, and waited for each."""

    def __init__(self, curs: Cursor[DictRow]) -> None:
        self.curs = curs
        self.scoped: object = _UNSCOPED
        self._upserts: list[tuple[object, ...]] = []

    def scope(self, tenant_id: UUID | None) -> None:
        if tenant_id != self.scoped:
            self.flush()
            scope_to(self.curs, tenant_id)
            self.scoped = tenant_id

    def upsert(self, values: tuple[object, ...]) -> None:
        self._upserts.append(values)
        if len(self._upserts) >= UPSERTS_PER_ROUND_TRIP:
            self.flush()

    def flush(self) -> None:
        if self._upserts:
            self.curs.executemany(UPSERT_PERSON, self._upserts)
            self._upserts = []


class TrainingRecorder(SizedInserts):
    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> None:
        changes: Sequence[PersonalDataChange] = kwargs.get("personal_data", ())
        people = _PeopleWrites(curs)
        for change in changes:
            if isinstance(change, CommandMarker):  # an idempotent request's command outcome
                people.flush()
                record_command_outcome(curs, change)
                people.scoped = _UNSCOPED  # it leaves the transaction unscoped
                continue
            # Row-level security checks every row against the transaction's tenant.
            people.scope(change.tenant_id)
            if isinstance(change, MemberDataChange) and change.data.display_name is not None:
                data = change.data
                people.upsert(
                    (
                        change.member_id,
                        change.tenant_id,
                        data.display_name,
                        data.email,
                        data.sso_subject,
                        data.deactivation_reason,
                    )
                )
                continue
            people.flush()
            if isinstance(change, Erasure):
                curs.execute("SELECT training.erase_member(%s)", (change.member_id,))
            elif isinstance(change, ReviewTextChange):
                curs.execute(
                    UPSERT_REVIEW_TEXT,
                    {
                        "review": change.review_id,
                        "tenant": change.tenant_id,
                        "member": change.member_id,
                        "strengths": list(change.strengths)
                        if change.strengths is not None
                        else None,
                        "reason": change.amendment_reason,
                    },
                )
            elif isinstance(change, LearningNote):
                curs.execute(
                    INSERT_LEARNING_NOTE,
                    (
                        change.record_id,
                        change.version,
                        change.tenant_id,
                        change.member_id,
                        change.curriculum_id,
                        change.module_key,
                        change.note,
                    ),
                )
            elif isinstance(change, CohortReason):
                curs.execute(
                    INSERT_COHORT_REASON,
                    (
                        change.cohort_id,
                        change.version,
                        change.tenant_id,
                        change.member_id,
                        list(change.withdrawn),
                        change.reason,
                    ),
                )
            elif isinstance(change, MemberDataChange):
                data = change.data
                curs.execute(
                    UPDATE_PERSON,
                    (data.email, data.sso_subject, data.deactivation_reason, change.member_id),
                )
            else:
                raise TypeError(f"unknown personal data change {type(change).__name__}")
        people.flush()
        super()._insert_events(curs, stored_events, **kwargs)

    # -- PersonalDataReader: what the command handlers read back

    def email_holders(self, tenant_id: UUID, emails: Collection[str]) -> dict[str, UUID]:
        with self.datastore.get_connection() as conn, conn.transaction():
            scope_to(conn, tenant_id)
            rows = conn.execute(EMAIL_HOLDERS, (list(emails), tenant_id)).fetchall()
        return {str(row["email"]): row["member_id"] for row in rows}

    def review_text(self, tenant_id: UUID, review_id: UUID) -> ReviewText | None:
        with self.datastore.get_connection() as conn, conn.transaction():
            scope_to(conn, tenant_id)
            row = conn.execute(
                "SELECT strengths, amendment_reasons FROM training.review_texts "
                "WHERE review_id = %s",
                (review_id,),
            ).fetchone()
        if row is None:
            return None
        return ReviewText(tuple(row["strengths"]), tuple(row["amendment_reasons"]))
