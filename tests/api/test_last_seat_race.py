"""The race for the last seat, over real HTTP.

uvicorn serves the app (with its lifespan: read pool, projection runners) on a free loopback
port in a background thread, and concurrent enrolment requests for different engineers hit
it at the same moment. Each request is one command that writes the cohort's next version;
the losers of the race run again on the fresh cohort and find it full. Exactly ``capacity``
people get a seat, everyone else is waitlisted, and the read model agrees with the cohort.
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
from tests.helpers import ALL_SCOPES, basic, register_tenant_with_client
from training.api.app import create_app
from training.api.services import Services
from training.application.context import Actor, ActorKind, CommandContext
from training.application.imports import ImportMembers, MemberRow
from training.bootstrap import build_services
from training.domain.access import Role
from training.domain.cohorts import Cohort
from training.domain.people import Member
from training.infra.database import Database

START_TIMEOUT = 30.0
ATTEMPTS = 10  # a client retries a 409 concurrent-modification, as its Retry-After invites


@dataclass(frozen=True)
class Served:
    base_url: str
    services: Services


@pytest.fixture(scope="module")
def served(database: Database) -> Iterator[Served]:
    # A fresh services object: the lifespan opens and closes its pools and runners.
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


@dataclass
class Hr:
    http: httpx.Client
    token: str
    tenant_id: uuid.UUID
    position: int = 0

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Training-Position": str(self.position)}

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, url, headers=self.headers(), **kwargs)
        self.track(response)
        return response

    def track(self, response: httpx.Response) -> None:
        if "training-position" in response.headers:
            self.position = max(self.position, int(response.headers["training-position"]))


@pytest.fixture(scope="module")
def hr(served: Served) -> Iterator[Hr]:
    tenant_id, credentials = register_tenant_with_client(
        served.services, f"race-{uuid.uuid4().hex[:8]}", ALL_SCOPES
    )
    with httpx.Client(base_url=served.base_url, timeout=30.0) as http:
        issued = http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
        )
        assert issued.status_code == 200, issued.text
        yield Hr(http, issued.json()["access_token"], tenant_id)


def engineers(served: Served, hr: Hr, count: int) -> list[str]:
    tenant_id = hr.tenant_id
    prefix = uuid.uuid4().hex[:6]
    rows = tuple(
        MemberRow(i, f"{prefix}-{i}", f"Engineer {i}", None, (Role.ENGINEER,), None, None, None)
        for i in range(1, count + 1)
    )
    context = CommandContext(Actor(ActorKind.CLIENT, "tc_race"), "race", tenant_id)
    outcome = served.services.bus.execute(context, ImportMembers(rows))
    assert all(row.result == "created" for row in outcome.result)
    return [str(Member.create_id(tenant_id, row.external_id)) for row in rows]


def cohort_of_one_seat(hr: Hr, capacity: int = 1) -> str:
    curriculum = hr.call("POST", "/v1/curricula", json={"title": f"C {uuid.uuid4().hex[:6]}"})
    curriculum_id = curriculum.json()["curriculum_id"]
    module = {"key": "m1", "title": "M1", "format": "lab", "duration_minutes": 30}
    assert hr.call("POST", f"/v1/curricula/{curriculum_id}/modules", json=module).is_success
    published = hr.call("POST", f"/v1/curricula/{curriculum_id}/publish", json={})
    assert published.status_code == 200, published.text
    created = hr.call(
        "POST",
        "/v1/cohorts",
        json={
            "name": "Last seat",
            "curriculum_id": curriculum_id,
            "curriculum_version": published.json()["version"],
            "starts_on": "2030-01-07",
            "ends_on": "2030-02-07",
            "timezone": "Europe/Paris",
            "capacity": capacity,
        },
    )
    assert created.status_code == 201, created.text
    return str(created.json()["cohort_id"])


async def race(base_url: str, hr: Hr, cohort_id: str, member_ids: list[str]) -> list[Any]:
    """One request per engineer, all sent at the same moment."""
    start = asyncio.Event()

    async def enrol(client: httpx.AsyncClient, member_id: str) -> httpx.Response:
        await start.wait()
        for _attempt in range(ATTEMPTS):
            response = await client.post(
                f"/v1/cohorts/{cohort_id}/enrolments",
                json={"member_ids": [member_id]},
                headers={"Authorization": f"Bearer {hr.token}"},
            )
            if not response.headers.get("content-type", "").startswith("application/problem"):
                return response
            if not response.json()["type"].endswith("concurrent-modification"):
                return response
            await asyncio.sleep(0.02)
        return response

    limits = httpx.Limits(max_connections=len(member_ids))
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:
        # Open the connections first, so the race is between commands, not TCP handshakes.
        await asyncio.gather(*(client.get("/healthz") for _ in member_ids))
        tasks = [asyncio.create_task(enrol(client, member_id)) for member_id in member_ids]
        await asyncio.sleep(0.05)
        start.set()
        return list(await asyncio.gather(*tasks))


def check_outcome(
    served: Served, hr: Hr, cohort_id: str, member_ids: list[str], capacity: int
) -> None:
    responses = asyncio.run(race(served.base_url, hr, cohort_id, member_ids))
    assert [r.status_code for r in responses] == [200] * len(member_ids), [
        r.text for r in responses if r.status_code != 200
    ]
    for response in responses:
        hr.track(response)
    seated = [m for r in responses for m in r.json()["enrolled"]]
    waiting = [m for r in responses for m in r.json()["waitlisted"]]
    assert len(seated) == capacity
    assert sorted(seated + waiting) == sorted(member_ids)

    cohort = served.services.app.repository.get(uuid.UUID(cohort_id))
    assert isinstance(cohort, Cohort)
    assert sorted(str(m) for m in cohort.enrolled) == sorted(seated)
    assert len(cohort.waitlist) == len(member_ids) - capacity

    def listed(status: str) -> list[str]:
        page = hr.call("GET", f"/v1/cohorts/{cohort_id}/enrolments", params={"status": status})
        assert page.status_code == 200, page.text
        return [item["member_id"] for item in page.json()["items"]]

    assert listed("enrolled") == [str(m) for m in cohort.enrolled]  # in the cohort's order
    assert listed("waitlisted") == [str(m) for m in cohort.waitlist]  # in the cohort's order
    summary = hr.call("GET", f"/v1/cohorts/{cohort_id}").json()
    assert (summary["enrolled"], summary["waitlisted"]) == (capacity, len(waiting))


def test_two_engineers_race_for_the_last_seat(served: Served, hr: Hr) -> None:
    cohort_id = cohort_of_one_seat(hr)
    check_outcome(served, hr, cohort_id, engineers(served, hr, 2), capacity=1)


def test_ten_engineers_race_for_one_seat(served: Served, hr: Hr) -> None:
    cohort_id = cohort_of_one_seat(hr)
    check_outcome(served, hr, cohort_id, engineers(served, hr, 10), capacity=1)


def test_ten_engineers_race_for_three_seats(served: Served, hr: Hr) -> None:
    cohort_id = cohort_of_one_seat(hr, capacity=3)
    check_outcome(served, hr, cohort_id, engineers(served, hr, 10), capacity=3)
