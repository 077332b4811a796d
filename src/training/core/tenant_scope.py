"""The one way a transaction is scoped to a tenant (or to the platform) for row-level security.

Every read-model and personal-data table has a policy that compares its rows' tenant with the
transaction's ``app.tenant_id`` setting, or lets ``app.platform`` sessions see only the
platform's own rows (ADR 0023). Both settings are transaction-local (``set_config(...,
true)``), so they never leak to the next borrower of a pooled connection, and each scope clears
the other setting, so a transaction shared by several writes holds one scope at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Connection, Cursor
from psycopg_pool import AsyncConnectionPool, ConnectionPool

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


@contextmanager
def tenant_transaction(
    pool: ConnectionPool[Any], tenant_id: UUID | None
) -> Iterator[Connection[Any]]:
    """A transaction on a pooled connection, scoped to ``tenant_id`` (the platform when None)."""
    with pool.connection() as conn, conn.transaction():
        scope_to(conn, tenant_id)
        yield conn


@asynccontextmanager
async def tenant_transaction_async(
    pool: AsyncConnectionPool[Any], tenant_id: UUID | None, *, read_only: bool = False
) -> AsyncIterator[AsyncConnection[Any]]:
    """``tenant_transaction`` on an asynchronous pool; ``read_only`` for the queries."""
    async with pool.connection() as conn, conn.transaction():
        if read_only:
            await conn.execute("SET TRANSACTION READ ONLY")
        await scope_to_async(conn, tenant_id)
        yield conn
