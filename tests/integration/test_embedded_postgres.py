"""The embedded PostgreSQL stops with the last process that uses it, even after a kill -9."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from training.infra.database import EmbeddedPostgres


@pytest.fixture
def pgdata() -> Iterator[Path]:
    # Not under pytest's 0700 temp dirs: run as root, the server runs as its own system user.
    parent = Path(tempfile.mkdtemp(prefix="training-embedded-"))
    try:
        yield parent / "pg"
    finally:
        postmaster = parent / "pg" / "postmaster.pid"
        if postmaster.exists():  # a failed test must not leave a server behind
            EmbeddedPostgres(parent / "pg").stop()
        shutil.rmtree(parent, ignore_errors=True)


def running(pgdata: Path) -> bool:
    return (pgdata / "postmaster.pid").exists()


def test_the_last_user_stops_the_server(pgdata: Path) -> None:
    first = EmbeddedPostgres(pgdata)
    second = EmbeddedPostgres(pgdata)
    assert second.admin_url == first.admin_url
    first.stop()
    assert running(pgdata)
    with psycopg.connect(second.admin_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    second.stop()
    assert not running(pgdata)
    second.stop()  # twice is harmless


def test_a_start_after_a_killed_owner_takes_the_server_over(pgdata: Path) -> None:
    # A process starts the server, writes, and is killed before it can stop anything.
    owner = textwrap.dedent(
        f"""
        import os, signal, psycopg
        from pathlib import Path
        from training.infra.database import EmbeddedPostgres
        server = EmbeddedPostgres(Path({str(pgdata)!r}))
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE survivors (name text)")
            conn.execute("INSERT INTO survivors VALUES ('ann')")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    killed = subprocess.run([sys.executable, "-c", owner], check=False, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert running(pgdata)  # left behind

    heir = EmbeddedPostgres(pgdata)
    with psycopg.connect(heir.admin_url) as conn:
        assert conn.execute("SELECT name FROM survivors").fetchall() == [("ann",)]
    heir.stop()
    assert not running(pgdata)
