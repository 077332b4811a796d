"""The embedded PostgreSQL's own log never quotes a row's values.

Its default log wrote the key of a unique violation (``DETAIL: Key (tenant_id, email)=(…,
ann@example.test) already exists``): the email of a person, in a file erasure cannot reach.
The server the tests run on is started the way ``training serve`` starts it.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from training.infra.database import Database
from training.infra.server_log import NO_ROW_VALUES

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="an external server is its operator's to set up"
)


def server_log(database: Database) -> Path:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    return Path(str(row[0])) / "log"  # where pgserver starts the server's log


def test_a_unique_violation_leaves_no_value_in_the_server_log(database: Database) -> None:
    with psycopg.connect(database.admin_url) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(NO_ROW_VALUES),)
            ).fetchall()
        )
    assert settings == NO_ROW_VALUES
    email = f"twin-{uuid.uuid4().hex}@example.test"
    table = f"twins_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (email text UNIQUE)")
        conn.execute(f"INSERT INTO {table} VALUES (%s)", (email,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f"INSERT INTO {table} VALUES (%s)", (email,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(f"INSERT INTO {table} VALUES ('{email}')")  # a literal in the statement
        conn.execute(f"DROP TABLE {table}")
    log = server_log(database)
    deadline = time.monotonic() + 10
    while f"{table}_email_key" not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the violation never reached the server's log"
        time.sleep(0.1)
    written = log.read_text(errors="replace")
    assert email not in written
