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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import httpx
import pytest

from tests.api.races import (
    at_the_same_moment,
    import_engineers,
    open_cohort,
    post_until_not_concurrent,
)
from tests.helpers import ALL_SCOPES
from tests.live_server import live_server, tenant_with_token
from training.bootstrap import Services
from training.cohorts.domain.cohorts import Cohort
from training.cohorts.domain.participation import Participation
from training.infra.database import Database

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
    with live_server(database) as server:
        tenant = tenant_with_token(server, "rd", ALL_SCOPES)
        yield Served(server.base_url, server.services, tenant.token, tenant.tenant_id)


def engineers(served: Served, count: int) -> list[str]:
    return import_engineers(served.services, served.tenant_id, count, "race")


def auth(served: Served) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.token}"}


def roomy_cohort(served: Served) -> str:
    with httpx.Client(base_url=served.base_url, headers=auth(served), timeout=30.0) as http:
        return open_cohort(http.request, "Race", PEOPLE)


async def race(
    served: Served, enrolments: list[tuple[str, list[str]]], leavers: list[str]
) -> tuple[list[httpx.Response], list[httpx.Response]]:
    """All the enrolments (cohort, member ids) and deactivations, sent at the same moment."""
    send = partial(post_until_not_concurrent, headers=auth(served), attempts=ATTEMPTS)
    enrolling = [
        partial(send, url=f"/v1/cohorts/{cohort_id}/enrolments", body={"member_ids": ids})
        for cohort_id, ids in enrolments
    ]
    leaving = [
        partial(send, url=f"/v1/members/{member_id}/deactivate", body={"reason": "x"})
        for member_id in leavers
    ]
    answers = await at_the_same_moment(served.base_url, [*enrolling, *leaving])
    return answers[: len(enrolling)], answers[len(enrolling) :]


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
