"""The one way a transaction is scoped to a tenant (or to the platform) for row-level security.

Every read-model and personal-data table has a policy that compares its rows' tenant with the
transaction's ``app.tenant_id`` setting, or lets ``app.platform`` sessions see only the
platform's own rows (ADR 0023). Both settings are transaction-local (``set_config(...,
true)``), so they never leak to the next borrower of a pooled connection, and each scope clears
the other setting, so a transaction shared by several writes holds one scope at a time.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Connection, Cursor

SCOPE = "SELECT set_config('app.tenant_id', %s, true), set_config('app.platform', %s, true)"


def _parameters(tenant_id: UUID | None) -> tuple[str, str]:
    return ("", "on") if tenant_id is None else (str(tenant_id), "")


def scope_to(target: Connection[Any] | Cursor[Any], tenant_id: UUID | None) -> None:
    """Scopes the current transaction to ``tenant_id``, or to the platform when None."""
    target.execute(SCOPE, _parameters(tenant_id))


async def scope_to_async(conn: AsyncConnection[Any], tenant_id: UUID | None) -> None:
    """``scope_to`` for an asynchronous connection."""
    await conn.execute(SCOPE, _parameters(tenant_id))


def leave_scope(target: Connection[Any] | Cursor[Any]) -> None:
    """Clears both settings: what follows in the transaction sees no tenant's rows."""
    target.execute(SCOPE, ("", ""))
