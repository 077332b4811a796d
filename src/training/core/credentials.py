"""Client ids and secrets.

Secrets are 256 bits from ``secrets``; with that much entropy a single SHA-256 is enough to
make the stored hash useless to a thief (a slow password hash only helps low-entropy input),
and it keeps the token endpoint fast.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HASH_SCHEME = "sha256"


def new_client_id(*, operator: bool) -> str:
    return ("op_" if operator else "tc_") + secrets.token_urlsafe(12)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return f"{HASH_SCHEME}${hashlib.sha256(secret.encode()).hexdigest()}"


def verify_secret(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
