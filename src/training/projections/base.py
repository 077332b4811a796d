"""What every read-model view shares: one transaction for its rows and its position.

A view method receives the event's tenant and a function that writes rows. It opens one
transaction, scopes it to that tenant (row-level security checks every row written), records
the tracking position (which refuses a position already processed) and writes the rows. A
crash anywhere rolls back both, so a replayed event is neither lost nor applied twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Cursor

Writer = Callable[[Cursor[Any]], None]


def scope_transaction(cursor: Cursor[Any], tenant_id: UUID | None) -> None:
    """Scopes the current transaction to a tenant, or to the platform when ``tenant_id`` is None."""
    if tenant_id is None:
        cursor.execute("SELECT set_config('app.platform', 'on', true)")
    else:
        cursor.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))


class TenantScopedView(PostgresTrackingRecorder):
    """Base class of the read-model views. Tables come from ``migrations/``."""

    # Read-model tables the view writes; ``projections rebuild`` empties them.
    tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)

    def write(self, tracking: Tracking, tenant_id: UUID | None, writer: Writer) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            scope_transaction(cursor, tenant_id)
            self._insert_tracking(cursor, tracking)
            writer(cursor)
