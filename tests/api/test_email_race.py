"""One email, one member, over real HTTP: concurrent SCIM creates, API registrations, and an
import racing a SCIM create, against uvicorn on loopback.

Each request that checks the email before its command can pass the check at the same moment
as another; the unique constraint on the stored emails, written in the events' transaction,
lets exactly one of them commit. The others answer 409 (SCIM: ``scimType: uniqueness``), or
report the row as invalid in an import while the rest of its batch lands.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from tests.conftest import make_settings
from tests.helpers import ALL_SCOPES, basic, register_tenant_with_client
from training.api.app import create_app
from training.api.services import Services
from training.bootstrap import build_services
from training.infra.database import Database

START_TIMEOUT = 30.0
RACERS = 8
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Served:
    base_url: str
    services: Services


@pytest.fixture(scope="module")
def served(database: Database) -> Iterator[Served]:
    services = build_services(make_settings(), database, run_projections=True)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(services), lifespan="on", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
        services.app.close()


@dataclass(frozen=True)
class Tenant:
    tenant_id: uuid.UUID
    token: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def tenant(served: Served) -> Tenant:
    tenant_id, credentials = register_tenant_with_client(
        served.services, f"email-{uuid.uuid4().hex[:8]}", (*ALL_SCOPES, "scim")
    )
    with httpx.Client(base_url=served.base_url, timeout=30.0) as http:
        issued = http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
        )
    assert issued.status_code == 200, issued.text
    return Tenant(tenant_id, str(issued.json()["access_token"]))


def holders(database: Database, tenant: Tenant, email: str) -> list[uuid.UUID]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT member_id FROM training.people WHERE tenant_id = %s AND email = %s",
            (tenant.tenant_id, email),
        ).fetchall()
    return [row[0] for row in rows]


async def at_once(base_url: str, requests: list[tuple[str, str, dict[str, Any]]]) -> list[Any]:
    """Sends the requests at the same moment over connections opened beforehand."""
    start = asyncio.Event()

    async def send(client: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any]) -> Any:
        await start.wait()
        return await client.request(method, url, **kwargs)

    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:
        await asyncio.gather(*(client.get("/healthz") for _ in requests))
        tasks = [asyncio.create_task(send(client, m, u, k)) for m, u, k in requests]
        await asyncio.sleep(0.05)
        start.set()
        return list(await asyncio.gather(*tasks))


def test_concurrent_scim_creates_with_one_email_make_one_member(
    served: Served, database: Database, tenant: Tenant
) -> None:
    email = f"twin-{uuid.uuid4().hex[:8]}@example.test"
    scim = f"/scim/v2/{tenant.tenant_id}/Users"
    requests = [
        (
            "POST",
            scim,
            {
                "json": {
                    "schemas": [USER],
                    "userName": email,
                    "externalId": f"hr-{i}",
                    "active": True,
                },
                "headers": {**tenant.headers(), "Content-Type": "application/scim+json"},
            },
        )
        for i in range(RACERS)
    ]
    responses = asyncio.run(at_once(served.base_url, requests))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (RACERS - 1), [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["scimType"] == "uniqueness"
        assert email not in refused.text
    [created] = [r for r in responses if r.status_code == 201]
    assert holders(database, tenant, email) == [uuid.UUID(created.json()["id"])]


def test_concurrent_registrations_with_one_email_make_one_member(
    served: Served, database: Database, tenant: Tenant
) -> None:
    email = f"twin-{uuid.uuid4().hex[:8]}@example.test"
    requests = [
        (
            "POST",
            "/v1/members",
            {
                "json": {
                    "external_id": f"E{i}",
                    "display_name": f"Twin {i}",
                    "email": email,
                    "roles": ["engineer"],
                },
                "headers": tenant.headers(),
            },
        )
        for i in range(RACERS)
    ]
    responses = asyncio.run(at_once(served.base_url, requests))
    assert sorted(r.status_code for r in responses) == [201] + [409] * (RACERS - 1)
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert refused.json()["errors"][0]["field"] == "email"
    assert len(holders(database, tenant, email)) == 1


def test_an_import_racing_a_scim_create_reports_the_row_and_lands_the_rest(
    served: Served, database: Database, tenant: Tenant
) -> None:
    email = f"twin-{uuid.uuid4().hex[:8]}@example.test"
    rows = [
        f"IMP-{i},Imported {i},imported-{i}-{uuid.uuid4().hex[:6]}@example.test,engineer"
        for i in range(40)
    ]
    rows[20] = f"IMP-20,Imported twin,{email},engineer"
    csv = "external_id,display_name,email,roles\n" + "\n".join(rows) + "\n"
    scim = f"/scim/v2/{tenant.tenant_id}/Users"
    requests = [
        (
            "POST",
            "/v1/member-imports",
            {"content": csv, "headers": {**tenant.headers(), "Content-Type": "text/csv"}},
        ),
        *(
            (
                "POST",
                scim,
                {
                    "json": {
                        "schemas": [USER],
                        "userName": email,
                        "externalId": f"idp-{i}",
                        "active": True,
                    },
                    "headers": {**tenant.headers(), "Content-Type": "application/scim+json"},
                },
            )
            for i in range(RACERS - 1)
        ),
    ]
    accepted, *creates = asyncio.run(at_once(served.base_url, requests))
    assert accepted.status_code == 202, accepted.text
    with httpx.Client(base_url=served.base_url, headers=tenant.headers(), timeout=30.0) as http:
        deadline = time.monotonic() + 120.0
        while True:
            job = http.get(accepted.json()["status_url"]).json()
            if job["status"] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
    assert job["status"] == "completed", job
    scim_won = [r for r in creates if r.status_code == 201]
    assert all(r.status_code in (201, 409) for r in creates), [r.text for r in creates]
    # Exactly one member has the email, whoever won; the other rows landed either way.
    [holder] = holders(database, tenant, email)
    if scim_won:
        assert [uuid.UUID(scim_won[0].json()["id"])] == [holder]
        assert (job["created"], job["failed"]) == (39, 1)
        assert job["errors"] == [
            {"row": 22, "field": "email", "message": "another member of this tenant has this email"}
        ]
    else:
        assert (job["created"], job["failed"]) == (40, 0)
    assert len(scim_won) <= 1


def test_changing_an_email_to_a_taken_one_is_the_same_conflict(
    served: Served, tenant: Tenant
) -> None:
    with httpx.Client(base_url=served.base_url, headers=tenant.headers(), timeout=30.0) as http:
        ids = []
        for local in ("first", "second"):
            created = http.post(
                "/v1/members",
                json={
                    "external_id": f"{local}-{uuid.uuid4().hex[:6]}",
                    "display_name": local,
                    "email": f"{local}-{tenant.tenant_id.hex[:6]}@example.test",
                    "roles": ["engineer"],
                },
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["member_id"])
        taken = f"first-{tenant.tenant_id.hex[:6]}@example.test"
        changed = http.patch(f"/v1/members/{ids[1]}", json={"email": taken.upper()})
        assert changed.status_code == 409, changed.text
        assert changed.headers["content-type"].startswith(PROBLEM)
        assert changed.json()["errors"][0]["field"] == "email"
        user = f"/scim/v2/{tenant.tenant_id}/Users/{ids[1]}"
        patched = http.patch(
            user,
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "userName", "value": taken}],
            },
            headers={"Content-Type": "application/scim+json"},
        )
        assert patched.status_code == 409, patched.text
        assert patched.json()["scimType"] == "uniqueness"
