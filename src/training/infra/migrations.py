"""Applies the numbered SQL files in ``migrations/`` exactly once each, then one-time data steps.

A session-level advisory lock serialises concurrent runs (several processes starting at
once). Each file runs in its own transaction and is recorded with its SHA-256; a recorded
file whose content changed afterwards stops the run, because the database no longer matches
what the file says.

A data step (bringing data stored before a change up to date, through the domain or in the
stored rows) runs once per database with ``run_once``: under the same lock, so a second
process starting meanwhile waits for it, and recorded by name with what it did in
``public.training_data_migrations``. ``training migrate`` (and ``serve``, which migrates
first) runs them after the files: nothing is left to an operator's hand.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from training.infra.database import APP_ROLE

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"
FILE_PATTERN = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
LOCK_KEY = 0x7472_6169  # "trai": one constant for every migrator of this service

LEDGER = """
CREATE TABLE IF NOT EXISTS public.training_migrations (
    filename text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
DATA_LEDGER = """
CREATE TABLE IF NOT EXISTS public.training_data_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    report jsonb NOT NULL
)
"""
DataReport = Mapping[str, int]


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class MigrationFile:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[MigrationFile]:
    files = sorted(p for p in directory.glob("*.sql"))
    for path in files:
        if not FILE_PATTERN.match(path.name):
            msg = f"{path.name}: migration files are named NNNN_lower_case.sql"
            raise MigrationError(msg)
    numbers = [p.name[:4] for p in files]
    if len(set(numbers)) != len(numbers):
        msg = "two migration files share a number"
        raise MigrationError(msg)
    return [MigrationFile(p) for p in files]


def applied_migrations(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT filename, checksum FROM public.training_migrations").fetchall()
    return {str(name): str(checksum) for name, checksum in rows}


def unapplied_migrations(applied: dict[str, str], directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Files not yet applied, given the ledger; raises when an applied file was edited."""
    return [m.name for m in _check(migration_files(directory), applied)]


def _check(files: list[MigrationFile], applied: dict[str, str]) -> list[MigrationFile]:
    for migration in files:
        recorded = applied.get(migration.name)
        if recorded is not None and recorded != migration.checksum:
            msg = (
                f"{migration.name} was edited after it was applied; add a new migration "
                "instead of changing an applied one"
            )
            raise MigrationError(msg)
    return [m for m in files if m.name not in applied]


def migrate(
    admin_url: str,
    *,
    app_password: str | None = None,
    directory: Path = MIGRATIONS_DIR,
) -> list[str]:
    """Applies pending files and returns their names."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(LEDGER)
            conn.execute(DATA_LEDGER)
            pending = _check(migration_files(directory), applied_migrations(conn))
            for migration in pending:
                with conn.transaction():
                    conn.execute(migration.path.read_text().encode())
                    conn.execute("RESET ROLE")  # files act as the owner; the ledger is ours
                    conn.execute(
                        "INSERT INTO public.training_migrations (filename, checksum) "
                        "VALUES (%s, %s)",
                        (migration.name, migration.checksum),
                    )
            # The running service reads the ledger to report readiness.
            conn.execute(
                sql.SQL("GRANT SELECT ON public.training_migrations TO {}").format(
                    sql.Identifier(APP_ROLE)
                )
            )
            if app_password:
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(APP_ROLE), sql.Literal(app_password)
                    )
                )
            return [m.name for m in pending]
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def data_step_done(admin_url: str, name: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return _done(conn, name)


def _done(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM public.training_data_migrations WHERE name = %s", (name,)
    ).fetchone()
    return row is not None


def run_once(admin_url: str, name: str, step: Callable[[], DataReport]) -> DataReport | None:
    """Runs the data step ``name`` unless the ledger records it, and records it with what it
    did; None when it was done before (by this process or another). A step that fails is not
    recorded and runs again at the next start: every step is idempotent."""
    if data_step_done(admin_url, name):  # every start after the first: no lock taken
        return None
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(DATA_LEDGER)
            if _done(conn, name):
                return None
            report = dict(step())
            conn.execute(
                "INSERT INTO public.training_data_migrations (name, report) VALUES (%s, %s)",
                (name, Jsonb(report)),
            )
            return report
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
