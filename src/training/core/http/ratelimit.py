"""Rate limits, answered with 429 and Retry-After: per caller, and per client address.

Token buckets (``REQUESTS/SECONDS``, refilled continuously) shared by every process on the
database (ADR 0035): the bucket itself is a row (``core.rate_limit_store``), and each process
draws tokens from it in blocks of 1/16 of the limit (at least one) and spends them from
memory (``SharedBuckets``). Most requests touch only this process's memory; a caller's
burst may exceed its limit by at most one block per process, its sustained rate never. When
the database cannot be reached, each process falls back to buckets of its own for a few
seconds at a time (per process, as before ADR 0035), and logs it once. Three sets of
buckets:

- **per principal** (``TRAINING_RATE_LIMIT``): every authenticated request of a client or
  a person, after authentication (``RateLimitMiddleware``);
- **per client address, anonymous** (``TRAINING_RATE_LIMIT_ANONYMOUS``): requests to the
  routes a stranger can reach without a token (calendar feeds, single sign-on, discovery
  documents, the OpenAPI document), and every failed authentication (a 401) anywhere else.
  An address that has spent its share is answered 429 before its credentials are looked
  at, so a flood of bad tokens costs a dictionary lookup each, and the 429 is held back up
  to a second, which slows a flood sent through a few connections to a trickle
  (``AddressLimitMiddleware``);
- **per client address at the token endpoint** (``TRAINING_RATE_LIMIT_TOKEN``), which also
  slows secret guessing.

``/healthz`` and ``/readyz`` are not limited: load balancers and orchestrators poll them
from a few addresses, and they do no work a stranger could use to slow the service.

A bucket left alone for a whole window is full again, exactly like a bucket never seen, so
it is dropped: the tables (this process's leases, and the shared rows) hold only the callers
of the last window, however many distinct callers came before (ADR 0018).

The client address is the connection's peer (the ASGI ``client``). ``X-Forwarded-For`` is
read only when that peer is one of ``TRAINING_TRUSTED_PROXIES``: then the address is the
right-most hop that is not itself a trusted proxy (the left-most hops are whatever the
caller chose to write). IPv6 addresses count by their /64, the block one subscriber gets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import unquote

import msgspec
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.status_codes import HTTP_401_UNAUTHORIZED
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from training.core.http.middleware import send_problem
from training.core.http.principal import PUBLIC_PATHS, Principal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Polled by load balancers; see the module docstring.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})
TOKEN_PATH = "/oauth2/token"  # noqa: S105 (a route, not a secret)
# SCIM is public to the bearer middleware only because it authenticates its own requests.
SELF_AUTHENTICATED = re.compile(r"^/scim/")
OPEN_PATHS = re.compile("|".join(PUBLIC_PATHS))
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
MAX_ADDRESS_CHARS = 64
REFUSAL_PAUSE = 1.0  # seconds a stranger's 429 is held back, at most
MAX_HELD_REFUSALS = 256
MAX_IPV4_CHARS = len("255.255.255.255")


@dataclass(frozen=True)
class RateLimit:
    requests: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        count, _, window = text.partition("/")
        limit = cls(int(count), float(window or "60"))
        if limit.requests < 1 or not 0 < limit.seconds < math.inf:
            msg = "a rate limit is REQUESTS/SECONDS, both positive"
            raise ValueError(msg)
        return limit

    def describe(self) -> str:
        return f"at most {self.requests} per {self.seconds:g} s"


class Buckets:
    """A token bucket per key; buckets idle for a whole window are forgotten."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (tokens, updated), oldest update first: the stale ones are at the front.
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._state)

    def take(self, key: str) -> float:
        """0 when the request may go ahead (a token is used), else the seconds to wait."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now)
            if tokens >= 1:
                self._store(key, tokens - 1, now)
                return 0.0
            self._store(key, tokens, now)
            return self._wait(tokens)

    def wait(self, key: str) -> float:
        """The seconds until ``key`` may make a request (0: now), using no token."""
        with self._lock:
            tokens = self._tokens(key, self._clock())
            return 0.0 if tokens >= 1 else self._wait(tokens)

    def charge(self, key: str) -> None:
        """Uses a token for something already done (a failed authentication)."""
        with self._lock:
            now = self._clock()
            self._store(key, max(0.0, self._tokens(key, now) - 1), now)

    def _tokens(self, key: str, now: float) -> float:
        self._evict(now)
        full = float(self.limit.requests)
        stored = self._state.get(key)
        if stored is None:
            return full
        tokens, updated = stored
        return min(full, tokens + (now - updated) * self.limit.requests / self.limit.seconds)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._state[key] = (tokens, now)
        self._state.move_to_end(key)

    def _wait(self, tokens: float) -> float:
        return (1 - tokens) * self.limit.seconds / self.limit.requests

    def _evict(self, now: float) -> None:
        # A bucket refills completely within one window: an older one is a fresh one.
        horizon = now - self.limit.seconds
        while self._state:
            key, (_, updated) = next(iter(self._state.items()))
            if updated > horizon:
                return
            del self._state[key]


# A process draws this share of a limit at a time from the shared bucket (at least a token).
LEASE_FRACTION = 16


def lease_block(limit: RateLimit) -> int:
    """How many tokens one draw takes from the shared bucket, at most."""
    return max(1, limit.requests // LEASE_FRACTION)


@dataclass(frozen=True)
class Grant:
    """What a draw took from the shared bucket: whole tokens for this process to spend, or,
    when there were none, the seconds until the bucket holds one again."""

    tokens: int
    wait: float = 0.0


class LeaseSource(Protocol):
    """Where the shared buckets live (``core.rate_limit_store``)."""

    def online(self) -> bool:
        """False while draws are paused after a failure: use this process's buckets."""
        ...

    async def draw(self, bucket: str, key: str, limit: RateLimit, block: int) -> Grant | None:
        """Refills ``key``'s bucket by the time elapsed and takes up to ``block`` whole tokens;
        None when the shared bucket could not be reached. Never raises."""
        ...


@dataclass
class Lease:
    """Tokens this process drew for one caller and has not spent yet, and until when the
    shared bucket is known to be empty."""

    tokens: int = 0
    refused_until: float = 0.0
    used: float = 0.0


class SharedBuckets:
    """One kind of limit (``name``), kept in the shared buckets of ``source``: see the module
    docstring. One event loop uses it (the app's), so it holds no lock.

    A caller's request spends a token this process drew for it before; only when there is
    none does it draw a block (one statement), and while the shared bucket is known to be
    empty it is refused from memory. Concurrent requests of one caller wait for one draw.
    Without a source (an app built for its OpenAPI document) or while the source is offline,
    the buckets of this process (``local``) decide.
    """

    def __init__(
        self,
        name: str,
        limit: RateLimit,
        source: LeaseSource | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.limit = limit
        self.source = source
        self.local = Buckets(limit, clock)
        self._clock = clock
        # key -> lease, least recently used first: the stale ones are at the front.
        self._leases: OrderedDict[str, Lease] = OrderedDict()
        self._drawing: dict[str, asyncio.Future[bool]] = {}

    def __len__(self) -> int:
        return len(self._leases)

    def held(self, key: str) -> int:
        """Tokens drawn for ``key`` and not spent yet."""
        lease = self._leases.get(key)
        return lease.tokens if lease is not None else 0

    async def take(self, key: str) -> float:
        """0 when the request may go ahead (a token is used), else the seconds to wait."""
        while True:
            now = self._clock()
            lease = self._lease(key, now)
            if lease.tokens >= 1:
                lease.tokens -= 1
                return 0.0
            if lease.refused_until > now:
                return lease.refused_until - now
            if not await self._draw(key):
                return self.local.take(key)

    async def wait(self, key: str) -> float:
        """The seconds until ``key`` may make a request (0: now), using no token. A caller
        this process has not charged yet goes ahead without asking anyone: a dictionary
        lookup. One it has charged and holds no token for draws them ahead."""
        while True:
            now = self._clock()
            self._evict(now)
            lease = self._leases.get(key)
            if lease is not None and lease.tokens >= 1:
                return 0.0
            if lease is not None and lease.refused_until > now:
                return lease.refused_until - now
            if not self._online():
                return self.local.wait(key)
            if lease is None:
                return 0.0
            if not await self._draw(key):
                return self.local.wait(key)

    async def charge(self, key: str) -> None:
        """Uses a token for something already done (a failed authentication)."""
        while True:
            now = self._clock()
            lease = self._lease(key, now)
            if lease.tokens >= 1:
                lease.tokens -= 1
                return
            if lease.refused_until > now:
                return  # an empty bucket stays empty, not in debt
            if not await self._draw(key):
                self.local.charge(key)
                return

    def _online(self) -> bool:
        return self.source is not None and self.source.online()

    async def _draw(self, key: str) -> bool:
        """Draws a block for ``key`` into its lease; False when the shared bucket cannot be
        reached now. A draw already under way for ``key`` is waited for, not repeated."""
        if self.source is None or not self.source.online():
            return False
        pending = self._drawing.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._drawing[key] = future
        drawn = False
        try:
            grant = await self.source.draw(self.name, key, self.limit, lease_block(self.limit))
            if grant is not None:
                now = self._clock()
                lease = self._lease(key, now)
                lease.tokens += grant.tokens
                lease.refused_until = now + grant.wait if grant.tokens == 0 else 0.0
                drawn = True
        finally:
            del self._drawing[key]
            future.set_result(drawn)
        return drawn

    def _lease(self, key: str, now: float) -> Lease:
        self._evict(now)
        lease = self._leases.get(key)
        if lease is None:
            lease = self._leases[key] = Lease()
        else:
            self._leases.move_to_end(key)
        lease.used = now
        return lease

    def _evict(self, now: float) -> None:
        # Unspent tokens of a lease idle for a window are forgotten: by then the shared
        # bucket has refilled anyway.
        horizon = now - self.limit.seconds
        while self._leases:
            key, lease = next(iter(self._leases.items()))
            if lease.used > horizon:
                return
            del self._leases[key]


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``TRAINING_TRUSTED_PROXIES`` entries: addresses or networks (CIDR)."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(text: str, proxies: tuple[Network, ...]) -> bool:
    address = _ip(text)
    return address is not None and any(address in network for network in proxies)


def address_key(text: str) -> str:
    """What one caller's address counts as: itself, or its /64 for IPv6."""
    if ":" not in text and len(text) <= MAX_IPV4_CHARS:
        return text or "unknown"  # IPv4 as the server wrote it (the common case: no parsing)
    address = _ip(text)
    if address is None:
        return text.strip()[:MAX_ADDRESS_CHARS] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_address(scope: Scope, trusted_proxies: tuple[Network, ...] = ()) -> str:
    peer = scope.get("client")
    address = str(peer[0]) if peer else "unknown"
    if trusted_proxies and _trusted(address, trusted_proxies):
        forwarded = ",".join(
            value.decode("latin-1")
            for name, value in scope.get("headers", [])
            if name.lower() == b"x-forwarded-for"
        )
        for hop in reversed([hop.strip() for hop in forwarded.split(",") if hop.strip()]):
            address = hop
            if not _trusted(hop, trusted_proxies):
                break
    return address_key(address)


async def refuse(send: Send, scope: Scope, wait: float, limit: RateLimit) -> None:
    """429 with Retry-After: a problem document, or a SCIM error on the SCIM mount."""
    retry_after = (b"retry-after", str(max(1, math.ceil(wait))).encode())
    detail = f"too many requests; {limit.describe()}"
    if not SELF_AUTHENTICATED.match(request_path(scope)):
        await send_problem(send, scope, 429, "rate-limited", detail, headers=[retry_after])
        return
    body = msgspec.json.encode({"schemas": [SCIM_ERROR], "status": "429", "detail": detail})
    headers = [
        (b"content-type", b"application/scim+json"),
        (b"content-length", str(len(body)).encode()),
        retry_after,
    ]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


Route = Literal["unlimited", "token", "open", "guarded"]


def request_path(scope: Scope) -> str:
    """The path as requested: routing has already cut a mount's prefix off ``path``."""
    raw = scope.get("raw_path")
    return unquote(raw.decode("latin-1")) if raw else str(scope.get("path", ""))


def route_of(path: str) -> Route:
    if path in UNLIMITED_PATHS:
        return "unlimited"
    if path == TOKEN_PATH:
        return "token"
    if OPEN_PATHS.match(path) and not SELF_AUTHENTICATED.match(path):
        return "open"
    return "guarded"


class AddressLimitMiddleware(ASGIMiddleware):
    """Per client address, before authentication: see the module docstring."""

    scopes = (ScopeType.HTTP,)

    def __init__(
        self,
        anonymous: SharedBuckets,
        token: SharedBuckets,
        trusted_proxies: tuple[Network, ...] = (),
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.anonymous = anonymous
        self.token = token
        self.trusted_proxies = trusted_proxies
        self.pause = pause
        self._held = 0  # refusals being held back; one event loop, so no lock

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        route = route_of(request_path(scope))
        if route == "unlimited":
            await next_app(scope, receive, send)
            return
        address = client_address(scope, self.trusted_proxies)
        if route in ("token", "open"):
            buckets = self.token if route == "token" else self.anonymous
            wait = await buckets.take(address)
            if wait > 0:
                await self._refuse(send, scope, wait, buckets.limit)
                return
            await next_app(scope, receive, send)
            return
        # Guarded: only failures count, and an address out of them is refused unread.
        wait = await self.anonymous.wait(address)
        if wait > 0:
            await self._refuse(send, scope, wait, self.anonymous.limit)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, watch)
        except HTTPException as error:
            # The authentication middleware raises; the app's handler answers further out.
            if error.status_code == HTTP_401_UNAUTHORIZED:
                await self.anonymous.charge(address)
            raise
        if status == HTTP_401_UNAUTHORIZED:
            await self.anonymous.charge(address)

    async def _refuse(self, send: Send, scope: Scope, wait: float, limit: RateLimit) -> None:
        """The 429 comes after a pause of up to ``REFUSAL_PAUSE`` seconds: a stranger who
        floods through a few connections, waiting for each answer, is slowed to about one
        request a second on each, for the price of a sleeping coroutine. Past
        ``MAX_HELD_REFUSALS`` at once, the answer is immediate (memory stays bounded)."""
        if self._held < MAX_HELD_REFUSALS:
            self._held += 1
            try:
                await self.pause(min(REFUSAL_PAUSE, wait))
            finally:
                self._held -= 1
        await refuse(send, scope, wait, limit)


class RateLimitMiddleware(ASGIMiddleware):
    """Per principal, after authentication."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, buckets: SharedBuckets) -> None:
        self.buckets = buckets

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        principal = scope.get("user")
        if not isinstance(principal, Principal):
            await next_app(scope, receive, send)
            return
        wait = await self.buckets.take(f"{principal.kind}:{principal.subject}")
        if wait > 0:
            await refuse(send, scope, wait, self.buckets.limit)
            return
        await next_app(scope, receive, send)
