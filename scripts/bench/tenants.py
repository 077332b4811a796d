"""Tenants for a benchmark to measure: the platform operator registers them and gives each
an integration client; tokens are fetched again before they expire."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import httpx
from harness import HTTP_TIMEOUT, Server, create_operator_client, fetch_token

from training.core.access import Scope

# A token lives 900 s (TRAINING_TOKEN_TTL); a long benchmark fetches a new one before then.
TOKEN_REFRESH_SECONDS = 600.0
ALL_SCOPES: tuple[str, ...] = tuple(str(scope) for scope in Scope)
MEMBER_SCOPES: tuple[str, ...] = (str(Scope.MEMBERS_READ), str(Scope.MEMBERS_WRITE))


def checked(response: httpx.Response) -> httpx.Response:
    """A setup request must succeed: without it there is nothing to measure."""
    if response.status_code >= 400:
        request = response.request
        msg = f"{request.method} {request.url.path}: {response.status_code} {response.text[:500]}"
        raise RuntimeError(msg)
    return response


class _Credentials:
    """Client credentials and a token fetched again before it expires."""

    def __init__(self, server: Server, credentials: tuple[str, str]) -> None:
        self.server = server
        self.credentials = credentials
        self._token = ""
        self._token_at = 0.0

    def token(self) -> str:
        if time.monotonic() - self._token_at > TOKEN_REFRESH_SECONDS:
            self._token = fetch_token(self.server, self.credentials)
            self._token_at = time.monotonic()
        return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


class Tenant(_Credentials):
    """A tenant a benchmark measures, through an integration client of its own."""

    def __init__(
        self, server: Server, tenant_id: uuid.UUID, seat_limit: int, credentials: tuple[str, str]
    ) -> None:
        super().__init__(server, credentials)
        self.tenant_id = tenant_id
        self.seat_limit = seat_limit

    def client(self) -> httpx.Client:
        """One keep-alive connection, as one integration client holds."""
        return httpx.Client(
            base_url=self.server.base_url, headers=self.headers(), timeout=HTTP_TIMEOUT
        )


class Operator(_Credentials):
    """The platform operator: registers tenants and gives them integration clients."""

    def __init__(self, server: Server) -> None:
        super().__init__(server, create_operator_client(server))

    def attach(self, server: Server) -> None:
        """Talks to a new start of serve: on another port, so another issuer, so a new token."""
        self.server = server
        self._token_at = 0.0

    def register_tenant(self, http: httpx.Client, slug: str, seat_limit: int) -> uuid.UUID:
        body = {"slug": slug, "name": f"Bench {slug}", "seat_limit": seat_limit}
        response = checked(http.post("/v1/tenants", json=body, headers=self.headers()))
        return uuid.UUID(response.json()["tenant_id"])

    def tenant(
        self, seat_limit: int, scopes: Sequence[str] = MEMBER_SCOPES, slug: str | None = None
    ) -> Tenant:
        """A new tenant of ``seat_limit`` seats and an integration client holding ``scopes``."""
        with httpx.Client(base_url=self.server.base_url, timeout=HTTP_TIMEOUT) as http:
            tenant_id = self.register_tenant(
                http, slug or f"bench-{uuid.uuid4().hex[:8]}", seat_limit
            )
            body = {"name": "HRIS", "scopes": list(scopes)}
            created = checked(
                http.post(f"/v1/tenants/{tenant_id}/clients", json=body, headers=self.headers())
            ).json()
        credentials = (str(created["client_id"]), str(created["client_secret"]))
        return Tenant(self.server, tenant_id, seat_limit, credentials)


def published_curriculum(http: httpx.Client, title: str, modules: int = 1) -> tuple[str, int]:
    """A tenant's curriculum of ``modules`` lab modules, published: its id and version.
    ``http`` carries the tenant's token."""
    curriculum = checked(http.post("/v1/curricula", json={"title": title})).json()
    curriculum_id = str(curriculum["curriculum_id"])
    for number in range(1, modules + 1):
        module = {
            "key": f"m{number}",
            "title": f"M{number}",
            "format": "lab",
            "duration_minutes": 60,
        }
        checked(http.post(f"/v1/curricula/{curriculum_id}/modules", json=module))
    published = checked(http.post(f"/v1/curricula/{curriculum_id}/publish", json={})).json()
    return curriculum_id, int(published["version"])


def scheduled_cohort(
    http: httpx.Client, curriculum: tuple[str, int], capacity: int, name: str = "Bench cohort"
) -> str:
    """A cohort of the curriculum's version, in 2030: its id."""
    body = {
        "name": name,
        "curriculum_id": curriculum[0],
        "curriculum_version": curriculum[1],
        "starts_on": "2030-01-07",
        "ends_on": "2030-03-29",
        "timezone": "Europe/Berlin",
        "capacity": capacity,
    }
    return str(checked(http.post("/v1/cohorts", json=body)).json()["cohort_id"])
