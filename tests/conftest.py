"""Shared fixtures: one PostgreSQL per test run, a fresh database per test module.

Without DATABASE_URL the run starts an embedded PostgreSQL (pgserver) in a temporary
directory. Migrations run once into a template database; each module that needs a database
gets its own copy of the template (``CREATE DATABASE ... TEMPLATE``), which takes a few
tens of milliseconds and keeps modules independent.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from training.bootstrap import Services, build_services
from training.identity.keys import ensure_signing_key
from training.infra.database import (
    Database,
    EmbeddedPostgres,
    app_url_for,
    create_database,
    with_dbname,
)
from training.infra.migrations import migrate
from training.infra.secretbox import SecretBox
from training.infra.settings import Settings

TEST_SECRET_KEY = SecretBox.new_key()
TEST_ISSUER = "https://training.test"


@pytest.fixture(scope="session")
def admin_server_url() -> Iterator[str]:
    """Admin conninfo of the server the run uses (the ``postgres`` database)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    # Not under pytest's 0700 temp dirs: the server runs as its own system user.
    data_dir = Path(tempfile.mkdtemp(prefix="training-test-pg-"))
    server = EmbeddedPostgres(data_dir)
    try:
        yield server.admin_url
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(admin_server_url: str) -> str:
    name = f"training_template_{uuid.uuid4().hex[:8]}"
    create_database(admin_server_url, name)
    url = with_dbname(admin_server_url, name)
    migrate(url)
    ensure_signing_key(url, SecretBox.from_settings(make_settings()))
    return name


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret_key": TEST_SECRET_KEY,
        "public_url": TEST_ISSUER,
        "environment": "test",
        "read_wait": 2.0,
        "db_pool_size": 4,
        # Tests drive many requests with one token, and many refused ones from one address;
        # the limits have tests of their own.
        "rate_limit": "1000000/60",
        "rate_limit_anonymous": "1000000/60",
        "rate_limit_token": "1000000/60",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def fresh_database(admin_server_url: str, template: str) -> Database:
    name = f"training_test_{uuid.uuid4().hex[:10]}"
    create_database(admin_server_url, name, template=template)
    admin_url = with_dbname(admin_server_url, name)
    return Database(admin_url=admin_url, app_url=app_url_for(admin_url, None))


def drop_database(admin_server_url: str, database: Database) -> None:
    name = psycopg.conninfo.conninfo_to_dict(database.admin_url)["dbname"]
    with psycopg.connect(admin_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


@contextmanager
def database_of_its_own(admin_server_url: str, template: str) -> Iterator[Database]:
    """A copy of the template, dropped afterwards."""
    db = fresh_database(admin_server_url, template)
    try:
        yield db
    finally:
        drop_database(admin_server_url, db)


@pytest.fixture(scope="module")
def database(admin_server_url: str, template_db: str) -> Iterator[Database]:
    with database_of_its_own(admin_server_url, template_db) as db:
        yield db


@pytest.fixture(scope="module")
def services(database: Database) -> Iterator[Services]:
    """The service of the module's database, with its projection runners."""
    built = build_services(make_settings(), database, run_projections=True)
    try:
        yield built
    finally:
        built.app.close()
