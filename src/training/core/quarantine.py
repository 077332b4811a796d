"""Events a view cannot apply are set aside, so one tenant's bad data stops nobody else.

When applying an event raises (anything but a lost connection or another transient database
error), the runner records the event's position together with a row in
``training.projection_quarantine``, in one transaction, and goes on. The (view, tenant) is then
degraded: the tenant's later events for that view are parked in the same table, in order,
because they may build on the one that failed. Other tenants' events are applied as usual:
each view transaction is scoped to one tenant by row-level security, so a tenant's rows only
ever depend on that tenant's own events (and the platform's events on the platform's). The
planning process is the exception: the platform catalogue feeds every tenant's plans, so a
platform event it cannot apply holds every tenant's events (``platform_holds_all``).

``training projections retry`` re-applies the held events in the order of the log once the data
or the code is fixed; a tenant is healthy again when none is left. A runner and a retry may
run at the same time: each retry step and each parking take a transaction-level advisory lock
on the (view, tenant), exclusive and shared, so a tenant is never parked and released at once,
and its events are applied in their order.

A row belongs to its tenant (migration 0026): it is written and read in transactions scoped to
that tenant, the platform's own rows in platform-scoped ones, and what crosses tenants (the
operator's commands, ``/readyz``) reads it as the worker role (ADR 0023), which sees the
positions and ids of what is held, never an error's text.

What is recorded is never a row value: a database error is described by its SQLSTATE and the
names of the table, constraint and column involved (its detail quotes the offending row),
any other error by its type and where it was raised.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import psycopg
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg_pool import PoolTimeout

from training.core.tenant_scope import scope_to

log = structlog.get_logger(__name__)

Outcome = Literal["applied", "parked", "quarantined"]

# Connection loss, deadlocks and serialization failures, lack of resources, an operator's
# cancel or shutdown, internal errors: the same event may well apply on the next attempt, so
# the runner is restarted instead (it resumes from its tracked position).
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58", "XX"})
TRANSIENT_SQLSTATES = frozenset({"55P03"})  # lock_not_available

LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtext(%s), hashtext(%s))"
LOCK_EXCLUSIVE = "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))"

COLUMNS = (
    "view_name, notification_id, upstream, tenant_id, topic, originator_id, originator_version"
)
# A row resolved by a rebuild is quarantined afresh when the replay meets the event again.
RECORD = (
    f"INSERT INTO training.projection_quarantine ({COLUMNS}, status, error_type, "
    "error_message, attempts, last_attempt_at) VALUES (%(view)s, %(notification_id)s, "
    "%(upstream)s, %(tenant)s, %(topic)s, %(originator_id)s, %(originator_version)s, "
    "%(status)s, %(error_type)s, %(error_message)s, %(attempts)s, %(attempted_at)s) "
    "ON CONFLICT (view_name, notification_id) DO UPDATE SET upstream = EXCLUDED.upstream, "
    "tenant_id = EXCLUDED.tenant_id, topic = EXCLUDED.topic, "
    "originator_id = EXCLUDED.originator_id, originator_version = EXCLUDED.originator_version, "
    "status = EXCLUDED.status, error_type = EXCLUDED.error_type, "
    "error_message = EXCLUDED.error_message, "
    "attempts = training.projection_quarantine.attempts + EXCLUDED.attempts, "
    "quarantined_at = now(), last_attempt_at = EXCLUDED.last_attempt_at, "
    "resolved_at = NULL, resolution = NULL"
)
UNRESOLVED_OF_TENANT = (
    "FROM training.projection_quarantine WHERE view_name = %s "
    "AND tenant_id IS NOT DISTINCT FROM %s AND resolved_at IS NULL"
)


@dataclass(frozen=True)
class EventRef:
    """Which event of which view and tenant: what the quarantine keeps (never its payload)."""

    view: str
    notification_id: int
    upstream: str
    tenant_id: UUID | None
    topic: str
    originator_id: UUID
    originator_version: int

    @classmethod
    def of(cls, view: str, event: Any, tracking: Tracking) -> EventRef:
        return cls(
            view=view,
            notification_id=tracking.notification_id,
            upstream=tracking.application_name,
            # Every event of the service carries its tenant (None: the platform's own).
            tenant_id=getattr(event, "tenant_id", None),
            topic=get_topic(type(event)),
            originator_id=event.originator_id,
            originator_version=event.originator_version,
        )

    @property
    def tracking(self) -> Tracking:
        return Tracking(self.upstream, self.notification_id)

    def params(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "notification_id": self.notification_id,
            "upstream": self.upstream,
            "tenant": self.tenant_id,
            "topic": self.topic,
            "originator_id": self.originator_id,
            "originator_version": self.originator_version,
        }


@dataclass(frozen=True)
class Failure:
    """Why an event could not be applied, in words that quote no data."""

    error_type: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        database_error = next(
            (e for e in _chain(error) if isinstance(e, psycopg.Error) and e.sqlstate), None
        )
        if isinstance(database_error, psycopg.Error):
            return cls(_qualified(database_error), _database_message(database_error))
        frames = traceback.extract_tb(error.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name}"
        return cls(_qualified(error), f"{type(error).__name__} raised{where if frames else ''}")

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _qualified(error: BaseException) -> str:
    kind = type(error)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _database_message(error: psycopg.Error) -> str:
    # The primary message may quote a value (22P02 does) and the detail quotes the row: only
    # the SQLSTATE and the names of what was involved are kept.
    diag = error.diag
    parts = [f"SQLSTATE {error.sqlstate}"]
    if diag.table_name:
        parts.append(
            f"table {diag.schema_name}.{diag.table_name}"
            if diag.schema_name
            else f"table {diag.table_name}"
        )
    if diag.constraint_name:
        parts.append(f"constraint {diag.constraint_name}")
    if diag.column_name:
        parts.append(f"column {diag.column_name}")
    if diag.datatype_name:
        parts.append(f"type {diag.datatype_name}")
    return ", ".join(parts)


def is_transient(error: BaseException) -> bool:
    """Whether the same event may apply on a later attempt (then the runner restarts)."""
    if isinstance(error, MemoryError):
        return True
    for cause in _chain(error):
        if isinstance(cause, PoolTimeout):
            return True
        if isinstance(cause, psycopg.Error):
            state = cause.sqlstate
            if state is None:
                return isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError)
            return state[:2] in TRANSIENT_SQLSTATE_CLASSES or state in TRANSIENT_SQLSTATES
    return isinstance(error, OperationalError | InterfaceError)


def _lock_key(view: str, tenant_id: UUID | None) -> tuple[str, str]:
    return f"training-quarantine:{view}", str(tenant_id) if tenant_id else "platform"


def lock_shared(cursor: Cursor[Any], view: str, tenant_id: UUID | None) -> None:
    cursor.execute(LOCK_SHARED, _lock_key(view, tenant_id))


def lock_exclusive(cursor: Cursor[Any], view: str, tenant_id: UUID | None) -> None:
    cursor.execute(LOCK_EXCLUSIVE, _lock_key(view, tenant_id))


def release(cursor: Cursor[Any], ref: EventRef) -> None:
    """Marks ``ref`` applied, in the transaction that wrote its rows (scoped to its tenant, as
    they are). ``cursor`` must not be pipelined: the row count says whether it still was held."""
    scope_to(cursor, ref.tenant_id)
    cursor.execute(
        "UPDATE training.projection_quarantine SET resolved_at = now(), resolution = 'retried', "
        "last_attempt_at = now() WHERE view_name = %s AND notification_id = %s "
        "AND resolved_at IS NULL",
        (ref.view, ref.notification_id),
    )
    if cursor.rowcount != 1:
        msg = f"event {ref.notification_id} of the {ref.view} view is no longer quarantined"
        raise QuarantineChanged(msg)


class QuarantineChanged(RuntimeError):
    """Another process resolved the event meanwhile (only a rebuild can)."""


def _holds(cursor: Cursor[DictRow], view: str, tenant_id: UUID | None) -> bool:
    """Whether ``tenant_id`` has unresolved rows in ``view`` (scopes the transaction to it)."""
    scope_to(cursor, tenant_id)
    cursor.execute(f"SELECT EXISTS (SELECT 1 {UNRESOLVED_OF_TENANT}) AS held", (view, tenant_id))
    row = cursor.fetchone()
    return bool(row and row["held"])


class Quarantine:
    """One runner's quarantine of one view: applies, parks or quarantines each event.

    Only the runner of a view (one cluster-wide, by advisory lock) makes a tenant degraded,
    so once it knows a tenant is not held, that stays true; it asks the first time it meets a
    tenant (a transaction scoped to it: no cross-tenant read), and a held tenant again under
    the lock before each of its events, since ``projections retry`` may have released it.

    ``platform_holds_all``: the platform's held events hold every tenant's too (the planning
    process, whose tenants plan with the platform catalogue). ``transient``: which errors
    restart the runner instead of quarantining the event.
    """

    def __init__(
        self,
        view: str,
        recorder: PostgresTrackingRecorder,
        *,
        platform_holds_all: bool = False,
        transient: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self.view = view
        self.recorder = recorder
        self.platform_holds_all = platform_holds_all
        self.transient = transient or is_transient
        self.held: set[UUID | None] = set()
        self.healthy: set[UUID | None] = set()

    def scopes(self, tenant_id: UUID | None) -> tuple[UUID | None, ...]:
        """The scopes whose held events hold ``tenant_id``'s: its own, and maybe the platform."""
        if self.platform_holds_all and tenant_id is not None:
            return (None, tenant_id)
        return (tenant_id,)

    def apply(
        self, event: Any, tracking: Tracking, process: Callable[[Any, Tracking], None]
    ) -> Outcome:
        ref = EventRef.of(self.view, event, tracking)
        if self._may_hold(ref.tenant_id) and self._park(ref):
            return "parked"
        try:
            process(event, tracking)
        except Exception as error:
            if self.transient(error):
                raise
            self._quarantine(ref, Failure.of(error))
            return "quarantined"
        return "applied"

    def may_hold_any(self, events: Iterable[Any]) -> bool:
        """Whether a scope that held events may hold one of ``events`` (then each goes
        through ``apply``, one at a time)."""
        tenants = {getattr(event, "tenant_id", None) for event in events}
        return any(self._may_hold(tenant_id) for tenant_id in tenants)

    def _may_hold(self, tenant_id: UUID | None) -> bool:
        scopes = self.scopes(tenant_id)
        unknown = [s for s in scopes if s not in self.held and s not in self.healthy]
        if unknown:
            with self.recorder.datastore.transaction(commit=False) as cursor:
                for s in unknown:
                    (self.held if _holds(cursor, self.view, s) else self.healthy).add(s)
        return any(s in self.held for s in scopes)

    def _park(self, ref: EventRef) -> bool:
        """Parks ``ref`` if a scope that holds it still does (a retry may have released it)."""
        with self.recorder.datastore.transaction(commit=True) as cursor:
            holding = False
            for s in self.scopes(ref.tenant_id):
                if s not in self.held:
                    continue
                lock_shared(cursor, self.view, s)
                if _holds(cursor, self.view, s):
                    holding = True
                else:
                    self.held.discard(s)
                    self.healthy.add(s)
            if not holding:
                return False
            scope_to(cursor, ref.tenant_id)
            self.recorder._insert_tracking(cursor, ref.tracking)
            _record(cursor, ref, "parked", None)
        # Parked: the tenant holds itself from now on, whatever held it.
        self.held.add(ref.tenant_id)
        self.healthy.discard(ref.tenant_id)
        log.info(
            "projection.event_parked",
            projection=self.view,
            tenant_id=tenant_text(ref.tenant_id),
            notification_id=ref.notification_id,
            topic=ref.topic,
        )
        return True

    def _quarantine(self, ref: EventRef, failure: Failure) -> None:
        # The position and the record commit together: a crash before the commit replays the
        # event (and quarantines it again), a crash after it resumes with the next one.
        with self.recorder.datastore.transaction(commit=True) as cursor:
            scope_to(cursor, ref.tenant_id)
            lock_shared(cursor, self.view, ref.tenant_id)
            self.recorder._insert_tracking(cursor, ref.tracking)
            _record(cursor, ref, "failed", failure)
        self.held.add(ref.tenant_id)
        self.healthy.discard(ref.tenant_id)
        alert(ref, failure)


def alert(ref: EventRef, failure: Failure) -> None:
    log.error(
        "projection.event_quarantined",
        projection=ref.view,
        tenant_id=tenant_text(ref.tenant_id),
        notification_id=ref.notification_id,
        topic=ref.topic,
        originator_id=str(ref.originator_id),
        originator_version=ref.originator_version,
        error_type=failure.error_type,
        error=failure.message,
        action=f"fix the cause, then run `training projections retry {ref.view}`",
    )


def tenant_text(tenant_id: UUID | None) -> str:
    return str(tenant_id) if tenant_id else "platform"


def _record(
    cursor: Cursor[DictRow] | Cursor[Any],
    ref: EventRef,
    status: Literal["failed", "parked"],
    failure: Failure | None,
) -> None:
    cursor.execute(
        RECORD,
        {
            **ref.params(),
            "status": status,
            "error_type": failure.error_type if failure else None,
            "error_message": failure.message if failure else None,
            "attempts": 1 if failure else 0,
            "attempted_at": datetime.now().astimezone() if failure else None,
        },
    )


# -- what the operator's commands and /readyz read --------------------------------------------
#
# ``worker`` connections log in as the worker role (``Database.worker_url``): they see the held
# rows of every tenant, without their errors' text. What changes a row does so as the app role,
# in a transaction scoped to the row's tenant.
