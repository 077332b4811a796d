"""Read model of tenants and API clients, and the queries over it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import AsyncConnection, Cursor
from psycopg.rows import class_row

from training.core.pagination import TEXT, TIMESTAMP, Page, decode_cursor, page_of
from training.core.views import ProjectionSpec, TenantScopedView, rows_as_json
from training.tenancy.domain import ApiClient, Tenant


class TenantRecord(msgspec.Struct, kw_only=True):
    tenant_id: UUID
    slug: str
    name: str
    seat_limit: int
    status: str
    suspended_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class ApiClientRecord(msgspec.Struct, kw_only=True):
    client_id: str
    tenant_id: UUID | None
    name: str
    scopes: list[str]
    status: str
    version: int
    created_at: datetime
    revoked_at: datetime | None


class TenantRow(msgspec.Struct):
    tenant_id: UUID
    slug: str
    name: str
    seat_limit: int
    version: int
    created_at: datetime


INSERT_TENANTS = (
    "INSERT INTO training.tenants (tenant_id, slug, name, seat_limit, status, version, "
    "created_at, updated_at) SELECT tenant_id, slug, name, seat_limit, 'active', version, "
    "created_at, created_at FROM jsonb_to_recordset(%s::jsonb) AS r(tenant_id uuid, slug text, "
    "name text, seat_limit int, version int, created_at timestamptz)"
)


class TenancyView(TenantScopedView):
    tables = ("training.tenants", "training.api_clients")

    def insert_tenant(self, e: Tenant.Registered, tracking: Tracking) -> None:
        """Registering a tenant is the platform's act, and its row is written in the
        platform's scope: a batch's run of registrations, each of another tenant, then goes
        in with one statement (ADR 0041) instead of a change of scope and an insert each."""
        row = TenantRow(
            tenant_id=e.originator_id,
            slug=e.slug,
            name=e.name,
            seat_limit=e.seat_limit,
            version=e.originator_version,
            created_at=e.timestamp,
        )
        self.write_together(tracking, None, row)

    def write_items(self, cursor: Cursor[Any], items: Sequence[Any]) -> None:
        cursor.execute(INSERT_TENANTS, (rows_as_json(items),))

    def update_tenant(self, e: Tenant.Event, tracking: Tracking, changes: dict[str, Any]) -> None:
        # Column names come from this module only, never from input.
        assignments = "".join(f", {column} = %({column})s" for column in changes)

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.tenants SET version = %(version)s, updated_at = %(at)s"
                f"{assignments} WHERE tenant_id = %(id)s",
                {
                    "version": e.originator_version,
                    "at": e.timestamp,
                    "id": e.originator_id,
                    **changes,
                },
            )

        self.write(tracking, e.originator_id, rows)

    def insert_client(self, e: ApiClient.Registered, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.api_clients (client_id, aggregate_id, tenant_id, name, "
                "scopes, status, version, created_at) "
                "VALUES (%s, %s, %s, %s, %s, 'active', %s, %s)",
                (
                    e.client_id,
                    e.originator_id,
                    e.tenant_id,
                    e.name,
                    list(e.scopes),
                    e.originator_version,
                    e.timestamp,
                ),
            )

        self.write(tracking, e.tenant_id, rows)

    def revoke_client(self, e: ApiClient.Revoked, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.api_clients SET status = 'revoked', revoked_at = %s, "
                "version = %s WHERE aggregate_id = %s",
                (e.timestamp, e.originator_version, e.originator_id),
            )

        self.write(tracking, e.tenant_id, rows)


class TenancyProjection(Projection[TenancyView]):
    name = "tenancy"
    topics = tuple(
        get_topic(cls)
        for cls in (
            Tenant.Registered,
            Tenant.Renamed,
            Tenant.SeatLimitChanged,
            Tenant.Suspended,
            Tenant.Reactivated,
            ApiClient.Registered,
            ApiClient.Revoked,
        )
    )

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, e: Tenant.Registered, tracking: Tracking) -> None:
        self.view.insert_tenant(e, tracking)

    @process_event.register
    def _(self, e: Tenant.Renamed, tracking: Tracking) -> None:
        self.view.update_tenant(e, tracking, {"name": e.name})

    @process_event.register
    def _(self, e: Tenant.SeatLimitChanged, tracking: Tracking) -> None:
        self.view.update_tenant(e, tracking, {"seat_limit": e.seat_limit})

    @process_event.register
    def _(self, e: Tenant.Suspended, tracking: Tracking) -> None:
        self.view.update_tenant(e, tracking, {"status": "suspended", "suspended_reason": e.reason})

    @process_event.register
    def _(self, e: Tenant.Reactivated, tracking: Tracking) -> None:
        self.view.update_tenant(e, tracking, {"status": "active", "suspended_reason": None})

    @process_event.register
    def _(self, e: ApiClient.Registered, tracking: Tracking) -> None:
        self.view.insert_client(e, tracking)

    @process_event.register
    def _(self, e: ApiClient.Revoked, tracking: Tracking) -> None:
        self.view.revoke_client(e, tracking)


# Queries. Each runs inside a transaction already scoped to a tenant or to the platform
# (see ReadStore.session), so row-level security does the tenant filtering.

TENANT_COLUMNS = (
    "tenant_id, slug, name, seat_limit, status, suspended_reason, version, created_at, updated_at"
)
CLIENT_COLUMNS = "client_id, tenant_id, name, scopes, status, version, created_at, revoked_at"


async def get_tenant(conn: AsyncConnection[Any], tenant_id: UUID) -> TenantRecord | None:
    async with conn.cursor(row_factory=class_row(TenantRecord)) as cur:
        await cur.execute(
            f"SELECT {TENANT_COLUMNS} FROM training.tenants WHERE tenant_id = %s", (tenant_id,)
        )
        return await cur.fetchone()


async def list_tenants(
    conn: AsyncConnection[Any], *, limit: int, cursor: str | None, status: str | None = None
) -> Page[TenantRecord]:
    after = decode_cursor(cursor, TEXT) if cursor else None
    async with conn.cursor(row_factory=class_row(TenantRecord)) as cur:
        await cur.execute(
            f"SELECT {TENANT_COLUMNS} FROM training.tenants "
            "WHERE (%(after)s::text IS NULL OR slug > %(after)s) "
            "AND (%(status)s::text IS NULL OR status = %(status)s) "
            "ORDER BY slug LIMIT %(limit)s",
            {"after": after[0] if after else None, "status": status, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.slug])


async def list_clients(
    conn: AsyncConnection[Any], tenant_id: UUID, *, limit: int, cursor: str | None
) -> Page[ApiClientRecord]:
    after = decode_cursor(cursor, TIMESTAMP, TEXT) if cursor else None
    async with conn.cursor(row_factory=class_row(ApiClientRecord)) as cur:
        await cur.execute(
            f"SELECT {CLIENT_COLUMNS} FROM training.api_clients WHERE tenant_id = %(tenant)s "
            "AND (%(after_at)s::timestamptz IS NULL "
            "     OR (created_at, client_id) > (%(after_at)s::timestamptz, %(after_id)s)) "
            "ORDER BY created_at, client_id LIMIT %(limit)s",
            {
                "tenant": tenant_id,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.created_at.isoformat(), r.client_id])


# The read model as the runners and read-your-writes know it.
TENANCY = ProjectionSpec(TenancyProjection, TenancyView)
