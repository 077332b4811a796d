"""Bursts of commands on one aggregate, over real HTTP, with clients that never retry.

Sixty people enrolled one request each into one cohort, and ninety members registered eight
at a time (every registration takes a seat on the tenant's one seat roster), all answer
success on their first request: concurrent commands on the same aggregate take turns inside
the process and retry with back-off within the command bus's time budget, so a 409 is left
for real conflicts.
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
import pytest
import uvicorn

from tests.conftest import make_settings
from tests.helpers import ALL_SCOPES, basic, system_context
from training.api.app import create_app
from training.api.services import Services
from training.application.context import Actor, ActorKind, CommandContext
from training.application.imports import ImportMembers, MemberRow
from training.application.tenancy import RegisterApiClient, RegisterTenant
from training.bootstrap import build_services
from training.domain.access import Role
from training.domain.cohorts import Cohort
from training.domain.people import Member, SeatRoster
from training.infra.database import Database

START_TIMEOUT = 30.0
SEATS = 200


@dataclass(frozen=True)
class Served:
    base_url: str
    services: Services
    tenant_id: uuid.UUID
    token: str


@pytest.fixture(scope="module")
def served(database: Database) -> Iterator[Served]:
    """uvicorn serving the app (with its lifespan: read pool, projection runners) on a free
    loopback port, and the HR client of a tenant with room for every registration."""
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
        slug = f"burst-{uuid.uuid4().hex[:8]}"
        bus = services.bus
        tenant = bus.execute(system_context(), RegisterTenant(slug, slug.title(), SEATS)).result
        command = RegisterApiClient(tenant.tenant_id, f"{slug} integration", ALL_SCOPES)
        credentials = bus.execute(system_context(), command).result
        base_url = f"http://127.0.0.1:{port}"
        issued = httpx.post(
            f"{base_url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
        )
        assert issued.status_code == 200, issued.text
        yield Served(base_url, services, tenant.tenant_id, issued.json()["access_token"])
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
        services.app.close()


def call(served: Served, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {served.token}"}
    response = httpx.request(method, served.base_url + path, json=body, headers=headers)
    assert response.is_success, response.text
    return dict(response.json())


def engineers(served: Served, count: int) -> list[str]:
    prefix = uuid.uuid4().hex[:6]
    rows = tuple(
        MemberRow(i, f"{prefix}-{i}", f"Engineer {i}", None, (Role.ENGINEER,), None, None, None)
        for i in range(1, count + 1)
    )
    context = CommandContext(Actor(ActorKind.CLIENT, "tc_burst"), "burst", served.tenant_id)
    outcome = served.services.bus.execute(context, ImportMembers(rows))
    assert all(row.result == "created" for row in outcome.result)
    return [str(Member.create_id(served.tenant_id, row.external_id)) for row in rows]


def cohort(served: Served, capacity: int) -> str:
    curriculum_id = call(served, "POST", "/v1/curricula", {"title": "Burst"})["curriculum_id"]
    module = {"key": "m1", "title": "M1", "format": "lab", "duration_minutes": 30}
    call(served, "POST", f"/v1/curricula/{curriculum_id}/modules", module)
    version = call(served, "POST", f"/v1/curricula/{curriculum_id}/publish", {})["version"]
    created = call(
        served,
        "POST",
        "/v1/cohorts",
        {
            "name": "Burst",
            "curriculum_id": curriculum_id,
            "curriculum_version": version,
            "starts_on": "2030-01-07",
            "ends_on": "2030-02-07",
            "timezone": "Europe/Paris",
            "capacity": capacity,
        },
    )
    return str(created["cohort_id"])


async def burst(
    base_url: str, token: str, requests: list[tuple[str, dict[str, Any]]], at_a_time: int
) -> list[httpx.Response]:
    """POSTs every request once, ``at_a_time`` in flight, all released at the same moment."""
    start = asyncio.Event()
    slots = asyncio.Semaphore(at_a_time)
    headers = {"Authorization": f"Bearer {token}"}

    async def send(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
        await start.wait()
        async with slots:
            return await client.post(path, json=body, headers=headers)

    limits = httpx.Limits(max_connections=at_a_time)
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:
        # Open the connections first, so the race is between commands, not TCP handshakes.
        await asyncio.gather(*(client.get("/healthz") for _ in range(at_a_time)))
        tasks = [asyncio.create_task(send(client, path, body)) for path, body in requests]
        await asyncio.sleep(0.05)
        start.set()
        return list(await asyncio.gather(*tasks))


def refusals(responses: list[httpx.Response], expected: int) -> list[str]:
    return [r.text for r in responses if r.status_code != expected]


def seats_taken(served: Served) -> int:
    roster_id = SeatRoster.create_id(served.tenant_id)
    if not served.services.app.recorder.select_events(roster_id, limit=1):
        return 0
    roster = served.services.app.repository.get(roster_id)
    assert isinstance(roster, SeatRoster)
    return roster.taken


def test_sixty_single_enrolments_into_one_cohort_all_succeed(served: Served) -> None:
    capacity = 20
    cohort_id = cohort(served, capacity)
    member_ids = engineers(served, 60)
    path = f"/v1/cohorts/{cohort_id}/enrolments"
    requests = [(path, {"member_ids": [member_id]}) for member_id in member_ids]

    responses = asyncio.run(burst(served.base_url, served.token, requests, at_a_time=60))

    assert refusals(responses, 200) == []
    seated = [m for r in responses for m in r.json()["enrolled"]]
    waiting = [m for r in responses for m in r.json()["waitlisted"]]
    assert len(seated) == capacity
    assert sorted(seated + waiting) == sorted(member_ids)
    stored = served.services.app.repository.get(uuid.UUID(cohort_id))
    assert isinstance(stored, Cohort)
    assert sorted(map(str, stored.enrolled)) == sorted(seated)
    assert sorted(map(str, stored.waitlist)) == sorted(waiting)


def test_ninety_registrations_eight_at_a_time_all_succeed(served: Served) -> None:
    prefix = uuid.uuid4().hex[:6]
    requests = [
        (
            "/v1/members",
            {
                "external_id": f"{prefix}-{i}",
                "display_name": f"Engineer {i}",
                "email": f"{prefix}-{i}@example.com",
                "roles": ["engineer"],
            },
        )
        for i in range(90)
    ]
    before = seats_taken(served)

    responses = asyncio.run(burst(served.base_url, served.token, requests, at_a_time=8))

    assert refusals(responses, 201) == []
    assert len({r.json()["member_id"] for r in responses}) == 90
    assert seats_taken(served) == before + 90
