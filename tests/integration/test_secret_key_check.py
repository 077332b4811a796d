"""Start-up refuses a secret key that cannot open the database's signing keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET_KEY, database_of_its_own, drop_database, make_settings
from training.cli import main
from training.infra.database import Database, app_url_for, create_database, with_dbname
from training.infra.migrations import migrate
from training.infra.secret_key_check import SecretKeyRefused, check_secret_key
from training.infra.secretbox import LOCAL_KEY_FILE, SecretBox
from training.infra.settings import Settings


def local(data_dir: Path) -> Settings:
    """An embedded installation: no DATABASE_URL, no TRAINING_SECRET_KEY, a data directory."""
    return Settings(data_dir=data_dir)


def test_the_key_that_sealed_the_signing_keys_passes(database: Database, tmp_path: Path) -> None:
    check_secret_key(database.admin_url, make_settings())
    (tmp_path / LOCAL_KEY_FILE).write_text(TEST_SECRET_KEY + "\n")
    check_secret_key(database.admin_url, local(tmp_path))


def test_another_key_is_refused_with_what_to_do(database: Database, tmp_path: Path) -> None:
    with pytest.raises(SecretKeyRefused) as refused:
        check_secret_key(
            database.admin_url,
            make_settings(secret_key=SecretBox.new_key(), database_url=database.admin_url),
        )
    assert str(refused.value) == (
        "the secret key in TRAINING_SECRET_KEY cannot decrypt the token signing keys stored in "
        "the database (was it restored without its key?): set TRAINING_SECRET_KEY to the key "
        "saved with this database; if it is lost, "
        "`training keys rotate --replace-lost-secret-key`"
    )
    key_file = tmp_path / LOCAL_KEY_FILE
    key_file.write_text(SecretBox.new_key())
    with pytest.raises(SecretKeyRefused, match=f"the secret key in {key_file} cannot decrypt"):
        check_secret_key(database.admin_url, local(tmp_path))


def test_a_missing_key_file_is_refused_and_not_created(database: Database, tmp_path: Path) -> None:
    with pytest.raises(SecretKeyRefused) as refused:
        check_secret_key(database.admin_url, local(tmp_path))
    message = str(refused.value)
    assert f"{tmp_path / LOCAL_KEY_FILE} is missing" in message
    assert f"restore the secret.key saved with this database into {tmp_path}" in message
    assert "or set TRAINING_SECRET_KEY to that key" in message
    assert "\n" not in message
    assert not (tmp_path / LOCAL_KEY_FILE).exists()


def test_a_malformed_key_is_refused(database: Database) -> None:
    for malformed in ("not base64 at all!", "c2hvcnQ="):
        with pytest.raises(SecretKeyRefused, match="cannot decrypt"):
            check_secret_key(database.admin_url, make_settings(secret_key=malformed))


@pytest.fixture
def new_database(admin_server_url: str) -> Iterator[Database]:
    name = f"training_new_{uuid.uuid4().hex[:10]}"
    create_database(admin_server_url, name)
    admin_url = with_dbname(admin_server_url, name)
    database = Database(admin_url=admin_url, app_url=app_url_for(admin_url, None))
    try:
        yield database
    finally:
        drop_database(admin_server_url, database)


def test_a_new_database_has_nothing_to_open(new_database: Database, tmp_path: Path) -> None:
    check_secret_key(new_database.admin_url, local(tmp_path))  # not even migrated
    migrate(new_database.admin_url)
    check_secret_key(new_database.admin_url, local(tmp_path))  # no signing key yet
    assert not (tmp_path / LOCAL_KEY_FILE).exists()


@pytest.fixture
def restored(admin_server_url: str, template_db: str) -> Iterator[Database]:
    """A database whose signing keys were sealed with TEST_SECRET_KEY."""
    with database_of_its_own(admin_server_url, template_db) as database:
        yield database


def test_keys_rotate_replaces_a_lost_key_only_when_told(
    restored: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    new_key = SecretBox.new_key()
    monkeypatch.setenv("DATABASE_URL", restored.admin_url)
    monkeypatch.setenv("TRAINING_SECRET_KEY", new_key)
    assert main(["keys", "rotate"]) == 1
    refusal = capsys.readouterr().err.strip()
    assert refusal.startswith("training keys rotate: refused: the secret key in ")
    assert "\n" not in refusal

    assert main(["keys", "rotate", "--replace-lost-secret-key"]) == 0
    assert "identity providers again" in capsys.readouterr().err
    settings = Settings.from_env()
    check_secret_key(restored.admin_url, settings)  # the new active key opens
    with pytest.raises(SecretKeyRefused):
        check_secret_key(restored.admin_url, make_settings(secret_key=TEST_SECRET_KEY))
