"""Row-level security backs up the application's tenant checks on every read-model table."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.helpers import system_context
from training.application.tenancy import RegisterApiClient, RegisterTenant
from training.bootstrap import command_bus, training_application
from training.infra.database import Database
from training.projections.registry import PROJECTIONS

CATALOGUE_TABLES = {"curricula", "curriculum_modules"}


def read_model_tables(conn: psycopg.Connection) -> list[str]:
    """Every table in the training schema that holds tenant data (has a tenant_id column)."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.columns "
        "WHERE table_schema = 'training' AND column_name = 'tenant_id' ORDER BY table_name"
    ).fetchall()
    return [str(row[0]) for row in rows]


@pytest.fixture(scope="module")
def two_tenants(database: Database) -> tuple[uuid.UUID, uuid.UUID]:
    from training.projections.rebuild import rebuild

    app = training_application(database)
    bus = command_bus(app)
    try:
        ids = []
        for slug in ("rls-a", "rls-b"):
            tenant = bus.execute(system_context(), RegisterTenant(slug, slug, 5)).result
            bus.execute(
                system_context(), RegisterApiClient(tenant.tenant_id, "c", ("tenant:read",))
            )
            ids.append(tenant.tenant_id)
    finally:
        app.close()
    for spec in PROJECTIONS:
        if not spec.is_policy:
            rebuild(database, spec.name, lambda done, total: None)
    return ids[0], ids[1]


def test_every_read_model_table_has_rls_enabled_and_forced(database: Database) -> None:
    with psycopg.connect(database.admin_url) as conn:
        tables = read_model_tables(conn)
        flags = conn.execute(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE relnamespace = 'training'::regnamespace AND relname = ANY(%s)",
            (tables,),
        ).fetchall()
    assert {"tenants", "api_clients", "idempotency_keys"} <= set(tables)
    assert sorted(flags) == sorted((name, True, True) for name in tables)


def test_without_a_tenant_the_service_role_reads_nothing(
    database: Database, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    with psycopg.connect(database.app_url) as conn:
        for table in read_model_tables(conn):
            count = conn.execute(f"SELECT count(*) FROM training.{table}").fetchone()
            assert count == (0,), table
    with psycopg.connect(database.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM training.tenants").fetchone() == (2,)


def test_a_tenant_sees_only_its_own_rows(
    database: Database, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    mine, theirs = two_tenants
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(mine),))
        for table in read_model_tables(conn):
            rows = conn.execute(f"SELECT DISTINCT tenant_id FROM training.{table}").fetchall()
            # The platform catalogue (tenant_id NULL) is shared with every tenant, read-only.
            shared = {(None,)} if table in CATALOGUE_TABLES else set()
            assert set(rows) <= {(mine,)} | shared, table
        assert conn.execute("SELECT count(*) FROM training.tenants").fetchone() == (1,)
        assert conn.execute(
            "SELECT count(*) FROM training.api_clients WHERE tenant_id = %s", (theirs,)
        ).fetchone() == (0,)


def test_a_tenant_cannot_write_another_tenants_rows(
    database: Database, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    mine, theirs = two_tenants
    with psycopg.connect(database.app_url) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(mine),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO training.idempotency_keys (tenant_id, principal, key, request_hash) "
                "VALUES (%s, 'client:x', 'k', 'h')",
                (theirs,),
            )
        conn.rollback()
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(mine),))
            changed = conn.execute(
                "UPDATE training.tenants SET name = 'hijacked' WHERE tenant_id = %s", (theirs,)
            )
            assert changed.rowcount == 0


def test_the_setting_does_not_outlive_its_transaction(
    database: Database, two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    mine, _ = two_tenants
    with psycopg.connect(database.app_url) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(mine),))
            assert conn.execute("SELECT count(*) FROM training.tenants").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM training.tenants").fetchone() == (0,)
