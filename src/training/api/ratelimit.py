"""Rate limits per API client and per person, answered with 429 and Retry-After.

A token bucket per principal (``TRAINING_RATE_LIMIT``, e.g. ``600/60``: 600 requests per
60 seconds, refilled continuously) kept in this process. Several processes each keep their
own buckets, so the effective limit is per process; a shared store would make it global.
The token endpoint is limited per client address, which also slows secret guessing.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from training.api.auth import Principal
from training.api.middleware import send_problem


@dataclass(frozen=True)
class RateLimit:
    requests: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        count, _, window = text.partition("/")
        limit = cls(int(count), float(window or "60"))
        if limit.requests < 1 or limit.seconds <= 0:
            msg = "a rate limit is REQUESTS/SECONDS, both positive"
            raise ValueError(msg)
        return limit


class Buckets:
    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until a token is back."""
        rate = self.limit.requests / self.limit.seconds
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._state.get(key, (float(self.limit.requests), now))
            tokens = min(float(self.limit.requests), tokens + (now - updated) * rate)
            if tokens >= 1:
                self._state[key] = (tokens - 1, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (1 - tokens) / rate


class RateLimitMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        principal = scope.get("user")
        if isinstance(principal, Principal):
            key = f"{principal.kind}:{principal.subject}"
        elif scope.get("path") == "/oauth2/token":
            client = scope.get("client") or ("unknown", 0)
            key = f"address:{client[0]}"
        else:
            await next_app(scope, receive, send)
            return
        wait = self.buckets.take(key)
        if wait > 0:
            await send_problem(
                send,
                scope,
                429,
                "rate-limited",
                f"too many requests; at most {self.buckets.limit.requests} per "
                f"{self.buckets.limit.seconds:g} s",
                headers=[(b"retry-after", str(max(1, math.ceil(wait))).encode())],
            )
            return
        await next_app(scope, receive, send)
