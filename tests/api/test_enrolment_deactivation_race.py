"""Enrolments racing deactivations of the same people, over real HTTP.

uvicorn serves the app (with its lifespan: read pool, projection runners) on a loopback
port, and for every engineer an enrolment and a deactivation are sent at the same moment.
Whatever the interleaving, nobody deactivated stays in the cohort: an enrolment that
committed first is undone by the deactivation (which withdraws the person), and an
enrolment the deactivation overtook is refused when it runs again. In particular, no
enrolment commits after the deactivation of someone it places, which is what the check of
the seat roster alone allowed.
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
from training.domain.cohorts import Cohort, Participation
from training.domain.people import Member
from training.infra.database import Database

START_TIMEOUT = 30.0
ATTEMPTS = 20  # a client retries a 409 concurrent-modification, as its Retry-After invites
PEOPLE = 16


@dataclass(frozen=True)
class Served:
    base_url: str
    services: Services
    token: str
    tenant_id: uuid.UUID


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
        tenant_id, credentials = register_tenant_with_client(
            services, f"rd-{uuid.uuid4().hex[:8]}", ALL_SCOPES
        )
        base_url = f"http://127.0.0.1:{port}"
        issued = httpx.post(
            f"{base_url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
        )
        assert issued.status_code == 200, issued.text
        yield Served(base_url, services, issued.json()["access_token"], tenant_id)
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
        services.app.close()


def engineers(served: Served, count: int) -> list[str]:
    prefix = uuid.uuid4().hex[:6]
    rows = tuple(
        MemberRow(i, f"{prefix}-{i}", f"Engineer {i}", None, (Role.ENGINEER,), None, None, None)
        for i in range(1, count + 1)
    )
    context = CommandContext(Actor(ActorKind.CLIENT, "tc_race"), "race", served.tenant_id)
    outcome = served.services.bus.execute(context, ImportMembers(rows))
    assert all(row.result == "created" for row in outcome.result)
    return [str(Member.create_id(served.tenant_id, row.external_id)) for row in rows]


def auth(served: Served) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.token}"}


def roomy_cohort(served: Served) -> str:
    with httpx.Client(base_url=served.base_url, headers=auth(served), timeout=30.0) as http:
        created = http.post("/v1/curricula", json={"title": f"C {uuid.uuid4().hex[:6]}"})
        curriculum_id = created.json()["curriculum_id"]
        module = {"key": "m1", "title": "M1", "format": "lab", "duration_minutes": 30}
        assert http.post(f"/v1/curricula/{curriculum_id}/modules", json=module).is_success
        published = http.post(f"/v1/curricula/{curriculum_id}/publish", json={})
        assert published.status_code == 200, published.text
        cohort = http.post(
            "/v1/cohorts",
            json={
                "name": "Race",
                "curriculum_id": curriculum_id,
                "curriculum_version": published.json()["version"],
                "starts_on": "2030-01-07",
                "ends_on": "2030-02-07",
                "timezone": "Europe/Paris",
                "capacity": PEOPLE,
            },
        )
        assert cohort.status_code == 201, cohort.text
        return str(cohort.json()["cohort_id"])


async def send(client: httpx.AsyncClient, served: Served, url: str, body: Any) -> httpx.Response:
    """POSTs, sending it again after a 409 concurrent-modification."""
    for _attempt in range(ATTEMPTS):
        response = await client.post(url, json=body, headers=auth(served))
        problem = response.headers.get("content-type", "").startswith("application/problem")
        if not (problem and response.json()["type"].endswith("concurrent-modification")):
            return response
        await asyncio.sleep(0.02)
    return response


async def race(
    served: Served, enrolments: list[tuple[str, list[str]]], leavers: list[str]
) -> tuple[list[httpx.Response], list[httpx.Response]]:
    """All the enrolments (cohort, member ids) and deactivations, sent at the same moment."""
    start = asyncio.Event()

    async def enrol(client: httpx.AsyncClient, cohort_id: str, ids: list[str]) -> httpx.Response:
        await start.wait()
        return await send(
            client, served, f"/v1/cohorts/{cohort_id}/enrolments", {"member_ids": ids}
        )

    async def deactivate(client: httpx.AsyncClient, member_id: str) -> httpx.Response:
        await start.wait()
        return await send(client, served, f"/v1/members/{member_id}/deactivate", {"reason": "x"})

    requests = len(enrolments) + len(leavers)
    limits = httpx.Limits(max_connections=requests)
    async with httpx.AsyncClient(base_url=served.base_url, timeout=60.0, limits=limits) as client:
        # Open the connections first, so the race is between commands, not TCP handshakes.
        await asyncio.gather(*(client.get("/healthz") for _ in range(requests)))
        enrolling = [asyncio.create_task(enrol(client, c, ids)) for c, ids in enrolments]
        leaving = [asyncio.create_task(deactivate(client, m)) for m in leavers]
        await asyncio.sleep(0.05)
        start.set()
        return list(await asyncio.gather(*enrolling)), list(await asyncio.gather(*leaving))


def position(response: httpx.Response) -> int:
    return int(response.headers["training-position"])


def check_nobody_deactivated_stays(
    served: Served,
    cohort_id: str,
    enrolments: list[tuple[list[str], httpx.Response]],
    deactivations: dict[str, httpx.Response],
) -> None:
    for response in deactivations.values():
        assert response.status_code == 200, response.text
    for ids, response in enrolments:
        if response.status_code == 422:  # a deactivation came first: refused, naming who
            assert response.json()["errors"][0]["field"].startswith("member_ids[")
            continue
        assert response.status_code == 200, response.text
        placed = response.json()["enrolled"] + response.json()["waitlisted"]
        assert sorted(placed) == sorted(ids)
        for member_id in placed:
            # The enrolment committed before the deactivation of everyone it placed.
            assert position(response) < position(deactivations[member_id])

    app = served.services.app
    cohort = app.repository.get(uuid.UUID(cohort_id))
    assert isinstance(cohort, Cohort)
    assert cohort.enrolled == []
    assert cohort.waitlist == []
    for member_id in deactivations:
        record = app.repository.get(Participation.create_id(served.tenant_id, uuid.UUID(member_id)))
        assert isinstance(record, Participation)
        assert (record.closed, record.cohorts) == (True, [])

    # The read model agrees, once it has taken in every answer's position.
    answers = (*deactivations.values(), *(r for _, r in enrolments))
    newest = max(position(r) for r in answers if r.status_code == 200)
    headers = {**auth(served), "Training-Position": str(newest)}
    with httpx.Client(base_url=served.base_url, headers=headers, timeout=30.0) as http:
        for status in ("enrolled", "waitlisted"):
            page = http.get(f"/v1/cohorts/{cohort_id}/enrolments", params={"status": status})
            assert page.status_code == 200, page.text
            assert page.json()["items"] == []


def test_each_engineer_is_enrolled_and_deactivated_at_the_same_moment(served: Served) -> None:
    cohort_id = roomy_cohort(served)
    people = engineers(served, PEOPLE)
    enrolled, deactivated = asyncio.run(race(served, [(cohort_id, [m]) for m in people], people))
    check_nobody_deactivated_stays(
        served,
        cohort_id,
        [([m], r) for m, r in zip(people, enrolled, strict=True)],
        dict(zip(people, deactivated, strict=True)),
    )


def test_a_bulk_enrolment_races_the_deactivation_of_its_people(served: Served) -> None:
    cohort_id = roomy_cohort(served)
    people = engineers(served, PEOPLE)
    enrolled, deactivated = asyncio.run(race(served, [(cohort_id, people)], people))
    check_nobody_deactivated_stays(
        served, cohort_id, [(people, enrolled[0])], dict(zip(people, deactivated, strict=True))
    )
