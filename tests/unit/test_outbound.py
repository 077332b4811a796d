"""The outbound policy against a real HTTPS server on 127.0.0.1 and a resolver the test controls.

Outside development only public addresses are reached, checked on the address the
connection really goes to; nothing is followed, nothing large or slow is waited for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.stand_in_idp import (
    IDP_HOST,
    INTRANET_HOST,
    LOOPBACK_HOST,
    FakeDns,
    Reply,
    StandInServer,
    TestAuthority,
    running,
    stand_in_policy,
    standard_dns,
)
from training.infra.outbound import (
    Answer,
    OutboundError,
    OutboundPolicy,
    is_public_address,
)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> TestAuthority:
    return TestAuthority(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def server(authority: TestAuthority) -> Iterator[StandInServer]:
    yield from running(StandInServer(authority.server_context()))


@pytest.fixture(scope="module")
def plain_server() -> Iterator[StandInServer]:
    yield from running(StandInServer(None))


def fetch(policy: OutboundPolicy, url: str) -> Answer:
    async def go() -> Answer:
        return await policy.fetch("GET", url)

    return anyio.run(go)


def refusal(policy: OutboundPolicy, url: str) -> str:
    with pytest.raises(OutboundError) as caught:
        fetch(policy, url)
    return str(caught.value)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",  # noqa: S104 (an address to refuse, not one to bind)
        "224.0.0.251",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.10",
        "198.18.0.1",
        "::",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::a00:1",  # IPv4-compatible
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_a_public_stand_in_is_reached_over_verified_tls(
    authority: TestAuthority, server: StandInServer
) -> None:
    server.routes[(IDP_HOST, "/ok")] = lambda: Reply.json({"ok": True})
    dns = standard_dns()
    answer = fetch(stand_in_policy(authority, dns), server.url(IDP_HOST, "/ok"))
    assert (answer.status, answer.body) == (200, b'{"ok": true}')
    # Resolved once, by our resolver; the connection went to that address.
    assert dns.questions == [IDP_HOST]


def test_the_certificate_is_checked_for_the_host_name_not_the_address(
    authority: TestAuthority, server: StandInServer
) -> None:
    dns = FakeDns({"uncertified.example.test": ["127.0.0.1"]})
    policy = stand_in_policy(
        authority, dns, public_stand_ins=frozenset({"uncertified.example.test"})
    )
    before = len(server.hits)
    assert "Hostname mismatch" in refusal(policy, server.url("uncertified.example.test", "/ok"))
    assert len(server.hits) == before


def test_loopback_by_name_or_address_is_refused_before_connecting(
    authority: TestAuthority, server: StandInServer
) -> None:
    policy = stand_in_policy(authority, standard_dns())
    before = len(server.hits)
    assert "not a public address" in refusal(policy, server.url(LOOPBACK_HOST, "/ok"))
    assert "not a public address" in refusal(policy, server.url("127.0.0.1", "/ok"))
    assert "not a public address" in refusal(policy, server.url("[::1]", "/ok"))
    assert "not a public address" in refusal(policy, f"https://localhost:{server.port}/ok")
    assert len(server.hits) == before


def test_private_mapped_and_mixed_answers_are_refused() -> None:
    dns = FakeDns(
        {
            INTRANET_HOST: ["10.20.30.40"],
            "metadata.example.test": ["169.254.169.254"],
            "mapped.example.test": ["::ffff:127.0.0.1"],
            "cgnat.example.test": ["100.64.1.2"],
            # One bad address among good ones is enough to refuse the name.
            "mixed.example.test": ["93.184.216.34", "192.168.0.10"],
        }
    )
    policy = OutboundPolicy(resolver=dns)
    for host in dns.table:
        message = refusal(policy, f"https://{host}/.well-known/openid-configuration")
        assert "not a public address" in message, message


def test_the_address_checked_is_the_address_connected_to(
    authority: TestAuthority, server: StandInServer
) -> None:
    class Rebinding(FakeDns):
        """Public (a stand-in) the first time, private afterwards."""

        async def __call__(self, host: str, port: int) -> list[ipaddress.IPv4Address]:  # type: ignore[override]
            self.questions.append(host)
            first = len(self.questions) == 1
            return [ipaddress.IPv4Address("127.0.0.1" if first else "10.9.9.9")]

    server.routes[(IDP_HOST, "/rebind")] = lambda: Reply.json({"ok": True})
    dns = Rebinding({})
    answer = fetch(stand_in_policy(authority, dns), server.url(IDP_HOST, "/rebind"))
    assert answer.status == 200
    assert dns.questions == [IDP_HOST]  # nobody asked again before connecting


def test_plain_http_is_refused_outside_development(plain_server: StandInServer) -> None:
    plain_server.routes[("localhost", "/plain")] = lambda: Reply.json({"ok": True})
    url = plain_server.url("localhost", "/plain", scheme="http")
    assert "https only" in refusal(OutboundPolicy(), url)
    assert plain_server.hits == []
    # In development an IdP on this machine is fine.
    assert fetch(OutboundPolicy(development=True), url).status == 200


def test_user_info_in_a_url_is_refused() -> None:
    assert "user info" in refusal(OutboundPolicy(), "https://user:pw@idp.example.com/")


def test_a_redirect_is_an_answer_not_followed(
    authority: TestAuthority, server: StandInServer
) -> None:
    target = server.url(LOOPBACK_HOST, "/secret")
    server.routes[(IDP_HOST, "/moved")] = lambda: Reply(302, {"Location": target})
    server.routes[(LOOPBACK_HOST, "/secret")] = lambda: Reply.json({"secret": True})
    answer = fetch(stand_in_policy(authority, standard_dns()), server.url(IDP_HOST, "/moved"))
    assert answer.status == 302
    assert server.hits_on(LOOPBACK_HOST) == []


def test_a_large_answer_is_dropped_while_reading(
    authority: TestAuthority, server: StandInServer
) -> None:
    policy = stand_in_policy(authority, standard_dns(), max_bytes=1024)
    server.routes[(IDP_HOST, "/announced")] = lambda: Reply(200, {}, [b"x" * 2048])
    assert "announces 2048 bytes" in refusal(policy, server.url(IDP_HOST, "/announced"))
    # Without a length, the body is read until it passes the cap, not to its end.
    server.routes[(IDP_HOST, "/endless")] = lambda: Reply(
        200, {}, (b"y" * 512 for _ in range(10_000)), length=False
    )
    assert "larger than 1024 bytes" in refusal(policy, server.url(IDP_HOST, "/endless"))


def test_a_compressed_answer_is_refused(authority: TestAuthority, server: StandInServer) -> None:
    server.routes[(IDP_HOST, "/gzip")] = lambda: Reply(200, {"Content-Encoding": "gzip"}, [b"x"])
    policy = stand_in_policy(authority, standard_dns())
    assert "compressed" in refusal(policy, server.url(IDP_HOST, "/gzip"))


def test_a_slow_answer_is_given_up_at_the_deadline(
    authority: TestAuthority, server: StandInServer
) -> None:
    # Each byte arrives well within the read timeout; the whole never does.
    server.routes[(IDP_HOST, "/slow")] = lambda: Reply(
        200, {}, [b"{"] + [b" "] * 50, pause=0.1, length=False
    )
    policy = stand_in_policy(authority, standard_dns(), total_timeout=0.5)
    assert "no whole answer within 0.5 s" in refusal(policy, server.url(IDP_HOST, "/slow"))


def test_a_resolver_that_hangs_is_given_up() -> None:
    class Hanging(FakeDns):
        async def __call__(self, host: str, port: int) -> list[ipaddress.IPv4Address]:  # type: ignore[override]
            await anyio.sleep(30)
            return []

    policy = OutboundPolicy(resolver=Hanging({}), connect_timeout=0.2, total_timeout=0.5)
    assert "timed out" in refusal(policy, "https://idp.example.com/")
