"""Requests to URLs a tenant chose (its identity provider), without letting it reach inside.

A tenant admin names an issuer; the issuer's discovery document names more URLs. Fetched
naively, they make the service a proxy into its own network (the cloud metadata service at
169.254.169.254, the database, anything on loopback) and, with errors echoed back, a port
scanner. So every such request goes through ``OutboundPolicy.fetch``:

- **https only** outside development, no user info in the URL;
- **public addresses only** outside development: the host is resolved once, every address
  it resolves to is checked (loopback, private, link-local, CGNAT, multicast, reserved,
  documentation ranges, and IPv6 forms that embed such an IPv4 address are refused), and
  the connection goes to the checked address. The check sits in an httpcore network
  backend, the one place that opens sockets, so a name that resolves elsewhere a second
  time (DNS rebinding) cannot slip past, and TLS still verifies the certificate for the
  host name (httpcore sends the URL's host as SNI);
- **no redirects** (httpcore never follows them: a 3xx is an answer like any other);
- **short timeouts and a size cap**: connect, then the whole exchange within a deadline,
  and the body is read as a stream and dropped past ``max_bytes`` (compressed bodies are
  refused, so the cap is on what is kept in memory).

``OutboundError`` says what went wrong in words meant for the log (host, address, status):
callers turn it into a generic answer for the client.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import anyio
import httpcore
import httpx

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

CONNECT_TIMEOUT = 3.0
TOTAL_TIMEOUT = 5.0
MAX_BYTES = 256 * 1024
USER_AGENT = "training-service"

_REFUSED_IPV4 = tuple(
    ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
_REFUSED_IPV6 = tuple(
    ip_network(n)
    for n in (
        "::/96",  # unspecified, loopback, IPv4-compatible
        "64:ff9b:1::/48",  # local NAT64
        "100::/64",  # discard
        "2001::/23",  # protocol assignments, Teredo
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = ip_network("64:ff9b::/96")


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is on the public internet (an IPv4 address inside IPv6 counts)."""
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
        if any(address in network for network in _REFUSED_IPV6):
            return False
    elif any(address in network for network in _REFUSED_IPV4):
        return False
    return address.is_global and not address.is_multicast


def host_of(url: httpx.URL) -> str:
    """The URL's host as it goes on the wire: lower case, IDNA-encoded, no trailing dot."""
    return url.raw_host.decode("ascii").lower().rstrip(".")


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP literal stands for, else None."""
    try:
        return ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses the system resolver gives for ``host`` (TCP), in its order."""
    answers = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _kind, _proto, _canonical, sockaddr in answers:
        address = literal_address(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    return found


class OutboundError(Exception):
    """A request to a tenant-chosen URL was refused or failed. The message is for the log."""


class AddressRefused(httpcore.ConnectError):
    """The host resolved to an address the policy does not let the service connect to."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass(frozen=True)
class OutboundPolicy:
    """Where the service may connect when a tenant chose the URL, and for how long.

    ``development`` allows plain http and any address (an IdP on this machine).
    ``public_stand_ins`` is for tests only: host names served by a local server that stand
    in for public hosts (their addresses are not checked); it is never set from settings.
    """

    development: bool = False
    connect_timeout: float = CONNECT_TIMEOUT
    total_timeout: float = TOTAL_TIMEOUT
    max_bytes: int = MAX_BYTES
    resolver: Resolver = system_resolver
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)
    public_stand_ins: frozenset[str] = frozenset()

    def check_url(self, url: str) -> httpx.URL:
        """The URL parsed, if its form is acceptable (scheme, host, no user info)."""
        try:
            parsed = httpx.URL(url)
            host = host_of(parsed)
        except (httpx.InvalidURL, TypeError, ValueError):  # idna's errors are ValueErrors
            raise OutboundError("not an absolute URL with a valid host") from None
        schemes = ("https", "http") if self.development else ("https",)
        if parsed.scheme not in schemes:
            raise OutboundError(f"the scheme {parsed.scheme!r} is not allowed (https only)")
        if not host:
            raise OutboundError("the URL has no host")
        if parsed.userinfo:
            raise OutboundError("the URL carries user info")
        address = literal_address(host)
        if address is not None and not self.permits(host, address):
            raise OutboundError(f"{address} is not a public address")
        # RFC 6761: these names are loopback whatever a resolver says.
        if not self.development and (host == "localhost" or host.endswith(".localhost")):
            raise OutboundError(f"{host} is not a public address")
        return parsed

    def permits(self, host: str, address: IPAddress) -> bool:
        return self.development or host in self.public_stand_ins or is_public_address(address)

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        content: bytes | None = None,
    ) -> Answer:
        """One request and its whole answer (at most ``max_bytes``), within the deadline."""
        target = self.check_url(url)
        request_headers = [
            ("Host", target.netloc.decode("ascii")),
            ("User-Agent", USER_AGENT),
            ("Accept-Encoding", "identity"),
            *headers,
        ]
        core_url = httpcore.URL(
            scheme=target.raw_scheme, host=target.raw_host, port=target.port, target=target.raw_path
        )
        timeouts = {
            "connect": self.connect_timeout,
            "read": self.total_timeout,
            "write": self.total_timeout,
            "pool": self.total_timeout,
        }
        pool = httpcore.AsyncConnectionPool(
            ssl_context=self.ssl_context or default_ssl_context(),
            network_backend=_GuardedBackend(self),
            max_connections=1,
            retries=0,
        )
        where = f"{method} {target.scheme}://{target.netloc.decode('ascii')}{target.path}"
        try:
            with anyio.fail_after(self.total_timeout):
                async with pool:
                    stream = pool.stream(
                        method,
                        core_url,
                        headers=request_headers,
                        content=content,
                        extensions={"timeout": timeouts},
                    )
                    async with stream as response:
                        return await self._read(response)
        except TimeoutError:
            raise OutboundError(
                f"{where}: no whole answer within {self.total_timeout:g} s"
            ) from None
        except httpcore.TimeoutException as error:
            raise OutboundError(f"{where}: timed out ({type(error).__name__})") from None
        except AddressRefused as error:
            raise OutboundError(f"{where}: {error}") from None
        except (
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.UnsupportedProtocol,
        ) as error:
            raise OutboundError(f"{where}: {type(error).__name__}: {error}") from None
        except OutboundError as error:
            raise OutboundError(f"{where}: {error}") from None

    async def _read(self, response: httpcore.Response) -> Answer:
        headers: dict[str, str] = {}
        for name, value in response.headers:
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise OutboundError(f"the answer is compressed ({encoding}); only identity is read")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise OutboundError(f"the answer announces {declared} bytes, over {self.max_bytes}")
        body = bytearray()
        async for chunk in response.aiter_stream():
            body += chunk
            if len(body) > self.max_bytes:
                raise OutboundError(f"the answer is larger than {self.max_bytes} bytes")
        return Answer(response.status, headers, bytes(body))


@cache
def default_ssl_context() -> ssl.SSLContext:
    """The trust store httpx uses (certifi), loaded once."""
    return httpcore.default_ssl_context()


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, checks every address, then connects to a checked address."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self._sockets = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        refused = [a for a in addresses if not self.policy.permits(host, a)]
        if refused:
            listed = ", ".join(str(a) for a in refused)
            raise AddressRefused(f"{host} resolves to {listed}, not a public address")
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return await self._sockets.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        raise failure

    async def _addresses(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        literal = literal_address(host)
        if literal is not None:
            return [literal]
        try:
            with anyio.fail_after(timeout):
                return list(await self.policy.resolver(host, port))
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from None
        except OSError as error:
            raise httpcore.ConnectError(f"{host} does not resolve: {error}") from None

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are never used for outbound requests")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
