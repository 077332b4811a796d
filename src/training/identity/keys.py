"""The RSA keys that sign our access tokens, stored in ``training.signing_keys``.

``training migrate`` creates the first key, ``training keys rotate`` makes a new active key
and keeps the old one published as ``previous`` until the next rotation, so tokens signed
just before a rotation still verify. Readers cache the key set for ``CACHE_SECONDS`` and
reload when a token names a kid they do not know (a rotation in another process), but at
most once every ``RELOAD_COOLDOWN`` seconds: a reload connects to the database and reads
the keys, so a stream of made-up kids must not cause one each, nor wait for one.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from joserfc.jwk import KeySet, RSAKey

from training.infra.secretbox import SecretBox

KEY_BITS = 2048
CACHE_SECONDS = 60.0
# How soon a kid that is new after a rotation elsewhere is known here, at the latest.
RELOAD_COOLDOWN = 5.0
# How long a caller waits for the first keys another thread is loading.
RELOAD_WAIT = 10.0


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
    kids: frozenset[str] = frozenset()

    def jwks(self) -> dict[str, Any]:
        return dict(self.public_keys.as_dict(private=False))

    def knows(self, kid: str) -> bool:
        return kid in self.kids


class KeyRing:
    """The current keys, read with the app role.

    Verifying reads the loaded key set without taking a lock. A load (the query, decrypting
    the private key, importing the keys) runs in the thread of the caller that found it due,
    with no lock held; everyone else keeps deciding with the keys already loaded, and waits
    only when there are none yet. Loads are due when the set is older than
    ``cache_seconds``, and for an unknown kid at most once every ``reload_cooldown`` seconds:
    the first unknown kid after a quiet spell reloads at once, so a rotation in another
    process is normally learned with the first token that names the new key, and at the
    latest within the cooldown.
    """

    def __init__(
        self,
        conninfo: str,
        box: SecretBox,
        *,
        cache_seconds: float = CACHE_SECONDS,
        reload_cooldown: float = RELOAD_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conninfo = conninfo
        self._box = box
        self._cache_seconds = cache_seconds
        self._reload_cooldown = reload_cooldown
        self._clock = clock
        # Guards the fields below for a few instructions at a time, never across a load.
        self._lock = threading.Lock()
        self._loaded: LoadedKeys | None = None
        self._loaded_at = -math.inf
        self._load_started_at = -math.inf
        self._forced_at = -math.inf  # the last load asked for by an unknown kid
        self._loading: threading.Event | None = None

    def current(self) -> LoadedKeys:
        loaded = self._loaded
        if loaded is None or self._clock() - self._loaded_at > self._cache_seconds:
            return self._refresh(forced=False)
        return loaded

    def refresh_for(self, kid: str) -> LoadedKeys:
        """The keys, reloaded first if ``kid`` is unknown and a reload for it is due."""
        loaded = self.current()
        if loaded.knows(kid):
            return loaded
        return self._refresh(forced=True)

    def at_hand(self, kid: str) -> LoadedKeys | None:
        """The keys that decide about ``kid`` with no load and no wait; None when this caller
        has to load them first (``refresh_for``, in a thread)."""
        loaded = self._loaded
        if loaded is None:
            return None
        now = self._clock()
        if now - self._loaded_at > self._cache_seconds and self._due(now, forced=False):
            return None
        if loaded.knows(kid) or not self._due(now, forced=True):
            return loaded
        return None

    def reload(self) -> LoadedKeys:
        """Loads now, whatever the cooldown (after a rotation made by this process)."""
        with self._lock:
            self._load_started_at = self._clock()
        loaded = self._load()
        self._publish(loaded)
        return loaded

    def _due(self, now: float, *, forced: bool) -> bool:
        """Whether a caller may start a load now: none running, and (a failing load is
        retried once per cooldown too) none started within the cooldown."""
        if self._loading is not None:
            return False
        if self._loaded is None:
            return True
        last = self._forced_at if forced else self._load_started_at
        return now - last >= self._reload_cooldown

    def _refresh(self, *, forced: bool) -> LoadedKeys:
        with self._lock:
            now = self._clock()
            mine = self._due(now, forced=forced)
            if mine:
                self._loading = threading.Event()
                self._load_started_at = now
                if forced:
                    self._forced_at = now
            loading = self._loading
        if mine:
            assert loading is not None
            try:
                loaded = self._load()
                self._publish(loaded)
                return loaded
            finally:
                with self._lock:
                    self._loading = None
                loading.set()
        if self._loaded is None and loading is not None:
            loading.wait(RELOAD_WAIT)  # nothing to decide with yet
        current = self._loaded
        if current is None:
            msg = "the signing keys could not be loaded"
            raise RuntimeError(msg)
        return current

    def _publish(self, loaded: LoadedKeys) -> None:
        with self._lock:
            self._loaded = loaded
            self._loaded_at = self._clock()

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
        # A kid names one key for good, so keys imported before are reused. Importing a
        # private key validates it while holding the GIL (~60-190 ms here), which would
        # stall every request of the process; it happens only when the active key changed.
        previous = self._loaded
        known = {str(key.kid): key for key in previous.public_keys.keys} if previous else {}
        kid, _state, _public, sealed = active[0]
        if previous is not None and previous.signing_key.kid == kid:
            signing_key = previous.signing_key
        else:
            private = json.loads(self._box.open(bytes(sealed), context=kid.encode()))
            signing_key = RSAKey.import_key(private)
        public = KeySet([known.get(str(row[0])) or RSAKey.import_key(row[2]) for row in rows])
        return LoadedKeys(
            signing_key=signing_key,
            public_keys=public,
            kids=frozenset(str(row[0]) for row in rows),
        )
