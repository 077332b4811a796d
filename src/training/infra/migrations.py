"""Applies the numbered SQL files in ``migrations/`` exactly once each.

A session-level advisory lock serialises concurrent runs (several processes starting at
once). Each file runs in its own transaction and is recorded with its SHA-256; a recorded
file whose content changed afterwards stops the run, because the database no longer matches
what the file says.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

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
