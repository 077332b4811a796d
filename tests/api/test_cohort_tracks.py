"""Over HTTP: a track follows its person's cohorts and standing.

Promotion from the waitlist puts the cohort on the promoted person's track, a withdrawal or
transfer takes it off, and a deactivation withdraws the person from their cohorts (promoting
the first person waiting) and freezes their track until they are reactivated. Every change
re-plans with its trigger and a diff.

Two curricula teach a skill no catalogue module teaches, to the same level in the same time:
which one a plan takes shows which cohort counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.test_cohorts import Hr, fields_of, newest_position
from tests.helpers import TenantUnderTest
from training.bootstrap import Services

SKILL = "cost-awareness"
TIMEOUT = 60.0


@pytest.fixture
def hr(tenant: TenantUnderTest) -> Hr:
    return Hr(tenant)


def curriculum(hr: Hr, key: str) -> tuple[str, int]:
    created = hr.post("/v1/curricula", json={"title": f"Costs {key}", "description": ""})
    assert created.status_code == 201, created.text
    curriculum_id = str(created.json()["curriculum_id"])
    module = {
        "key": key,
        "title": key.title(),
        "format": "lab",
        "duration_minutes": 60,
        "targets": [{"skill": SKILL, "level": 3}],
    }
    assert hr.post(f"/v1/curricula/{curriculum_id}/modules", json=module).status_code == 201
    published = hr.post(f"/v1/curricula/{curriculum_id}/publish", json={})
    assert published.status_code == 200, published.text
    return curriculum_id, int(published.json()["version"])


def reviewed(hr: Hr, member_id: str) -> None:
    body = {
        "cycle": "2026-H2",
        "member_id": member_id,
        "ratings": [{"skill": SKILL, "level": 2}],
        "overall_rating": 3,
        "goals": [{"goal_id": "G1", "skill": SKILL, "target_level": 3, "due": "2027-06-30"}],
        "finalise": True,
    }
    created = hr.post("/v1/reviews", json=body)
    assert created.status_code == 201, created.text


def track_when(hr: Hr, member_id: str, ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The member's track once ``ready`` holds (the tracks view follows the planning step)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        response = hr.get(f"/v1/members/{member_id}/track")
        if response.status_code == 200 and ready(response.json()):
            return dict(response.json())
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)


def newest_plan(hr: Hr, member_id: str) -> dict[str, Any]:
    history = hr.get(f"/v1/members/{member_id}/track/history", params={"limit": 1})
    assert history.status_code == 200, history.text
    return dict(history.json()["items"][0])


def cohorts(track: dict[str, Any]) -> list[str]:
    return [c["cohort_id"] for c in track["cohorts"]]


def keys(track: dict[str, Any]) -> list[str]:
    return [m["key"] for m in track["modules"]]


def test_a_track_follows_promotion_withdrawal_transfer_and_deactivation(
    hr: Hr, services: Services
) -> None:
    ann, bob = hr.members("CA", "CB")
    for person in (ann, bob):
        reviewed(hr, person)
    made = {curriculum(hr, key): key for key in ("alpha", "beta")}
    # The planner takes the curriculum with the smaller id unless the other is preferred.
    other, pinned = sorted(made, key=lambda c: c[0])
    first = hr.cohort(pinned, capacity=1)
    second = hr.cohort(other, capacity=5)

    placed = hr.enrol(first, ann, bob)
    assert (placed.json()["enrolled"], placed.json()["waitlisted"]) == ([ann], [bob])
    waiting = track_when(hr, bob, lambda t: t["plan_version"] >= 1)
    assert (cohorts(waiting), keys(waiting)) == ([], [made[other]])
    seated = track_when(hr, ann, lambda t: "Cohort.Enrolled" in t["trigger"])
    assert (cohorts(seated), keys(seated)) == ([first], [made[pinned]])
    done = {"curriculum_id": pinned[0], "key": made[pinned], "state": "completed"}
    completed = hr.post("/v1/me/track/progress", json=done, headers=hr.as_member(ann))
    assert completed.status_code == 200, completed.text

    # Ann leaves: Bob takes the seat, and the cohort's curriculum on his track.
    withdrawn = hr.call("DELETE", f"/v1/cohorts/{first}/enrolments/{ann}", params={"reason": "x"})
    assert withdrawn.status_code == 200, withdrawn.text
    promoted = track_when(hr, bob, lambda t: "Cohort.Promoted" in t["trigger"])
    assert cohorts(promoted) == [first]
    assert keys(promoted) == [made[pinned]]
    plan = newest_plan(hr, bob)
    assert "Cohort.Promoted" in plan["trigger"]
    assert [entry[0][1] for entry in plan["added"]] == [made[pinned]]
    assert [entry[1] for entry in plan["removed"]] == [f"superseded by '{made[pinned]}'"]
    left = track_when(hr, ann, lambda t: "Cohort.Withdrawn" in t["trigger"])
    # The module Ann completed stays on her track, done; the plan goes on without it.
    assert cohorts(left) == []
    assert [(m["key"], m["state"]) for m in left["modules"]] == [
        (made[pinned], "completed"),
        (made[other], "planned"),
    ]

    # A transfer takes one cohort off the track and puts the other on.
    assert hr.enrol(first, ann).json()["waitlisted"] == [ann]
    moved = hr.post(
        "/v1/transfers",
        json={"member_id": ann, "from_cohort_id": first, "to_cohort_id": second, "reason": "dates"},
    )
    assert moved.status_code == 200, moved.text
    transferred = track_when(hr, ann, lambda t: str(second) in t["trigger"])
    assert "Cohort.Enrolled" in transferred["trigger"]
    assert cohorts(transferred) == [second]

    # Bob is deactivated: withdrawn from the cohort, and his track frozen.
    deactivated = hr.post(f"/v1/members/{bob}/deactivate", json={"reason": "left"})
    assert deactivated.status_code == 200, deactivated.text
    assert hr.placed(first, "enrolled") == []
    gone = hr.get(f"/v1/cohorts/{first}/enrolments", params={"status": "withdrawn"}).json()
    assert {(i["member_id"], i["withdrawn_reason"]) for i in gone["items"]} >= {
        (bob, "member deactivated")
    }
    frozen = track_when(hr, bob, lambda t: t["frozen"])
    assert frozen["frozen_since"] is not None
    assert cohorts(frozen) == []
    assert frozen["plan_version"] == promoted["plan_version"]  # nothing re-planned
    position = newest_position(services)
    refused = hr.enrol(first, bob)
    assert refused.status_code == 422
    assert fields_of(refused) == ["member_ids[0]"]
    assert newest_position(services) == position  # nothing written

    reactivated = hr.post(f"/v1/members/{bob}/reactivate", json={})
    assert reactivated.status_code == 200, reactivated.text
    thawed = track_when(hr, bob, lambda t: not t["frozen"] and "Reactivated" in t["trigger"])
    assert (thawed["frozen_since"], cohorts(thawed)) == (None, [])
    assert keys(thawed) == [made[other]]
    assert thawed["plan_version"] == frozen["plan_version"] + 1


def test_deactivation_promotes_the_first_person_waiting_in_every_cohort(hr: Hr) -> None:
    leaving, waiting, queued_behind = hr.members("DL", "DW", "DQ")
    one, two = hr.curriculum(), hr.curriculum()
    seated_in = hr.cohort(one, capacity=1)
    queued_in = hr.cohort(two, capacity=1)
    hr.enrol(seated_in, leaving, waiting)
    hr.enrol(queued_in, queued_behind, leaving)
    deactivated = hr.post(f"/v1/members/{leaving}/deactivate", json={"reason": "left"})
    assert deactivated.status_code == 200, deactivated.text
    assert hr.placed(seated_in, "enrolled") == [waiting]
    assert hr.placed(seated_in, "waitlisted") == []
    assert hr.placed(queued_in, "enrolled") == [queued_behind]
    assert hr.placed(queued_in, "waitlisted") == []
