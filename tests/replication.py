"""A PostgreSQL primary and a hot-standby replica of it, on loopback, for the replica tests.

Both run the PostgreSQL inside the pgserver wheel (the binaries the embedded server uses):
``initdb`` makes the primary, ``pg_basebackup -R`` copies it into a standby that streams
the primary's WAL over TCP on 127.0.0.1, as a replica in production does. Run as root, the
servers run as pgserver's own system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from training.infra.database import postgres_program

SUPERUSER = "postgres"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class ReplicatedServers:
    """The admin URLs (the ``postgres`` database) of the primary and of its replica."""

    primary_url: str
    replica_url: str
    replica_data: Path
    system_user: str | None

    def pause_replay(self) -> None:
        """The replica keeps receiving the primary's WAL but stops applying it."""
        with psycopg.connect(self.replica_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with psycopg.connect(self.replica_url, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def stop_replica(self) -> None:
        _pg_ctl(self.replica_data, self.system_user, "-m", "fast", "stop")

    def start_replica(self) -> None:
        _pg_ctl(self.replica_data, self.system_user, "start")


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _run(system_user: str | None, *args: str) -> None:
    program = postgres_program(args[0])
    assert program is not None, f"{args[0]} is not in the pgserver wheel"
    subprocess.run(
        [str(program), *args[1:]],
        user=system_user,
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=START_TIMEOUT,
    )


def _pg_ctl(data: Path, system_user: str | None, *action: str) -> None:
    _run(system_user, "pg_ctl", "-D", str(data), "-w", "-l", str(data / "server.log"), *action)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _admin_url(port: int) -> str:
    return make_conninfo(
        "", host="127.0.0.1", port=port, user=SUPERUSER, dbname="postgres", connect_timeout=5
    )


def _configure(data: Path, port: int, sockets: Path) -> None:
    with (data / "postgresql.auto.conf").open("a") as conf:
        conf.write(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{sockets}'\n"
            "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
            # The tests' databases are throw-away: no fsync, as pgserver's default.
            "fsync = off\nsynchronous_commit = off\n"
        )


def _wait_until_accepting(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with psycopg.connect(url) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def primary_and_replica() -> Iterator[ReplicatedServers]:
    """A primary and its streaming hot standby, stopped and removed afterwards."""
    system_user = _system_user()
    # Not under pytest's 0700 temporary directories: the servers run as their own user.
    root = Path(tempfile.mkdtemp(prefix="training-replication-"))
    primary, replica, sockets = root / "primary", root / "replica", root / "sockets"
    sockets.mkdir()
    if system_user is not None:
        shutil.chown(root, system_user)
        shutil.chown(sockets, system_user)
    started: list[Path] = []
    try:
        _run(
            system_user, "initdb", "-D", str(primary), "-U", SUPERUSER, "-A", "trust", "-E", "utf8"
        )
        primary_port, replica_port = _free_port(), _free_port()
        _configure(primary, primary_port, sockets)
        _pg_ctl(primary, system_user, "start")
        started.append(primary)
        _run(
            system_user,
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary_port),
            "-U",
            SUPERUSER,
            "-D",
            str(replica),
            "-R",  # standby.signal and primary_conninfo: a streaming replica
            "-X",
            "stream",
        )
        with (replica / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"port = {replica_port}\n")
        _pg_ctl(replica, system_user, "start")
        started.append(replica)
        servers = ReplicatedServers(
            _admin_url(primary_port), _admin_url(replica_port), replica, system_user
        )
        _wait_until_accepting(servers.replica_url)
        yield servers
    finally:
        for data in reversed(started):
            with suppress(subprocess.SubprocessError):
                _pg_ctl(data, system_user, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def replicated(servers: ReplicatedServers, dbname: str, timeout: float = 30.0) -> None:
    """Waits until the replica has replayed everything the primary has committed so far."""
    with psycopg.connect(servers.primary_url, autocommit=True) as primary:
        row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    deadline = time.monotonic() + timeout
    with psycopg.connect(servers.replica_url, autocommit=True) as replica:
        while True:
            done = replica.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)
            ).fetchone()
            if done and done[0]:
                return
            assert time.monotonic() < deadline, f"the replica did not replay {dbname} in time"
            time.sleep(0.05)
