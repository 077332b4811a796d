"""The race for the last seat, over real HTTP.

uvicorn serves the app (with its lifespan: read pool, projection runners) on a free loopback
port in a background thread, and concurrent enrolment requests for different engineers hit
it at the same moment. Each request is one command that writes the cohort's next version;
the losers of the race run again on the fresh cohort and find it full. Exactly ``capacity``
people get a seat, everyone else is waitlisted, and the read model agrees with the cohort.
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
    post_until_not_concurrent,
    seated_and_waiting,
)
from tests.helpers import ALL_SCOPES
from tests.live_server import HTTP_TIMEOUT, LiveServer, live_server, tenant_with_token
from training.cohorts.domain.cohorts import Cohort
from training.infra.database import Database

ATTEMPTS = 10  # a client retries a 409 concurrent-modification, as its Retry-After invites


@pytest.fixture(scope="module")
def served(database: Database) -> Iterator[LiveServer]:
    with live_server(database) as server:
        yield server


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
def hr(served: LiveServer) -> Iterator[Hr]:
    tenant = tenant_with_token(served, "race", ALL_SCOPES)
    with httpx.Client(base_url=served.base_url, timeout=HTTP_TIMEOUT) as http:
        yield Hr(http, tenant.token, tenant.tenant_id)


def engineers(served: LiveServer, hr: Hr, count: int) -> list[str]:
    return import_engineers(served.services, hr.tenant_id, count, "race")


def cohort_of_one_seat(hr: Hr, capacity: int = 1) -> str:
    return open_cohort(hr.call, "Last seat", capacity)


async def race(base_url: str, hr: Hr, cohort_id: str, member_ids: list[str]) -> list[Any]:
    """One request per engineer, all sent at the same moment."""
    enrol = partial(
        post_until_not_concurrent,
        url=f"/v1/cohorts/{cohort_id}/enrolments",
        headers={"Authorization": f"Bearer {hr.token}"},
        attempts=ATTEMPTS,
    )
    return await at_the_same_moment(
        base_url, [partial(enrol, body={"member_ids": [m]}) for m in member_ids]
    )


def check_outcome(
    served: LiveServer, hr: Hr, cohort_id: str, member_ids: list[str], capacity: int
) -> None:
    responses = asyncio.run(race(served.base_url, hr, cohort_id, member_ids))
    assert [r.status_code for r in responses] == [200] * len(member_ids), [
        r.text for r in responses if r.status_code != 200
    ]
    for response in responses:
        hr.track(response)
    seated, waiting = seated_and_waiting(responses, member_ids, capacity)

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


def test_two_engineers_race_for_the_last_seat(served: LiveServer, hr: Hr) -> None:
    cohort_id = cohort_of_one_seat(hr)
    check_outcome(served, hr, cohort_id, engineers(served, hr, 2), capacity=1)


def test_ten_engineers_race_for_one_seat(served: LiveServer, hr: Hr) -> None:
    cohort_id = cohort_of_one_seat(hr)
    check_outcome(served, hr, cohort_id, engineers(served, hr, 10), capacity=1)


def test_ten_engineers_race_for_three_seats(served: LiveServer, hr: Hr) -> None:
    cohort_id = cohort_of_one_seat(hr, capacity=3)
    check_outcome(served, hr, cohort_id, engineers(served, hr, 10), capacity=3)
