"""Encrypts small secrets at rest (private signing keys, later IdP client secrets).

AES-256-GCM with a random 96-bit nonce; the stored form is ``nonce || ciphertext+tag``. The
key comes from ``TRAINING_SECRET_KEY`` or, for a local embedded database, from a file
created beside it on first start. Other uses of the key get keys derived from it
(``derive``), such as the HMAC that names callers in the shared rate-limit buckets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from training.infra.settings import Settings

NONCE_BYTES = 12
# The local key of an embedded database, beside it in the data directory.
LOCAL_KEY_FILE = "secret.key"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            msg = "the secret key must be 32 bytes (base64 in TRAINING_SECRET_KEY)"
            raise ValueError(msg)
        self._aead = AESGCM(key)
        self._key = key

    def seal(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, *, context: bytes = b"") -> bytes:
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context)

    def derive(self, purpose: str) -> bytes:
        """A key of its own for ``purpose`` (HMAC-SHA256 of the purpose under the service's
        key): what keys one thing never opens or forges another."""
        return hmac.digest(self._key, f"training:{purpose}".encode(), hashlib.sha256)

    @staticmethod
    def new_key() -> str:
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        encoded = settings.secret_key
        if encoded is None:
            if settings.database_url:
                msg = "set TRAINING_SECRET_KEY when DATABASE_URL points at an external server"
                raise RuntimeError(msg)
            encoded = _local_key(settings.data_dir / LOCAL_KEY_FILE)
        return cls(base64.urlsafe_b64decode(encoded))


def _local_key(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(SecretBox.new_key())
    return path.read_text().strip()
