"""Token buckets on an injected clock: limiting, refilling, forgetting idle callers; and
which address a request counts against."""

from __future__ import annotations

from typing import Any

import pytest

from training.core.http.ratelimit import (
    Buckets,
    RateLimit,
    address_key,
    client_address,
    parse_networks,
    route_of,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_limits_and_refills_on_the_clock() -> None:
    clock = Clock()
    buckets = Buckets(RateLimit(60, 60.0), clock)
    assert [buckets.take("a") for _ in range(60)] == [0.0] * 60
    assert buckets.take("a") == pytest.approx(1.0)  # one token a second
    assert buckets.take("b") == 0.0  # another caller has a bucket of its own
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0


def test_waiting_looks_without_using_a_token_and_charging_uses_one() -> None:
    clock = Clock()
    buckets = Buckets(RateLimit(2, 10.0), clock)
    assert buckets.wait("a") == 0.0
    assert buckets.wait("a") == 0.0  # looking costs nothing
    buckets.charge("a")
    buckets.charge("a")
    assert buckets.wait("a") == pytest.approx(5.0)
    buckets.charge("a")  # charging an empty bucket keeps it empty, not in debt
    assert buckets.wait("a") == pytest.approx(5.0)
    clock.now += 5.0
    assert buckets.wait("a") == 0.0


def test_idle_buckets_are_forgotten() -> None:
    clock = Clock()
    buckets = Buckets(RateLimit(60, 60.0), clock)
    for caller in range(100_000):
        buckets.take(f"address:{caller}")
    assert len(buckets) == 100_000
    clock.now += 30.0
    buckets.take("late")
    assert len(buckets) == 100_001  # half a window: they may still be owed tokens
    clock.now += 30.0
    buckets.take("late")
    assert len(buckets) == 1  # a whole window: full again, so gone; "late" stays
    clock.now += 60.0
    buckets.wait("anyone")
    assert len(buckets) == 0


def test_a_forgotten_bucket_is_exactly_a_full_one() -> None:
    clock = Clock()
    buckets = Buckets(RateLimit(3, 60.0), clock)
    for _ in range(3):
        buckets.take("a")
    assert buckets.take("a") > 0
    clock.now += 60.0
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") > 0


@pytest.mark.parametrize("text", ["0/60", "10/0", "ten/60", "5/-1", "5/inf", "5/nan"])
def test_a_limit_is_parsed_strictly(text: str) -> None:
    with pytest.raises(ValueError):
        RateLimit.parse(text)


def scope(client: str, *forwarded: str) -> dict[str, Any]:
    return {
        "client": (client, 40000),
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


def test_the_peer_is_the_address_and_forwarded_for_is_ignored_by_default() -> None:
    assert client_address(scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    assert client_address({"headers": []}) == "unknown"


def test_forwarded_for_is_read_only_from_a_trusted_proxy() -> None:
    proxies = parse_networks(["10.0.0.0/8", "127.0.0.1"])
    # The proxy appends the peer it saw; what the caller wrote is further left.
    assert client_address(scope("10.1.2.3", "6.6.6.6, 198.51.100.7"), proxies) == ("198.51.100.7")
    # Hops through several trusted proxies, in one header or several.
    assert client_address(scope("127.0.0.1", "198.51.100.7", "10.9.9.9"), proxies) == (
        "198.51.100.7"
    )
    # An untrusted peer cannot choose its address.
    assert client_address(scope("203.0.113.9", "198.51.100.7"), proxies) == "203.0.113.9"
    # A trusted proxy that forwards nothing is the caller itself.
    assert client_address(scope("10.1.2.3"), proxies) == "10.1.2.3"


def test_ipv6_callers_count_by_their_64_block() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("x" * 500) == "x" * 64


def test_which_routes_are_limited_how() -> None:
    assert route_of("/healthz") == "unlimited"
    assert route_of("/readyz") == "unlimited"
    assert route_of("/oauth2/token") == "token"
    assert route_of("/calendar/a/b/c.ics") == "open"
    assert route_of("/auth/acme/login") == "open"
    assert route_of("/auth/acme/callback") == "open"
    assert route_of("/.well-known/jwks.json") == "open"
    assert route_of("/scim/v2/t/Users") == "guarded"
    assert route_of("/v1/tenants") == "guarded"
