"""Cohorts over HTTP: lifecycle, capacity and waitlist, bulk enrolment, transfers, live
sessions and their metrics, progress and the at-risk threshold, the engineers' own views,
calendar feeds, tenant isolation and input validation."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar
import psycopg
import pytest
from eventsourcing.utils import get_topic
from litestar.testing import TestClient

from tests.helpers import PROBLEM, bearer, member_token
from tests.helpers import TenantUnderTest as Tenant
from training.bootstrap import Services
from training.cohorts.domain.cohorts import Cohort
from training.cohorts.domain.participation import CurriculumEnrolments, Participation
from training.core.access import Role
from training.core.context import Actor, ActorKind, CommandContext
from training.people.domain.members import Member
from training.people.handlers.imports import ImportMembers, MemberRow

MODULES = ("intro", "practice", "project", "review")


@dataclass
class Hr:
    """The tenant's HR integration (an all-scopes client). Every request carries the newest
    position a command returned, so reads see the writes made before them."""

    tenant: Tenant
    position: int = 0

    def __post_init__(self) -> None:
        self.position = int(self.tenant.setup_position)

    @property
    def client(self) -> TestClient[Any]:
        return self.tenant.client

    def headers(self, **extra: str) -> dict[str, str]:
        return {**self.tenant.headers(str(self.position)), **extra}

    def track(self, response: Any) -> Any:
        if "training-position" in response.headers:
            self.position = max(self.position, int(response.headers["training-position"]))
        return response

    def call(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **kw: Any
    ) -> Any:
        merged = {**self.headers(), **(headers or {})}
        return self.track(self.client.request(method, url, headers=merged, **kw))

    def get(self, url: str, **kw: Any) -> Any:
        return self.call("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.call("POST", url, **kw)

    def as_member(self, member_id: str) -> dict[str, str]:
        token = member_token(self.tenant.services, self.tenant.tenant_id, uuid.UUID(member_id))
        return {**bearer(token), "Training-Position": str(self.position)}

    def member(self, external_id: str, **fields: Any) -> str:
        created = self.track(self.tenant.add(external_id, **fields))
        assert created.status_code == 201, created.text
        return str(created.json()["member_id"])

    def members(self, *external_ids: str) -> list[str]:
        return [self.member(f"{e}-{uuid.uuid4().hex[:6]}") for e in external_ids]

    def curriculum(self, modules: tuple[str, ...] = MODULES) -> tuple[str, int]:
        created = self.post(
            "/v1/curricula", json={"title": f"Course {uuid.uuid4().hex[:6]}", "description": ""}
        )
        assert created.status_code == 201, created.text
        curriculum_id = str(created.json()["curriculum_id"])
        for key in modules:
            added = self.post(
                f"/v1/curricula/{curriculum_id}/modules",
                json={
                    "key": key,
                    "title": key.title(),
                    "format": "reading",
                    "duration_minutes": 30,
                    "targets": [{"skill": "python", "level": 2}],
                },
            )
            assert added.status_code == 201, added.text
        published = self.post(f"/v1/curricula/{curriculum_id}/publish", json={})
        assert published.status_code == 200, published.text
        return curriculum_id, int(published.json()["version"])

    def cohort(self, curriculum: tuple[str, int] | None = None, **fields: Any) -> str:
        curriculum_id, version = curriculum or self.curriculum()
        body = cohort_body(curriculum_id, version, **fields)
        created = self.post("/v1/cohorts", json=body)
        assert created.status_code == 201, created.text
        return str(created.json()["cohort_id"])

    def enrol(self, cohort_id: str, *member_ids: str) -> Any:
        return self.post(f"/v1/cohorts/{cohort_id}/enrolments", json={"member_ids": member_ids})

    def placed(self, cohort_id: str, status: str) -> list[str]:
        listed = self.get(
            f"/v1/cohorts/{cohort_id}/enrolments", params={"status": status, "limit": 200}
        )
        assert listed.status_code == 200, listed.text
        return [item["member_id"] for item in listed.json()["items"]]

    def session(self, cohort_id: str, **fields: Any) -> str:
        body = {
            "title": "Kick-off",
            "starts_at": "2030-03-04T09:00:00+01:00",
            "duration_minutes": 60,
            "join_url": "https://meet.example.com/kick-off",
            **fields,
        }
        created = self.post(f"/v1/cohorts/{cohort_id}/sessions", json=body)
        assert created.status_code == 201, created.text
        return str(created.json()["session_id"])


def cohort_body(curriculum_id: str, version: int, **fields: Any) -> dict[str, Any]:
    return {
        "name": "Spring cohort",
        "curriculum_id": curriculum_id,
        "curriculum_version": version,
        "starts_on": "2030-03-01",
        "ends_on": "2030-05-31",
        "timezone": "Europe/Berlin",
        "capacity": 2,
        "facilitators": [],
        **fields,
    }


@pytest.fixture
def hr(tenant: Tenant) -> Hr:
    return Hr(tenant)


def fields_of(response: Any) -> list[str | None]:
    assert response.headers["content-type"] == PROBLEM, response.text
    return [error.get("field") for error in response.json().get("errors") or []]


def newest_position(services: Services) -> int:
    """The newest event's position, leaving out the report worker's: it records the automatic
    reports of earlier re-plans in the background, whatever the request under test does."""
    with psycopg.connect(services.database.admin_url) as conn:
        row = conn.execute(
            "SELECT max(notification_id) FROM training.training_events "
            "WHERE topic NOT LIKE 'training.reports:Report.%'"
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# -- lifecycle, capacity, waitlist -----------------------------------------------------------


def test_a_cohort_runs_its_lifecycle_and_refuses_enrolment_once_closed(hr: Hr) -> None:
    a, b, c = hr.members("LA", "LB", "LC")
    curriculum = hr.curriculum()
    created = hr.post("/v1/cohorts", json=cohort_body(*curriculum, capacity=5))
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    cohort_id = created.json()["cohort_id"]
    assert created.headers["location"] == f"/v1/cohorts/{cohort_id}"
    read = hr.get(f"/v1/cohorts/{cohort_id}")
    assert read.status_code == 200, read.text
    summary = read.json()
    assert summary["status"] == "planned"
    assert summary["module_count"] == len(MODULES)
    assert (summary["enrolled"], summary["waitlisted"]) == (0, 0)
    assert summary["average_completion_percent"] is None
    assert summary["average_attendance_rate"] is None

    assert hr.enrol(cohort_id, a).status_code == 200
    assert hr.post(f"/v1/cohorts/{cohort_id}/start").json()["status"] == "running"
    assert hr.post(f"/v1/cohorts/{cohort_id}/start").status_code == 409
    listed = hr.get("/v1/cohorts", params={"status": "running"})
    assert cohort_id in [c["cohort_id"] for c in listed.json()["items"]]
    assert hr.post(f"/v1/cohorts/{cohort_id}/complete").json()["status"] == "completed"
    refused = hr.enrol(cohort_id, b)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM

    # Cancelling withdraws everyone, seated or waiting, with the reason.
    other = hr.cohort(curriculum, capacity=1)
    placed = hr.enrol(other, b, c).json()
    assert (placed["enrolled"], placed["waitlisted"]) == ([b], [c])
    assert hr.post(f"/v1/cohorts/{other}/cancel", json={}).status_code == 400
    cancelled = hr.post(f"/v1/cohorts/{other}/cancel", json={"reason": "trainer ill"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    withdrawn = hr.get(f"/v1/cohorts/{other}/enrolments", params={"status": "withdrawn"}).json()
    assert {(i["member_id"], i["withdrawn_reason"]) for i in withdrawn["items"]} == {
        (b, "trainer ill"),
        (c, "trainer ill"),
    }
    assert hr.get(f"/v1/cohorts/{other}").json()["cancel_reason"] == "trainer ill"
    assert hr.enrol(other, a).status_code == 409
    assert hr.post(f"/v1/cohorts/{other}/start").status_code == 409
    # Both cohorts are closed, so the same people may join a new one of the curriculum.
    again = hr.cohort(curriculum, capacity=5)
    assert hr.enrol(again, a, b, c).json()["enrolled"] == [a, b, c]


def test_a_full_cohort_waitlists_and_a_withdrawal_promotes_the_first_waiting(hr: Hr) -> None:
    a, b, c, d = hr.members("WA", "WB", "WC", "WD")
    cohort_id = hr.cohort(capacity=2)
    enrolled = hr.enrol(cohort_id, a, b, c, d)
    assert enrolled.status_code == 200, enrolled.text
    body = enrolled.json()
    assert (body["enrolled"], body["waitlisted"]) == ([a, b], [c, d])
    assert (body["cohort"]["enrolled"], body["cohort"]["waitlisted"]) == (2, 2)
    assert hr.enrol(cohort_id, a).status_code == 409  # already in

    waiting = hr.get(f"/v1/cohorts/{cohort_id}/enrolments", params={"status": "waitlisted"})
    assert [(i["member_id"], i["waitlist_position"]) for i in waiting.json()["items"]] == [
        (c, 1),
        (d, 2),
    ]

    url = f"/v1/cohorts/{cohort_id}/enrolments/{a}"
    no_reason = hr.call("DELETE", url)
    assert no_reason.status_code == 400
    assert "reason" in fields_of(no_reason)
    withdrawn = hr.call("DELETE", url, params={"reason": "changed team"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["withdrawn"] == a
    assert withdrawn.json()["promoted"] == c
    assert hr.placed(cohort_id, "enrolled") == [b, c]
    assert hr.placed(cohort_id, "waitlisted") == [d]
    everyone = hr.get(f"/v1/cohorts/{cohort_id}/enrolments").json()["items"]
    assert [i["member_id"] for i in everyone] == [a, b, c, d]  # arrival order
    assert everyone[0]["withdrawn_reason"] == "changed team"
    assert hr.call("DELETE", url, params={"reason": "again"}).status_code == 404

    # A waiting person leaves: nobody is promoted.
    withdrawn = hr.call("DELETE", f"/v1/cohorts/{cohort_id}/enrolments/{d}", params={"reason": "x"})
    assert withdrawn.json()["promoted"] is None

    # Capacity: If-Match guards it, and it never drops below the people seated.
    etag = hr.get(f"/v1/cohorts/{cohort_id}").headers["etag"]
    assert hr.enrol(cohort_id, a).json()["waitlisted"] == [a]
    stale = hr.call(
        "PATCH", f"/v1/cohorts/{cohort_id}", json={"capacity": 3}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    current = hr.get(f"/v1/cohorts/{cohort_id}").headers["etag"]
    grown = hr.call(
        "PATCH", f"/v1/cohorts/{cohort_id}", json={"capacity": 3}, headers={"If-Match": current}
    )
    assert grown.status_code == 200, grown.text
    assert (grown.json()["capacity"], grown.json()["enrolled"]) == (3, 3)
    assert hr.placed(cohort_id, "enrolled") == [b, c, a]
    shrunk = hr.call("PATCH", f"/v1/cohorts/{cohort_id}", json={"capacity": 2})
    assert shrunk.status_code == 422
    assert fields_of(shrunk) == ["capacity"]


def test_a_thousand_people_are_enrolled_in_one_request_and_one_transaction(
    client: TestClient[Any], services: Services
) -> None:
    big = Tenant(client, services, seat_limit=1300)
    hr = Hr(big)
    context = CommandContext(Actor(ActorKind.CLIENT, "tc_test"), "bulk", big.tenant_id)
    rows = tuple(
        MemberRow(i, f"BULK{i:05d}", f"Person {i}", None, (Role.ENGINEER,), None, None, None)
        for i in range(1, 1201)
    )
    imported = services.bus.execute(context, ImportMembers(rows))
    assert all(outcome.result == "created" for outcome in imported.result)
    member_ids = [str(Member.create_id(big.tenant_id, row.external_id)) for row in rows]
    curriculum = hr.curriculum()
    cohort_id = hr.cohort(curriculum, capacity=1000)

    started = time.perf_counter()
    response = hr.enrol(cohort_id, *member_ids)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["enrolled"] == member_ids[:1000]
    assert body["waitlisted"] == member_ids[1000:]
    assert elapsed < 30, elapsed

    registry_id = CurriculumEnrolments.create_id(big.tenant_id, uuid.UUID(curriculum[0]))
    topics = [get_topic(Cohort.Enrolled), get_topic(Cohort.Waitlisted)]
    with psycopg.connect(services.database.admin_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT xmin::text) FROM training.training_events "
            "WHERE (originator_id = %s AND topic = ANY(%s)) OR originator_id = %s AND "
            "originator_version > 1",
            (uuid.UUID(cohort_id), topics, registry_id),
        ).fetchone()
    # Enrolled, Waitlisted and the curriculum registry's Joined: one transaction.
    assert row == (3, 1)
    records = [Participation.create_id(big.tenant_id, uuid.UUID(m)) for m in member_ids]
    with psycopg.connect(services.database.admin_url) as conn:
        written = conn.execute(
            "SELECT count(*), count(DISTINCT xmin::text), min(xmin::text) FROM "
            "training.training_events WHERE originator_id = ANY(%s)",
            (records,),
        ).fetchone()
        enrolled_in = conn.execute(
            "SELECT xmin::text FROM training.training_events WHERE originator_id = %s "
            "AND topic = %s",
            (uuid.UUID(cohort_id), get_topic(Cohort.Enrolled)),
        ).fetchone()
    # ... and so is the participation record of each of the 1,200 people (one event each).
    assert enrolled_in is not None
    assert written == (1200, 1, enrolled_in[0])
    summary = hr.get(f"/v1/cohorts/{cohort_id}").json()
    assert (summary["enrolled"], summary["waitlisted"]) == (1000, 200)
    # The members view is still taking in 1,200 new members: the read answers 503 with
    # Retry-After until it has, as documented, so the client retries.
    deadline = time.monotonic() + 60
    while True:
        first_page = hr.get(f"/v1/cohorts/{cohort_id}/enrolments", params={"status": "waitlisted"})
        if first_page.status_code != 503 or time.monotonic() > deadline:
            break
        assert first_page.headers["retry-after"] == "1"
        time.sleep(0.5)
    assert first_page.status_code == 200, first_page.text
    assert [i["waitlist_position"] for i in first_page.json()["items"]][:3] == [1, 2, 3]
    assert first_page.json()["items"][0]["member_id"] == member_ids[1000]
    assert first_page.json()["items"][0]["external_id"] == "BULK01001"


def test_one_open_cohort_per_curriculum_per_person(hr: Hr) -> None:
    a, b = hr.members("OA", "OB")
    curriculum = hr.curriculum()
    first = hr.cohort(curriculum, capacity=5)
    second = hr.cohort(curriculum, capacity=5)
    assert hr.enrol(first, a).status_code == 200
    refused = hr.enrol(second, b, a)
    assert refused.status_code == 422
    assert fields_of(refused) == ["member_ids[1]"]
    assert hr.placed(second, "enrolled") == []  # nobody, not even b
    hr.call("DELETE", f"/v1/cohorts/{first}/enrolments/{a}", params={"reason": "moves"})
    assert hr.enrol(second, b, a).json()["enrolled"] == [b, a]


def test_only_active_members_of_the_same_tenant_are_enrolled(
    hr: Hr, client: TestClient[Any], services: Services
) -> None:
    mine = hr.member(f"AM-{uuid.uuid4().hex[:6]}")
    gone = hr.member(f"AG-{uuid.uuid4().hex[:6]}")
    other = Hr(Tenant(client, services))
    stranger = other.member("STRANGER")
    cohort_id = hr.cohort(capacity=5)
    position = newest_position(services)
    refused = hr.enrol(cohort_id, mine, stranger)
    assert refused.status_code == 422
    assert fields_of(refused) == ["member_ids[1]"]
    assert hr.post(f"/v1/members/{gone}/deactivate", json={"reason": "left"}).status_code == 200
    position = newest_position(services)
    deactivated = hr.enrol(cohort_id, gone)
    assert deactivated.status_code == 422
    assert fields_of(deactivated) == ["member_ids[0]"]
    assert newest_position(services) == position  # nothing written
    curriculum = hr.curriculum()
    facilitated = hr.post(
        "/v1/cohorts", json=cohort_body(*curriculum, facilitators=[mine, stranger])
    )
    assert facilitated.status_code == 422
    assert fields_of(facilitated) == ["facilitators[1]"]
    assert hr.placed(cohort_id, "enrolled") == []


def test_a_transfer_is_atomic(hr: Hr) -> None:
    a, b = hr.members("TA", "TB")
    source = hr.cohort(capacity=2)
    closed = hr.cohort(capacity=2)
    full = hr.cohort(capacity=1)
    hr.enrol(source, a)
    hr.enrol(full, b)
    hr.post(f"/v1/cohorts/{closed}/cancel", json={"reason": "no trainer"})

    body = {"member_id": a, "from_cohort_id": source, "to_cohort_id": closed, "reason": "later"}
    refused = hr.post("/v1/transfers", json=body)
    assert refused.status_code == 409
    assert hr.placed(source, "enrolled") == [a]  # still where they were
    same = hr.post("/v1/transfers", json={**body, "to_cohort_id": source})
    assert same.status_code == 422
    assert fields_of(same) == ["to_cohort_id"]
    missing = hr.post("/v1/transfers", json={**body, "member_id": b})
    assert missing.status_code == 404
    assert hr.placed(full, "enrolled") == [b]

    moved = hr.post("/v1/transfers", json={**body, "to_cohort_id": full})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["enrolled"], moved.json()["waitlisted"]) == ([], [a])
    assert hr.placed(source, "enrolled") == []
    assert hr.placed(full, "waitlisted") == [a]
    left = hr.get(f"/v1/cohorts/{source}/enrolments", params={"status": "withdrawn"}).json()
    assert left["items"][0]["withdrawn_reason"] == "transferred: later"


# -- live sessions ---------------------------------------------------------------------------


def test_a_scheduled_session_answers_the_cohorts_version_and_where_it_is_listed(
    hr: Hr,
) -> None:
    cohort_id = hr.cohort()
    created = hr.post(
        f"/v1/cohorts/{cohort_id}/sessions",
        json={
            "title": "Kick-off",
            "starts_at": "2030-03-04T09:00:00+01:00",
            "duration_minutes": 60,
            "join_url": "https://meet.example.com/kick-off",
        },
    )
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    # The session is a part of its cohort: its version is the cohort's, as after any change.
    cohort = hr.get(f"/v1/cohorts/{cohort_id}")
    assert created.headers["etag"] == cohort.headers["etag"] == f'"{cohort.json()["version"]}"'
    listed = hr.get(created.headers["location"])
    assert created.headers["location"] == f"/v1/cohorts/{cohort_id}/sessions"
    assert [s["session_id"] for s in listed.json()["items"]] == [session_id]
    # The answered version guards the next change of the cohort.
    grown = hr.call(
        "PATCH",
        f"/v1/cohorts/{cohort_id}",
        json={"capacity": 3},
        headers={"If-Match": created.headers["etag"]},
    )
    assert grown.status_code == 200, grown.text


def test_sessions_attendance_feedback_and_their_metrics(hr: Hr) -> None:
    a, b, c, d = hr.members("SA", "SB", "SC", "SD")
    outsider = hr.member(f"SO-{uuid.uuid4().hex[:6]}")
    cohort_id = hr.cohort(capacity=4)
    hr.enrol(cohort_id, a, b, c, d)
    first = hr.session(cohort_id, title="Kick-off", duration_minutes=60)
    second = hr.session(
        cohort_id, title="Deep dive", starts_at="2030-03-11T16:00:00Z", duration_minutes=30
    )

    attendance_url = f"/v1/cohorts/{cohort_id}/sessions/{first}/attendance"

    def visit(member_id: str, joined: str, left: str) -> dict[str, str]:
        return {
            "member_id": member_id,
            "joined_at": f"2030-03-04T{joined}:00+01:00",
            "left_at": f"2030-03-04T{left}:00+01:00",
        }

    outsider_row = hr.call(
        "PUT", attendance_url, json={"attendance": [visit(outsider, "09:00", "10:00")]}
    )
    assert outsider_row.status_code == 422
    assert fields_of(outsider_row) == ["attendance[0].member_id"]
    backwards = hr.call("PUT", attendance_url, json={"attendance": [visit(a, "10:00", "09:00")]})
    assert fields_of(backwards) == ["attendance[0].left_at"]
    imported = hr.call(
        "PUT",
        attendance_url,
        json={
            # a joined twice: still one attendee.
            "attendance": [
                visit(a, "09:00", "09:20"),
                visit(b, "09:02", "10:00"),
                visit(a, "09:25", "10:00"),
                visit(c, "09:10", "09:50"),
            ],
            "comments": 10,
            "questions": 5,
            "reactions": 15,
        },
    )
    assert imported.status_code == 200, imported.text

    feedback_url = f"/v1/cohorts/{cohort_id}/sessions/{first}/feedback"
    rating = {"content": 5, "delivery": 4, "interaction": 3}
    assert hr.post(feedback_url, json=rating, headers=hr.as_member(a)).status_code == 200
    low = {"content": 2, "delivery": 2, "interaction": 2}
    assert hr.post(feedback_url, json=low, headers=hr.as_member(b)).status_code == 200
    replaced = {"content": 3, "delivery": 3, "interaction": 3}
    assert hr.post(feedback_url, json=replaced, headers=hr.as_member(b)).status_code == 200
    assert hr.post(feedback_url, json=rating).status_code == 403  # not a person
    assert hr.post(feedback_url, json=rating, headers=hr.as_member(outsider)).status_code == 422
    too_high = hr.post(feedback_url, json={**rating, "content": 6}, headers=hr.as_member(a))
    assert too_high.status_code == 400
    assert fields_of(too_high) == ["content"]
    for response in (
        hr.post(
            f"/v1/cohorts/{cohort_id}/sessions/{uuid.uuid4()}/feedback",
            json=rating,
            headers=hr.as_member(a),
        ),
        hr.call(
            "PUT",
            f"/v1/cohorts/{cohort_id}/sessions/{uuid.uuid4()}/attendance",
            json={"attendance": []},
        ),
    ):
        assert response.status_code == 404

    listed = hr.get(f"/v1/cohorts/{cohort_id}/sessions")
    assert listed.status_code == 200, listed.text
    sessions = {s["session_id"]: s for s in listed.json()["items"]}
    assert list(sessions) == [first, second]  # by start time
    kick_off = sessions[first]
    assert kick_off["attendees"] == 3
    assert kick_off["enrolled"] == 4
    assert kick_off["attendance_rate"] == pytest.approx(3 / 4)
    assert kick_off["interaction_index"] == pytest.approx((10 + 5 + 15) / 60)
    # Mean of per-entry means: a (5+4+3)/3 = 4, b replaced by (3+3+3)/3 = 3.
    assert kick_off["content_satisfaction"] == pytest.approx((4 + 3) / 2)
    assert kick_off["feedback_count"] == 2
    assert kick_off["ends_at"].startswith("2030-03-04T09:00:00")  # 08:00Z + 60 min
    deep_dive = sessions[second]
    assert deep_dive["attendance_rate"] is None
    assert deep_dive["interaction_index"] is None
    assert deep_dive["content_satisfaction"] is None
    summary = hr.get(f"/v1/cohorts/{cohort_id}").json()
    assert summary["sessions"] == 2
    assert summary["average_attendance_rate"] == pytest.approx(0.75)

    # Rate over people enrolled now: d leaves, 3 of the 3 left attended.
    hr.call("DELETE", f"/v1/cohorts/{cohort_id}/enrolments/{d}", params={"reason": "left"})
    after = hr.get(f"/v1/cohorts/{cohort_id}/sessions").json()["items"][0]
    assert after["attendance_rate"] == pytest.approx(1.0)


def test_a_session_is_refused_without_an_offset_or_an_https_link(
    hr: Hr, services: Services
) -> None:
    cohort_id = hr.cohort()
    url = f"/v1/cohorts/{cohort_id}/sessions"
    good = {
        "title": "Live",
        "starts_at": "2030-03-04T09:00:00+01:00",
        "duration_minutes": 60,
        "join_url": "https://meet.example.com/x",
    }
    position = newest_position(services)
    for change, field_name, status in (
        ({"starts_at": "2030-03-04T09:00:00"}, "starts_at", 400),
        ({"join_url": "http://meet.example.com/x"}, "join_url", 400),
        ({"duration_minutes": 4}, "duration_minutes", 400),
        ({"title": ""}, "title", 400),
        ({"extra": 1}, "extra", 400),
        ({"starts_at": "1970-01-01T00:00:00Z"}, "starts_at", 422),
    ):
        refused = hr.post(url, json={**good, **change})
        assert refused.status_code == status, (change, refused.text)
        assert fields_of(refused) == [field_name], change
    assert newest_position(services) == position
    assert hr.get(url).json()["items"] == []


# -- progress --------------------------------------------------------------------------------


def test_progress_against_the_calendar_and_the_at_risk_threshold(hr: Hr) -> None:
    a, b, c = hr.members("PA", "PB", "PC")
    today = datetime.now(UTC).date()
    cohort_id = hr.cohort(
        capacity=5,
        timezone="UTC",
        starts_on=str(today - timedelta(days=9)),
        ends_on=str(today + timedelta(days=10)),
    )
    hr.enrol(cohort_id, a, b, c)
    url = f"/v1/cohorts/{cohort_id}/progress"
    for member_id, modules in ((a, MODULES[:2]), (b, MODULES[:1])):
        for key in modules:
            done = hr.post(
                url, json={"member_id": member_id, "module_key": key, "completed_on": str(today)}
            )
            assert done.status_code == 200, done.text
    again = hr.post(url, json={"member_id": a, "module_key": "intro", "completed_on": str(today)})
    assert again.status_code == 200  # idempotent: still two modules
    unknown = hr.post(url, json={"member_id": a, "module_key": "nope", "completed_on": str(today)})
    assert unknown.status_code == 422
    assert fields_of(unknown) == ["module_key"]
    stranger = hr.member(f"PX-{uuid.uuid4().hex[:6]}")
    outside = hr.post(
        url, json={"member_id": stranger, "module_key": "intro", "completed_on": str(today)}
    )
    assert fields_of(outside) == ["member_id"]

    def progress() -> dict[str, Any]:
        response = hr.get(url)
        assert response.status_code == 200, response.text
        return dict(response.json())

    # 20-day window, day 10 today: 50 % expected. 4 modules: a 50 %, b 25 %, c 0 %.
    report = progress()
    assert report["as_of"] == str(today)
    assert report["expected_percent"] == pytest.approx(50.0)
    assert report["at_risk_threshold"] == 20
    rows = {i["member_id"]: i for i in report["items"]}
    assert [rows[m]["percent_complete"] for m in (a, b, c)] == [50.0, 25.0, 0.0]
    assert [rows[m]["behind"] for m in (a, b, c)] == [0.0, 25.0, 50.0]
    assert [rows[m]["at_risk"] for m in (a, b, c)] == [False, True, True]
    assert hr.get(f"/v1/cohorts/{cohort_id}").json()["average_completion_percent"] == 25.0

    assert hr.get("/v1/training-policy").json() == {
        "at_risk_threshold": 20,
        "retake_cooldown_days": 14,
        "version": None,
    }
    bad = hr.call(
        "PUT", "/v1/training-policy", json={"at_risk_threshold": 0, "retake_cooldown_days": 3}
    )
    assert bad.status_code == 400
    assert fields_of(bad) == ["at_risk_threshold"]
    changed = hr.call(
        "PUT", "/v1/training-policy", json={"at_risk_threshold": 30, "retake_cooldown_days": 7}
    )
    assert changed.status_code == 200, changed.text
    assert hr.get("/v1/training-policy").json()["at_risk_threshold"] == 30
    rows = {i["member_id"]: i for i in progress()["items"]}
    assert [rows[m]["at_risk"] for m in (a, b, c)] == [False, False, True]


def test_expected_progress_is_zero_before_and_full_after_the_window(hr: Hr) -> None:
    today = datetime.now(UTC).date()
    future = hr.cohort(
        timezone="UTC",
        starts_on=str(today + timedelta(days=1)),
        ends_on=str(today + timedelta(days=5)),
    )
    past = hr.cohort(
        timezone="UTC",
        starts_on=str(today - timedelta(days=5)),
        ends_on=str(today - timedelta(days=1)),
    )
    assert hr.get(f"/v1/cohorts/{future}/progress").json()["expected_percent"] == 0
    assert hr.get(f"/v1/cohorts/{past}/progress").json()["expected_percent"] == 100


# -- the engineers' own views ----------------------------------------------------------------


def test_engineers_see_their_own_cohorts_and_sessions(hr: Hr) -> None:
    a, b = hr.members("MA", "MB")
    seated = hr.cohort(capacity=2, name="Seated")
    waiting = hr.cohort(capacity=1, name="Waiting")
    hr.enrol(seated, a)
    hr.enrol(waiting, b, a)
    mine = hr.session(seated, title="Mine")
    hr.session(waiting, title="Not yet mine")

    cohorts = hr.get("/v1/me/cohorts", headers=hr.as_member(a))
    assert cohorts.status_code == 200, cohorts.text
    placements = {
        (c["name"], c["placement"], c["waitlist_position"]) for c in cohorts.json()["items"]
    }
    assert placements == {("Seated", "enrolled", None), ("Waiting", "waitlisted", 1)}
    sessions = hr.get("/v1/me/sessions", headers=hr.as_member(a))
    assert [(s["session_id"], s["cohort_name"]) for s in sessions.json()["items"]] == [
        (mine, "Seated")
    ]
    assert hr.get("/v1/me/cohorts").status_code == 403  # an API client is not a person
    assert hr.get("/v1/me/sessions").status_code == 403
    # An engineer does not manage cohorts.
    assert hr.get("/v1/cohorts", headers=hr.as_member(a)).status_code == 403
    refused = hr.post(
        f"/v1/cohorts/{seated}/enrolments", json={"member_ids": [b]}, headers=hr.as_member(a)
    )
    assert refused.status_code == 403


# -- calendar feeds --------------------------------------------------------------------------


def feed(hr: Hr, url: str) -> Any:
    """The feed as a calendar app fetches it (no token), after the writes made so far."""
    assert url.startswith("https://training.test/calendar/"), url
    position = {"Training-Position": str(hr.position)}
    return hr.client.get(url.removeprefix("https://training.test"), headers=position)


def parsed_events(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    raw: bytes = response.content
    lines = raw.split(b"\r\n")
    assert lines[-1] == b""  # every line ends with CRLF
    assert all(b"\n" not in line and len(line) <= 75 for line in lines)
    calendar = icalendar.Calendar.from_ical(raw)
    assert calendar["VERSION"] == "2.0"
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def test_calendar_feeds_list_sessions_and_rotation_invalidates_the_old_url(
    hr: Hr, client: TestClient[Any], services: Services
) -> None:
    a, b = hr.members("CA", "CB")
    cohort_id = hr.cohort(capacity=1, name="Backend, spring; 2030")
    other_cohort = hr.cohort(capacity=1)
    hr.enrol(cohort_id, a, b)  # b waits
    hr.enrol(other_cohort, b)
    long_title = "Ünïcödé session about \\ backslashes; commas, and more " * 3
    first = hr.session(cohort_id, title=long_title[:120], starts_at="2030-03-04T09:00:00+01:00")
    second = hr.session(
        cohort_id, title="Retro", starts_at="2030-03-18T14:30:00-04:00", duration_minutes=45
    )
    theirs = hr.session(other_cohort, title="B only", starts_at="2030-04-01T10:00:00Z")

    issued = hr.post(f"/v1/cohorts/{cohort_id}/calendar")
    assert issued.status_code == 200, issued.text
    assert issued.headers["cache-control"] == "no-store"
    url = issued.json()["url"]
    assert re.fullmatch(
        rf"https://training\.test/calendar/{hr.tenant.tenant_id}/[0-9a-f-]{{36}}/[\w-]+\.ics", url
    )
    events = parsed_events(feed(hr, url))
    assert set(events) == {f"{first}@training", f"{second}@training"}
    kick_off = events[f"{first}@training"]
    assert str(kick_off["SUMMARY"]) == long_title[:120]
    assert kick_off.decoded("DTSTART") == datetime(2030, 3, 4, 8, 0, tzinfo=UTC)
    assert kick_off.decoded("DTEND") == datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
    assert str(kick_off["URL"]) == "https://meet.example.com/kick-off"
    assert str(kick_off["LOCATION"]) == "https://meet.example.com/kick-off"
    assert "Cohort: Backend, spring; 2030" in str(kick_off["DESCRIPTION"])
    assert "DTSTAMP" in kick_off
    retro = events[f"{second}@training"]
    assert retro.decoded("DTSTART") == datetime(2030, 3, 18, 18, 30, tzinfo=UTC)
    assert retro.decoded("DTEND") == datetime(2030, 3, 18, 19, 15, tzinfo=UTC)

    rotated = hr.post(f"/v1/cohorts/{cohort_id}/calendar").json()["url"]
    assert rotated != url
    old = feed(hr, url)
    assert old.status_code == 404
    assert old.headers["content-type"] == PROBLEM
    assert len(parsed_events(feed(hr, rotated))) == 2

    base, _, token = rotated.rpartition("/")
    wrong_token = feed(hr, f"{base}/{'x' * len(token)}")
    no_suffix = feed(hr, rotated.removesuffix(".ics"))
    assert (wrong_token.status_code, no_suffix.status_code) == (404, 404)
    assert wrong_token.json()["detail"] == old.json()["detail"]  # never says which part

    # A member's feed: sessions of the cohorts where they hold a seat.
    mine = hr.post("/v1/me/calendar", headers=hr.as_member(b))
    assert mine.status_code == 200, mine.text
    assert set(parsed_events(feed(hr, mine.json()["url"]))) == {f"{theirs}@training"}
    assert hr.post("/v1/me/calendar").status_code == 403

    # Another tenant's feed, reached through this tenant's path (and the other way round).
    other = Hr(Tenant(client, services))
    foreign = other.post(f"/v1/cohorts/{other.cohort()}/calendar").json()["url"]
    _, _, foreign_feed, foreign_token = foreign.removesuffix(".ics").rsplit("/", 3)
    _, _, my_tenant, my_feed, _ = rotated.rsplit("/", 4)
    assert my_tenant == str(hr.tenant.tenant_id)
    crossed = f"https://training.test/calendar/{my_tenant}/{foreign_feed}/{foreign_token}.ics"
    assert feed(hr, crossed).status_code == 404
    reversed_ = f"https://training.test/calendar/{other.tenant.tenant_id}/{my_feed}/{token}"
    assert feed(hr, reversed_).status_code == 404
    assert feed(hr, foreign).status_code == 200
    # Another tenant cannot issue a feed for this tenant's cohort.
    assert other.post(f"/v1/cohorts/{cohort_id}/calendar").status_code == 404


# -- isolation and validation ----------------------------------------------------------------


def test_another_tenant_reaches_no_cohort_endpoint(
    hr: Hr, client: TestClient[Any], services: Services
) -> None:
    a = hr.member(f"XA-{uuid.uuid4().hex[:6]}")
    cohort_id = hr.cohort(capacity=2)
    target = hr.cohort(capacity=2)
    hr.enrol(cohort_id, a)
    session_id = hr.session(cohort_id)
    other = Hr(Tenant(client, services))
    theirs = other.member("XO")
    base = f"/v1/cohorts/{cohort_id}"
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", base, {}),
        ("PATCH", base, {"json": {"capacity": 5}}),
        ("POST", f"{base}/start", {}),
        ("POST", f"{base}/complete", {}),
        ("POST", f"{base}/cancel", {"json": {"reason": "x"}}),
        ("POST", f"{base}/enrolments", {"json": {"member_ids": [theirs]}}),
        ("GET", f"{base}/enrolments", {}),
        ("DELETE", f"{base}/enrolments/{a}", {"params": {"reason": "x"}}),
        (
            "POST",
            f"{base}/sessions",
            {
                "json": {
                    "title": "t",
                    "starts_at": "2030-01-01T10:00:00Z",
                    "duration_minutes": 30,
                    "join_url": "https://x.example/y",
                }
            },
        ),
        ("GET", f"{base}/sessions", {}),
        ("PUT", f"{base}/sessions/{session_id}/attendance", {"json": {"attendance": []}}),
        (
            "POST",
            f"{base}/progress",
            {"json": {"member_id": a, "module_key": "intro", "completed_on": "2030-01-01"}},
        ),
        ("GET", f"{base}/progress", {}),
        ("POST", f"{base}/calendar", {}),
        (
            "POST",
            "/v1/transfers",
            {
                "json": {
                    "member_id": a,
                    "from_cohort_id": cohort_id,
                    "to_cohort_id": target,
                    "reason": "x",
                }
            },
        ),
    ]
    position = newest_position(services)
    for method, url, kwargs in attempts:
        response = other.call(method, url, **kwargs)
        assert response.status_code == 404, (method, url, response.text)
        assert response.headers["content-type"] == PROBLEM
    feedback = other.post(
        f"{base}/sessions/{session_id}/feedback",
        json={"content": 5, "delivery": 5, "interaction": 5},
        headers=other.as_member(theirs),
    )
    assert feedback.status_code == 404
    assert newest_position(services) == position
    assert cohort_id not in [c["cohort_id"] for c in other.get("/v1/cohorts").json()["items"]]
    assert hr.get(base).json()["status"] == "planned"


@pytest.mark.parametrize(
    ("change", "field_name", "status"),
    [
        ({"capacity": 0}, "capacity", 400),
        ({"capacity": 10_001}, "capacity", 400),
        ({"name": ""}, "name", 400),
        ({"starts_on": "March"}, "starts_on", 400),
        ({"unknown": True}, "unknown", 400),
        ({"curriculum_id": "not-a-uuid"}, "curriculum_id", 400),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", 422),
        ({"timezone": "../etc"}, "timezone", 400),
        ({"ends_on": "2030-02-01"}, "ends_on", 422),
        ({"curriculum_version": 99}, "curriculum_version", 422),
        ({"curriculum_id": str(uuid.uuid4())}, "curriculum_id", 422),
        ({"facilitators": [str(uuid.uuid4())]}, "facilitators[0]", 422),
    ],
)
def test_a_bad_cohort_is_refused_naming_the_field_and_writing_nothing(
    hr: Hr, services: Services, change: dict[str, Any], field_name: str, status: int
) -> None:
    curriculum = hr.curriculum(("only",))
    position = newest_position(services)
    refused = hr.post("/v1/cohorts", json={**cohort_body(*curriculum), **change})
    assert refused.status_code == status, refused.text
    assert fields_of(refused) == [field_name]
    assert newest_position(services) == position
    assert hr.get("/v1/cohorts", params={"curriculum_id": curriculum[0]}).json()["items"] == []


def test_bad_enrolment_and_list_requests_are_refused(hr: Hr) -> None:
    cohort_id = hr.cohort()
    assert fields_of(hr.post(f"/v1/cohorts/{cohort_id}/enrolments", json={"member_ids": []})) == [
        "member_ids"
    ]
    too_many = [str(uuid.uuid4()) for _ in range(5001)]
    response = hr.post(f"/v1/cohorts/{cohort_id}/enrolments", json={"member_ids": too_many})
    assert response.status_code == 400
    assert fields_of(response) == ["member_ids"]
    bad_status = hr.get(f"/v1/cohorts/{cohort_id}/enrolments", params={"status": "gone"})
    assert bad_status.status_code == 400
    assert fields_of(bad_status) == ["status"]
    bad_cursor = hr.get("/v1/cohorts", params={"cursor": "bm9wZQ"})
    assert bad_cursor.status_code == 400
    assert fields_of(bad_cursor) == ["cursor"]
    assert hr.get(f"/v1/cohorts/{uuid.uuid4()}").status_code == 404


def test_cohorts_are_listed_page_by_page(hr: Hr) -> None:
    curriculum = hr.curriculum(("one",))
    created = [hr.cohort(curriculum, name=f"Cohort {i}") for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "curriculum_id": curriculum[0]}
        if cursor:
            params["cursor"] = cursor
        page = hr.get("/v1/cohorts", params=params).json()
        seen.extend(c["cohort_id"] for c in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == created


def test_dates_are_dates(hr: Hr) -> None:
    cohort_id = hr.cohort(starts_on="2030-03-01", ends_on="2030-03-01")
    read = hr.get(f"/v1/cohorts/{cohort_id}").json()
    assert date.fromisoformat(read["starts_on"]) == date.fromisoformat(read["ends_on"])
