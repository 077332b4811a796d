"""Bursts of commands on one aggregate, over real HTTP, with clients that never retry.

Sixty people enrolled one request each into one cohort, and ninety members registered eight
at a time (every registration takes a seat on the tenant's one seat roster), all answer
success on their first request: concurrent commands on the same aggregate take turns inside
the process and retry with back-off within the command bus's time budget, so a 409 is left
for real conflicts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import pytest

from tests.api.races import (
    at_the_same_moment,
    import_engineers,
    open_cohort,
    seated_and_waiting,
)
from tests.helpers import ALL_SCOPES, system_context
from tests.live_server import client_token, live_server
from training.bootstrap import Services
from training.cohorts.domain.cohorts import Cohort
from training.infra.database import Database
from training.people.domain.seats import SeatRoster
from training.tenancy.handlers import RegisterApiClient, RegisterTenant

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
    with live_server(database) as server:
        slug = f"burst-{uuid.uuid4().hex[:8]}"
        bus = server.services.bus
        tenant = bus.execute(system_context(), RegisterTenant(slug, slug.title(), SEATS)).result
        command = RegisterApiClient(tenant.tenant_id, f"{slug} integration", ALL_SCOPES)
        credentials = bus.execute(system_context(), command).result
        token = client_token(server.base_url, credentials)
        yield Served(server.base_url, server.services, tenant.tenant_id, token)


def engineers(served: Served, count: int) -> list[str]:
    return import_engineers(served.services, served.tenant_id, count, "burst")


def cohort(served: Served, capacity: int) -> str:
    headers = {"Authorization": f"Bearer {served.token}"}
    with httpx.Client(base_url=served.base_url, headers=headers) as http:
        return open_cohort(http.request, "Burst", capacity)


async def burst(
    base_url: str, token: str, requests: list[tuple[str, dict[str, Any]]], at_a_time: int
) -> list[httpx.Response]:
    """POSTs every request once, ``at_a_time`` in flight, all released at the same moment."""
    slots = asyncio.Semaphore(at_a_time)
    headers = {"Authorization": f"Bearer {token}"}

    async def send(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
        async with slots:
            return await client.post(path, json=body, headers=headers)

    sends = [partial(send, path=path, body=body) for path, body in requests]
    return await at_the_same_moment(base_url, sends, connections=at_a_time)


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
    seated, waiting = seated_and_waiting(responses, member_ids, capacity)
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
