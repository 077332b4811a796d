"""The RSA keys that sign our access tokens, stored in ``training.signing_keys``.

``training migrate`` creates the first key, ``training keys rotate`` makes a new active key
and keeps the old one published as ``previous`` until the next rotation, so tokens signed
just before a rotation still verify. Readers cache the key set for a short time and reload
at once when a token names a kid they do not know.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from joserfc.jwk import KeySet, RSAKey

from training.infra.secretbox import SecretBox

KEY_BITS = 2048
CACHE_SECONDS = 60.0


def _new_key() -> RSAKey:
    return RSAKey.generate_key(
        KEY_BITS, parameters={"kid": uuid.uuid4().hex, "use": "sig", "alg": "RS256"}
    )


def _insert(conn: psycopg.Connection, key: RSAKey, box: SecretBox) -> str:
    kid = str(key.kid)
    private = json.dumps(key.as_dict(private=True)).encode()
    conn.execute(
        "INSERT INTO training.signing_keys (kid, state, public_jwk, private_jwk_encrypted) "
        "VALUES (%s, 'active', %s, %s)",
        (kid, json.dumps(key.as_dict(private=False)), box.seal(private, context=kid.encode())),
    )
    return kid


def ensure_signing_key(admin_url: str, box: SecretBox) -> str | None:
    """Creates the first signing key; returns its kid, or None when one exists already."""
    with psycopg.connect(admin_url) as conn, conn.transaction():
        conn.execute("LOCK TABLE training.signing_keys IN EXCLUSIVE MODE")
        if conn.execute("SELECT 1 FROM training.signing_keys WHERE state = 'active'").fetchone():
            return None
        return _insert(conn, _new_key(), box)


def rotate_signing_key(admin_url: str, box: SecretBox) -> str:
    """Retires the previous key, demotes the active one to previous, adds a new active key."""
    with psycopg.connect(admin_url) as conn, conn.transaction():
        conn.execute("LOCK TABLE training.signing_keys IN EXCLUSIVE MODE")
        conn.execute("UPDATE training.signing_keys SET state = 'retired' WHERE state = 'previous'")
        conn.execute("UPDATE training.signing_keys SET state = 'previous' WHERE state = 'active'")
        return _insert(conn, _new_key(), box)


@dataclass(frozen=True)
class LoadedKeys:
    signing_key: RSAKey
    public_keys: KeySet

    def jwks(self) -> dict[str, Any]:
        return dict(self.public_keys.as_dict(private=False))


class KeyRing:
    """The current keys, read with the app role and cached for ``CACHE_SECONDS``."""

    def __init__(self, conninfo: str, box: SecretBox) -> None:
        self._conninfo = conninfo
        self._box = box
        self._lock = threading.Lock()
        self._loaded: LoadedKeys | None = None
        self._loaded_at = 0.0

    def current(self) -> LoadedKeys:
        with self._lock:
            if self._loaded is None or time.monotonic() - self._loaded_at > CACHE_SECONDS:
                self._loaded = self._load()
                self._loaded_at = time.monotonic()
            return self._loaded

    def reload(self) -> LoadedKeys:
        with self._lock:
            self._loaded = self._load()
            self._loaded_at = time.monotonic()
            return self._loaded

    def refresh_for(self, kid: str) -> LoadedKeys:
        """Reloads once if ``kid`` is unknown (a rotation happened in another process)."""
        loaded = self.current()
        if any(key.kid == kid for key in loaded.public_keys.keys):
            return loaded
        return self.reload()

    def _load(self) -> LoadedKeys:
        with psycopg.connect(self._conninfo) as conn:
            rows = conn.execute(
                "SELECT kid, state, public_jwk, private_jwk_encrypted FROM training.signing_keys "
                "WHERE state IN ('active', 'previous') ORDER BY created_at DESC"
            ).fetchall()
        active = [row for row in rows if row[1] == "active"]
        if not active:
            msg = "no active signing key: run `training migrate`"
            raise RuntimeError(msg)
        kid, _state, _public, sealed = active[0]
        private = json.loads(self._box.open(bytes(sealed), context=kid.encode()))
        signing_key = RSAKey.import_key(private)
        public = KeySet([RSAKey.import_key(row[2]) for row in rows])
        return LoadedKeys(signing_key=signing_key, public_keys=public)
