"""A real HTTPS server on 127.0.0.1 standing in for identity providers on public hosts.

Tests of the outbound policy need "public" hosts without public DNS: ``FakeDns`` maps names
to addresses (a name mapped to 127.0.0.1 is only reachable when the policy lists it in
``public_stand_ins``; every other name is checked like a real one), and ``StandInServer``
answers for several host names (by the Host header) with a certificate from a throwaway CA
that only the test's TLS context trusts.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from training.infra.outbound import IPAddress, OutboundPolicy

# Names the certificate covers. Only some tests make them stand-ins for public hosts.
IDP_HOST = "idp.example.test"
OTHER_HOST = "keys.example.test"
INTRANET_HOST = "intranet.example.test"
LOOPBACK_HOST = "loopback.example.test"
CERTIFIED = (IDP_HOST, OTHER_HOST, INTRANET_HOST, LOOPBACK_HOST)
LOCAL = ipaddress.ip_address("127.0.0.1")


class FakeDns:
    """A resolver answering from a table, counting the questions."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = {
            name: [ipaddress.ip_address(a) for a in found] for name, found in table.items()
        }
        self.questions: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.questions.append(host)
        if host not in self.table:
            raise OSError(f"{host}: name not known")
        return list(self.table[host])


class TestAuthority:
    """A CA and a certificate for ``CERTIFIED`` signed by it, written under ``directory``."""

    __test__ = False

    def __init__(self, directory: Path) -> None:
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test authority")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, IDP_HOST)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in CERTIFIED]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
        self.cert_file = directory / "stand-in.pem"
        self.key_file = directory / "stand-in.key"
        self.cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


@dataclass
class Reply:
    """What a route answers: a status, headers and a body sent in chunks, maybe slowly."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] = ()
    pause: float = 0.0  # before each chunk
    length: bool = True  # send Content-Length (else the body ends when the connection does)

    @classmethod
    def json(cls, body: Any, status: int = 200) -> Reply:
        return cls(status, {"Content-Type": "application/json"}, [json.dumps(body).encode()])


Route = Callable[[], Reply]


class StandInServer:
    """Answers ``(host, path)`` routes over TLS (or plain HTTP) and records every request."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.hits: list[tuple[str, str, str]] = []  # (method, host, path)
        self.bodies: list[bytes] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                server.hits.append((self.command, host, self.path))
                length = int(self.headers.get("Content-Length") or 0)
                server.bodies.append(self.rfile.read(length) if length else b"")
                route = server.routes.get((host, self.path))
                reply = route() if route else Reply.json({"error": "not here"}, 404)
                chunks = list(reply.chunks)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.length:
                    self.send_header("Content-Length", str(sum(len(c) for c in chunks)))
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for chunk in chunks:
                        if reply.pause:
                            time.sleep(reply.pause)
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except OSError:
                    pass  # the client gave up, as it should
                self.close_connection = True

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, host: str, path: str = "", scheme: str = "https") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def hits_on(self, host: str) -> list[tuple[str, str, str]]:
        return [hit for hit in self.hits if hit[1] == host]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class StandInIssuer:
    """An issuer at ``https://{host}:{port}/{name}`` on a stand-in server, with its keys."""

    def __init__(
        self, server: StandInServer, name: str, host: str = IDP_HOST, scheme: str = "https"
    ) -> None:
        self.server = server
        self.name = name
        self.host = host
        self.url = server.url(host, f"/{name}", scheme)
        self.key = RSAKey.generate_key(2048, parameters={"kid": f"{name}-key"})
        self.document: dict[str, Any] = {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        self.serve(f"/{name}/.well-known/openid-configuration", lambda: Reply.json(self.document))
        self.serve(f"/{name}/jwks", lambda: Reply.json(self.jwks()))

    def serve(self, path: str, route: Route, host: str | None = None) -> None:
        self.server.routes[(host or self.host, path)] = route

    def jwks(self) -> dict[str, Any]:
        return KeySet([self.key]).as_dict(private=False)

    def mint(self, **claims: Any) -> str:
        return mint(self.url, self.key, **claims)

    def hits(self) -> list[tuple[str, str, str]]:
        return [hit for hit in self.server.hits if hit[2].startswith(f"/{self.name}/")]


def mint(issuer: str, key: RSAKey, **claims: Any) -> str:
    """An access token as ``issuer`` would sign it with ``key``."""
    now = int(time.time())
    body = {"iss": issuer, "iat": now, "exp": now + 300, **claims}
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "at+jwt"}, body, key)


def stand_in_policy(authority: TestAuthority, dns: FakeDns, **overrides: Any) -> OutboundPolicy:
    """The production policy (not development), with the test's DNS, trust and stand-ins."""
    values: dict[str, Any] = {
        "resolver": dns,
        "ssl_context": authority.client_context(),
        "public_stand_ins": frozenset({IDP_HOST, OTHER_HOST}),
    }
    values.update(overrides)
    return OutboundPolicy(**values)


def standard_dns() -> FakeDns:
    """The stand-ins on 127.0.0.1; an intranet name on a private address; loopback by name."""
    return FakeDns(
        {
            IDP_HOST: ["127.0.0.1"],
            OTHER_HOST: ["127.0.0.1"],
            INTRANET_HOST: ["10.20.30.40"],
            LOOPBACK_HOST: ["127.0.0.1"],
        }
    )


def running(server: StandInServer) -> Iterator[StandInServer]:
    try:
        yield server
    finally:
        server.close()
