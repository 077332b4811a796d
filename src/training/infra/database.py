"""Where the database is: an embedded PostgreSQL (pgserver) or the server in DATABASE_URL.

The migrator connects with the admin URL; everything that runs connects as ``training_app``,
the role without BYPASSRLS that owns nothing. The few background jobs that must cross
tenants (claiming queued reports, finding unfinished imports, purging expired idempotency
records) connect as ``training_worker``, a role of their own whose policies show each job only
what it needs; no connection of an API request uses it.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from training.infra.settings import Settings

APP_ROLE = "training_app"
WORKER_ROLE = "training_worker"
OWNER_ROLE = "training_owner"
SCHEMA = "training"
EMBEDDED_DB_NAME = "training"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Database:
    admin_url: str
    app_url: str
    # The background jobs' login; by default the app's server and database as the worker role.
    worker_url: str = ""

    def __post_init__(self) -> None:
        if not self.worker_url:
            object.__setattr__(self, "worker_url", login_url(self.app_url, WORKER_ROLE, None))

    def app_params(self) -> dict[str, Any]:
        return conninfo_to_dict(self.app_url)

    def eventsourcing_env(self, *, pool_size: int, max_overflow: int) -> dict[str, str]:
        """Settings for eventsourcing's Postgres recorders, connecting as the app role."""
        params = self.app_params()
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": str(params.get("dbname", "")),
            "POSTGRES_HOST": str(params.get("host", "")),
            "POSTGRES_PORT": str(params.get("port", "5432")),
            "POSTGRES_USER": str(params.get("user", APP_ROLE)),
            "POSTGRES_PASSWORD": str(params.get("password", "")),
            "POSTGRES_SCHEMA": SCHEMA,
            "POSTGRES_POOL_SIZE": str(pool_size),
            "POSTGRES_MAX_OVERFLOW": str(max_overflow),
            # A short wait for a pooled connection: the library retries it ten times.
            "POSTGRES_CONNECT_TIMEOUT": "5",
            # No ping before each use of a pooled connection: it cost a round trip per query
            # (16 % of the API process's samples under load). The recorders retry a query
            # whose connection turns out to be dead, and the pool recycles old connections.
            "POSTGRES_PRE_PING": "n",
            # Tables come from migrations only (parallel start-ups race on DDL otherwise).
            "CREATE_TABLE": "n",
        }


def login_url(url: str, role: str, password: str | None) -> str:
    """``url``'s server and database, logging in as ``role``."""
    params: dict[str, Any] = conninfo_to_dict(url)
    params["user"] = role
    params.pop("password", None)
    if password:
        params["password"] = password
    return make_conninfo("", **params)


def app_url_for(admin_url: str, password: str | None) -> str:
    return login_url(admin_url, APP_ROLE, password)


def worker_url_for(url: str, password: str | None = None) -> str:
    return login_url(url, WORKER_ROLE, password)


def set_login_password(admin_url: str, role: str, password: str | None) -> None:
    """Gives a login role its password on an external server (nothing to do without one)."""
    if not password:
        return
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )


def with_dbname(url: str, dbname: str) -> str:
    params: dict[str, Any] = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def create_database(admin_url: str, name: str, *, template: str | None = None) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)


class EmbeddedPostgres:
    """A pgserver instance whose data lives in ``data_dir``; it stops when this process exits."""

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; it is harmless.
            warnings.simplefilter("ignore")
            import pgserver  # imported lazily: only the embedded mode needs it

        data_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("pgserver").setLevel(logging.WARNING)  # its info lines are noise
        self.server = pgserver.get_server(data_dir, cleanup_mode="stop")

    @property
    def admin_url(self) -> str:
        return str(self.server.get_uri())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.cleanup()


@contextlib.contextmanager
def database_for(settings: Settings) -> Iterator[Database]:
    """The configured database, starting the embedded one when no DATABASE_URL is set."""
    if settings.database_url:
        yield Database(
            admin_url=settings.database_url,
            app_url=app_url_for(settings.database_url, settings.app_db_password),
            worker_url=worker_url_for(settings.database_url, settings.worker_db_password),
        )
        return
    embedded = EmbeddedPostgres(settings.data_dir / "pg")
    try:
        create_database(embedded.admin_url, EMBEDDED_DB_NAME)
        admin_url = with_dbname(embedded.admin_url, EMBEDDED_DB_NAME)
        yield Database(admin_url=admin_url, app_url=app_url_for(admin_url, None))
    finally:
        embedded.stop()
