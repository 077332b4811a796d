"""What the tests of concurrent requests over real HTTP share (tests/live_server.py serves).

Requests are released at the same moment over connections opened beforehand, so the race is
between commands, not TCP handshakes; the people who race are imported in one command and
the cohort they race for is opened over HTTP, as an HR client would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import httpx

from training.bootstrap import Services
from training.core.access import Role
from training.core.context import Actor, ActorKind, CommandContext
from training.people.domain.members import Member
from training.people.handlers.imports import ImportMembers, MemberRow

T = TypeVar("T")
Request = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments


async def at_the_same_moment(
    base_url: str,
    sends: Sequence[Callable[[httpx.AsyncClient], Awaitable[T]]],
    connections: int | None = None,
) -> list[T]:
    """Runs every send at the same moment over ``connections`` connections (one per send
    unless told) opened beforehand; the answers come back in the order of ``sends``."""
    start = asyncio.Event()
    opened = len(sends) if connections is None else connections

    async def when_released(
        client: httpx.AsyncClient, send: Callable[[httpx.AsyncClient], Awaitable[T]]
    ) -> T:
        await start.wait()
        return await send(client)

    limits = httpx.Limits(max_connections=opened)
    async with httpx.AsyncClient(base_url=base_url, timeout=60.0, limits=limits) as client:
        # Open the connections first, so the race is between commands, not TCP handshakes.
        await asyncio.gather(*(client.get("/healthz") for _ in range(opened)))
        tasks = [asyncio.create_task(when_released(client, send)) for send in sends]
        await asyncio.sleep(0.05)
        start.set()
        return list(await asyncio.gather(*tasks))


async def at_once(base_url: str, requests: Sequence[Request]) -> list[httpx.Response]:
    """Sends the requests at the same moment, each once, over connections opened beforehand."""

    def sending(
        method: str, url: str, kwargs: dict[str, Any]
    ) -> Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]:
        async def send(client: httpx.AsyncClient) -> httpx.Response:
            return await client.request(method, url, **kwargs)

        return send

    return await at_the_same_moment(base_url, [sending(*request) for request in requests])


def concurrent_modification(response: httpx.Response) -> bool:
    if not response.headers.get("content-type", "").startswith("application/problem"):
        return False
    return str(response.json()["type"]).endswith("concurrent-modification")


async def post_until_not_concurrent(
    client: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str], attempts: int
) -> httpx.Response:
    """POSTs, sending it again after a 409 concurrent-modification (as its Retry-After
    invites a client to), at most ``attempts`` times."""
    for _attempt in range(attempts):
        response = await client.post(url, json=body, headers=headers)
        if not concurrent_modification(response):
            return response
        await asyncio.sleep(0.02)
    return response


def seated_and_waiting(
    answers: Sequence[httpx.Response], member_ids: Sequence[str], capacity: int
) -> tuple[list[str], list[str]]:
    """Whom the enrolment answers seated and waitlisted, checking that ``capacity`` people got
    a seat and everyone else waits, nobody twice and nobody lost."""
    seated = [m for r in answers for m in r.json()["enrolled"]]
    waiting = [m for r in answers for m in r.json()["waitlisted"]]
    assert len(seated) == capacity
    assert sorted(seated + waiting) == sorted(member_ids)
    return seated, waiting


def import_engineers(services: Services, tenant_id: uuid.UUID, count: int, label: str) -> list[str]:
    """``count`` new engineers in one import, as API client ``tc_{label}``; their member ids."""
    prefix = uuid.uuid4().hex[:6]
    rows = tuple(
        MemberRow(i, f"{prefix}-{i}", f"Engineer {i}", None, (Role.ENGINEER,), None, None, None)
        for i in range(1, count + 1)
    )
    context = CommandContext(Actor(ActorKind.CLIENT, f"tc_{label}"), label, tenant_id)
    outcome = services.bus.execute(context, ImportMembers(rows))
    assert all(row.result == "created" for row in outcome.result)
    return [str(Member.create_id(tenant_id, row.external_id)) for row in rows]


class Sends(Protocol):
    """Sends a request with the HR client's credentials (``httpx.Client.request`` does)."""

    def __call__(self, method: str, url: str, *, json: Any) -> httpx.Response: ...


def open_cohort(send: Sends, name: str, capacity: int) -> str:
    """A cohort of ``capacity`` seats on a fresh published one-module curriculum; its id."""
    curriculum = send("POST", "/v1/curricula", json={"title": f"C {uuid.uuid4().hex[:6]}"})
    assert curriculum.status_code == 201, curriculum.text
    curriculum_id = curriculum.json()["curriculum_id"]
    module = {"key": "m1", "title": "M1", "format": "lab", "duration_minutes": 30}
    added = send("POST", f"/v1/curricula/{curriculum_id}/modules", json=module)
    assert added.is_success, added.text
    published = send("POST", f"/v1/curricula/{curriculum_id}/publish", json={})
    assert published.status_code == 200, published.text
    created = send(
        "POST",
        "/v1/cohorts",
        json={
            "name": name,
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
