"""Migrations: once each, under a lock, checksummed; the roles they create."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from tests.conftest import drop_database, fresh_database
from training.infra.database import Database
from training.infra.migrations import MIGRATIONS_DIR, MigrationError, migrate


def test_a_second_run_applies_nothing(database: Database) -> None:
    assert migrate(database.admin_url) == []


def test_parallel_runs_apply_each_file_once(admin_server_url: str, tmp_path: Path) -> None:
    # An empty database (no template): both runners race for the same pending files.
    from training.infra.database import app_url_for, create_database, with_dbname

    create_database(admin_server_url, "training_parallel")
    url = with_dbname(admin_server_url, "training_parallel")
    database = Database(url, app_url_for(url, None))
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(url))
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    try:
        threads = [threading.Thread(target=run) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        applied = sorted(name for result in results for name in result)
        assert applied == sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT filename FROM public.training_migrations").fetchall()
        assert len(rows) == len(applied)
    finally:
        drop_database(admin_server_url, database)


def test_an_edited_applied_file_stops_the_run(database: Database, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    first = sorted(copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(database.admin_url, directory=copy)


def test_the_service_role_cannot_bypass_rls_and_owns_nothing(database: Database) -> None:
    with psycopg.connect(database.admin_url) as conn:
        role = conn.execute(
            "SELECT rolbypassrls, rolsuper, rolcanlogin FROM pg_roles "
            "WHERE rolname = 'training_app'"
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = 'training_app'"
        ).fetchone()
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'training'"
        ).fetchall()
    assert role == (False, False, True)
    assert owned == (0,)
    assert owners == [("training_owner",)]


def test_stored_events_cannot_be_changed(database: Database) -> None:
    with psycopg.connect(database.app_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE training.training_events SET topic = 'x'")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM training.training_events")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE training.training_events")


def test_a_template_copy_is_independent(admin_server_url: str, template_db: str) -> None:
    other = fresh_database(admin_server_url, template_db)
    try:
        assert migrate(other.admin_url) == []
    finally:
        drop_database(admin_server_url, other)
