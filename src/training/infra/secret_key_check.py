"""The secret key must be the one the database's signing keys were sealed with.

A database restored without its ``.data/secret.key`` looked healthy: ``serve`` made a new
key, ``/readyz`` answered 200, and every token request and the JWKS failed (the private
signing key no longer decrypts). ``serve``, ``worker`` and ``migrate`` therefore open the
active signing key before anything else, and refuse to start, in one line that says what to
do, when they cannot. A database with no signing key yet (a new installation) is fine: its
first key will be sealed with the key at hand. Nothing here creates a key.
"""

from __future__ import annotations

import base64
import binascii

import psycopg
from cryptography.exceptions import InvalidTag

from training.infra.secretbox import LOCAL_KEY_FILE, SecretBox
from training.infra.settings import Settings


class SecretKeyRefused(Exception):
    """The configured secret key cannot open the signing keys stored in the database."""


def check_secret_key(conninfo: str, settings: Settings) -> None:
    """Raises ``SecretKeyRefused`` unless the secret key opens the active signing key."""
    active = _active_signing_key(conninfo)
    if active is None:
        return
    kid, sealed = active
    source, encoded = _configured_key(settings)
    restore = (
        "restore the secret.key saved with this database into "
        f"{settings.data_dir}, or set TRAINING_SECRET_KEY to that key"
        if settings.database_url is None
        else "set TRAINING_SECRET_KEY to the key saved with this database"
    )
    lost = "if it is lost, `training keys rotate --replace-lost-secret-key`"
    if encoded is None:
        msg = (
            f"the database holds token signing keys but {source} is missing (was the database "
            f"restored without its key?): {restore}; {lost}"
        )
        raise SecretKeyRefused(msg)
    try:
        SecretBox(base64.urlsafe_b64decode(encoded)).open(sealed, context=kid.encode())
    except (InvalidTag, ValueError, binascii.Error):
        msg = (
            f"the secret key in {source} cannot decrypt the token signing keys stored in the "
            f"database (was it restored without its key?): {restore}; {lost}"
        )
        raise SecretKeyRefused(msg) from None


def _configured_key(settings: Settings) -> tuple[str, str | None]:
    """Where the secret key comes from, and the key (None when there is none yet)."""
    if settings.secret_key is not None:
        return "TRAINING_SECRET_KEY", settings.secret_key
    if settings.database_url:
        return "TRAINING_SECRET_KEY", None
    path = settings.data_dir / LOCAL_KEY_FILE
    return str(path), path.read_text().strip() if path.exists() else None


def _active_signing_key(conninfo: str) -> tuple[str, bytes] | None:
    with psycopg.connect(conninfo) as conn:
        exists = conn.execute("SELECT to_regclass('training.signing_keys')").fetchone()
        if exists is None or exists[0] is None:
            return None  # not migrated yet
        row = conn.execute(
            "SELECT kid, private_jwk_encrypted FROM training.signing_keys WHERE state = 'active'"
        ).fetchone()
    return None if row is None else (str(row[0]), bytes(row[1]))
