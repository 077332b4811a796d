"""Where the database is: an embedded PostgreSQL (pgserver) or the server in DATABASE_URL.

The migrator connects with the admin URL; everything that runs connects as ``training_app``,
the role without BYPASSRLS that owns nothing. The few background jobs that must cross
tenants (claiming queued reports, finding unfinished imports, purging expired idempotency
records) connect as ``training_worker``, a role of their own whose policies show each job only
what it needs; no connection of an API request uses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from training.infra.server_log import keep_row_values_out_of_the_log
from training.infra.settings import Settings

APP_ROLE = "training_app"
WORKER_ROLE = "training_worker"
OWNER_ROLE = "training_owner"
SCHEMA = "training"
EMBEDDED_DB_NAME = "training"
# How long a stop waits for the embedded server's clean shutdown.
STOP_TIMEOUT = 60.0
# PostgreSQL's default (100) holds one ``serve`` process (about 70 connections: ADR 0037),
# not two, nor a ``serve`` and a ``worker``.
EMBEDDED_MAX_CONNECTIONS = 300

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Database:
    admin_url: str
    app_url: str
    # The background jobs' login; by default the app's server and database as the worker role.
    worker_url: str = ""
    # Where queries read: the app's login on a streaming replica; by default the primary.
    read_url: str = ""

    def __post_init__(self) -> None:
        if not self.worker_url:
            object.__setattr__(self, "worker_url", login_url(self.app_url, WORKER_ROLE, None))
        if not self.read_url:
            object.__setattr__(self, "read_url", self.app_url)

    def app_params(self) -> dict[str, Any]:
        return conninfo_to_dict(self.app_url)

    def eventsourcing_env(
        self, *, pool_size: int, max_overflow: int, as_admin: bool = False
    ) -> dict[str, str]:
        """Settings for eventsourcing's Postgres recorders, connecting as the app role (or, for
        a rebuild that empties a view in its own transaction, as the admin)."""
        params = conninfo_to_dict(self.admin_url) if as_admin else self.app_params()
        return {
            "PERSISTENCE_MODULE": "training.infra.postgres:Factory",
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
    """A pgserver instance whose data lives in ``data_dir``, shared by the processes that use
    it (``serve`` and a CLI command in another shell): the last of them to stop stops it.

    Who uses the server is a shared ``flock`` each user holds on the data directory's
    ``PG_VERSION`` for as long as it runs. The kernel drops the lock of a process that dies,
    however it dies, so a ``kill -9`` leaves no stale user behind: the next start takes the
    server over, and its stop stops it. (pgserver's own record, a list of pids in the data
    directory, keeps the pid of a killed process forever, and then no later process ever
    stopped the server.) Starting and stopping take turns under an exclusive ``flock`` on the
    data directory itself, so a stop never stops a server that a start has just joined.
    """

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset on servers; it is harmless.
            warnings.simplefilter("ignore")
            import pgserver  # imported lazily: only the embedded mode needs it

        logging.getLogger("pgserver").setLevel(logging.WARNING)  # its info lines are noise
        self.data_dir = data_dir.expanduser().resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._starting_or_stopping():
            left_running = self._left_running()
            # No cleanup by pgserver: its list of users is what the flock replaces.
            self.server = pgserver.PostgresServer(self.data_dir, cleanup_mode=None)
            self._use: int | None = os.open(self.data_dir / "PG_VERSION", os.O_RDONLY)
            self._allow_connections(EMBEDDED_MAX_CONNECTIONS)
            fcntl.flock(self._use, fcntl.LOCK_SH)
            keep_row_values_out_of_the_log(self.admin_url)
        if left_running:
            log.warning(
                "embedded PostgreSQL in %s was left running by a process that ended without "
                "stopping it; this process took it over",
                self.data_dir,
            )

    @property
    def admin_url(self) -> str:
        return str(self.server.get_uri())

    def _allow_connections(self, wanted: int) -> None:
        """Raises the server's ``max_connections`` to ``wanted`` (a restart), once per data
        directory, and only while no other process uses the server."""
        assert self._use is not None
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            row = conn.execute("SHOW max_connections").fetchone()
            if row is None or int(row[0]) >= wanted:
                return
            try:
                fcntl.flock(self._use, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # in use: raised at the next start that finds it alone
            conn.execute(sql.SQL("ALTER SYSTEM SET max_connections = {}").format(wanted))
        # ``restart`` starts it with the options it ran with (postmaster.opts): the same socket.
        restarted = self._pg_ctl("-l", str(self.server.log), "-w", "restart")
        if restarted.returncode != 0:
            raise RuntimeError(f"could not restart the embedded PostgreSQL: {restarted.stderr}")

    def _pg_ctl(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """The wheel's ``pg_ctl`` on this data directory, as the server's system user."""
        pg_ctl = postgres_program("pg_ctl")
        assert pg_ctl is not None
        return subprocess.run(  # noqa: S603 (our data directory, the wheel's binary)
            [str(pg_ctl), "-D", str(self.data_dir), *arguments],
            user=self.server.system_user,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=STOP_TIMEOUT,
        )

    def stop(self) -> None:
        """Stops using the server, and stops the server when no other process uses it."""
        use, self._use = self._use, None
        if use is None:
            return
        with self._starting_or_stopping():
            try:
                fcntl.flock(use, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(use)  # another process still uses it
                return
            try:
                self._stop_server()
            finally:
                os.close(use)

    @contextlib.contextmanager
    def _starting_or_stopping(self) -> Iterator[None]:
        directory = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(directory, fcntl.LOCK_EX)
            yield
        finally:
            os.close(directory)  # and with it the lock

    def _left_running(self) -> bool:
        """Whether a server runs that no live process uses (its owner was killed)."""
        version = self.data_dir / "PG_VERSION"
        if not version.exists() or not (self.data_dir / "postmaster.pid").exists():
            return False
        probe = os.open(version, os.O_RDONLY)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # in use
        finally:
            os.close(probe)
        return _postmaster_alive(self.data_dir)

    def _stop_server(self) -> None:
        try:
            stopped = self._pg_ctl("-w", "stop")
        except (OSError, subprocess.SubprocessError) as error:
            log.warning("could not stop the embedded PostgreSQL: %s", error)
            return
        if stopped.returncode != 0 and _postmaster_alive(self.data_dir):
            log.warning("could not stop the embedded PostgreSQL: %s", stopped.stderr.strip())


def postgres_program(name: str) -> Path | None:
    """A program of the PostgreSQL inside the pgserver wheel (pg_dump, psql, ...), if any."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, as above
        from pgserver._commands import POSTGRES_BIN_PATH

    path = Path(POSTGRES_BIN_PATH) / name
    return path if name == path.name and path.is_file() else None


def _postmaster_alive(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user (pgserver's when run as root)
    return True


@contextlib.contextmanager
def database_for(settings: Settings) -> Iterator[Database]:
    """The configured database, starting the embedded one when no DATABASE_URL is set."""
    replica = settings.read_database_url
    if settings.database_url:
        yield Database(
            admin_url=settings.database_url,
            app_url=app_url_for(settings.database_url, settings.app_db_password),
            worker_url=worker_url_for(settings.database_url, settings.worker_db_password),
            read_url=app_url_for(replica, settings.app_db_password) if replica else "",
        )
        return
    embedded = EmbeddedPostgres(settings.data_dir / "pg")
    try:
        create_database(embedded.admin_url, EMBEDDED_DB_NAME)
        admin_url = with_dbname(embedded.admin_url, EMBEDDED_DB_NAME)
        yield Database(
            admin_url=admin_url,
            app_url=app_url_for(admin_url, None),
            read_url=app_url_for(replica, None) if replica else "",
        )
    finally:
        embedded.stop()
