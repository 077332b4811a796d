"""Reviews re-plan training tracks; engineers follow theirs, managers and HR see their people's."""

from __future__ import annotations

import time
import uuid
from typing import Any

from litestar.testing import TestClient

from tests.helpers import PROBLEM, TenantUnderTest, bearer, member_token, system_context
from training.bootstrap import Services
from training.demo.world import load_catalogue

# The databases the platform catalogue was loaded into: each test module has a database of
# its own, so one module's loading says nothing of another's.
_catalogue_loaded: set[str] = set()


def ensure_catalogue(services: Services) -> None:
    database = services.database.admin_url
    if database not in _catalogue_loaded:
        load_catalogue(services.bus, system_context())
        _catalogue_loaded.add(database)


def review_body(member_id: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "cycle": "2026-H2",
        "member_id": member_id,
        "ratings": [{"skill": "python", "level": 2}, {"skill": "kubernetes", "level": 1}],
        "overall_rating": 3,
        "strengths": ["clear writing"],
        "goals": [{"goal_id": "G1", "skill": "kubernetes", "target_level": 3, "due": "2027-06-30"}],
    }
    body.update(overrides)
    return body


def wait_for_track(
    client: TestClient[Any], url: str, headers: dict[str, str], version: int = 1
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        response = client.get(url, headers=headers)
        if response.status_code == 200 and response.json()["plan_version"] >= version:
            return dict(response.json())
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)


def test_a_finalised_review_plans_a_track_with_reasons(
    tenant: TenantUnderTest, services: Services
) -> None:
    ensure_catalogue(services)
    boss = tenant.add(f"RB{uuid.uuid4().hex[:6]}", roles=["manager"]).json()
    engineer = tenant.add(f"RE{uuid.uuid4().hex[:6]}", manager_id=boss["member_id"]).json()
    drafted = tenant.client.post(
        "/v1/reviews", json=review_body(engineer["member_id"]), headers=tenant.headers()
    )
    assert drafted.status_code == 201, drafted.text
    assert drafted.json()["status"] == "draft"
    finalised = tenant.client.post(
        f"{drafted.headers['location']}/finalise", json={}, headers=tenant.headers()
    )
    assert finalised.status_code == 200
    assert finalised.json()["status"] == "finalised"

    own = member_token(services, tenant.tenant_id, uuid.UUID(engineer["member_id"]))
    track = wait_for_track(tenant.client, "/v1/me/track", bearer(own))
    assert track["modules"], track
    assert any("goal G1" in m["reason"] for m in track["modules"])
    assert [m["due_on"] for m in track["modules"]] == sorted(m["due_on"] for m in track["modules"])

    # The manager and HR see it; another engineer does not.
    manager = member_token(services, tenant.tenant_id, uuid.UUID(boss["member_id"]))
    assert (
        tenant.client.get(
            f"/v1/members/{engineer['member_id']}/track", headers=bearer(manager)
        ).status_code
        == 200
    )
    assert (
        tenant.client.get(
            f"/v1/members/{engineer['member_id']}/track", headers=tenant.headers()
        ).status_code
        == 200
    )
    other = tenant.add(f"RO{uuid.uuid4().hex[:6]}").json()
    stranger = member_token(services, tenant.tenant_id, uuid.UUID(other["member_id"]))
    refused = tenant.client.get(
        f"/v1/members/{engineer['member_id']}/track", headers=bearer(stranger)
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM

    # A completed module stays on the track through later re-plans.
    done = track["modules"][-1]
    completed = tenant.client.post(
        "/v1/me/track/progress",
        json={"curriculum_id": done["curriculum_id"], "key": done["key"], "state": "completed"},
        headers=bearer(own),
    )
    assert completed.status_code == 200
    # Skipping a module needs a reason, and re-plans without it.
    first = track["modules"][0]
    no_reason = tenant.client.post(
        "/v1/me/track/progress",
        json={"curriculum_id": first["curriculum_id"], "key": first["key"], "state": "skipped"},
        headers=bearer(own),
    )
    assert no_reason.status_code == 422
    skipped = tenant.client.post(
        "/v1/me/track/progress",
        json={
            "curriculum_id": first["curriculum_id"],
            "key": first["key"],
            "state": "skipped",
            "reason": "done it at my last job",
        },
        headers=bearer(own),
    )
    assert skipped.status_code == 200
    again = wait_for_track(tenant.client, "/v1/me/track", bearer(own), version=2)
    assert first["key"] not in [m["key"] for m in again["modules"]]
    kept = [m for m in again["modules"] if m["key"] == done["key"]]
    assert kept, "a completed module was removed from the track"
    assert kept[0]["state"] == "completed"
    history = tenant.client.get(
        f"/v1/members/{engineer['member_id']}/track/history", headers=bearer(own)
    ).json()
    assert [h["plan_version"] for h in history["items"]][:2] == [2, 1]
    removed = history["items"][0]["removed"]
    assert any(first["key"] in str(entry) for entry in removed)


def test_amending_a_finalised_review_needs_a_reason(
    tenant: TenantUnderTest, services: Services
) -> None:
    engineer = tenant.add(f"RA{uuid.uuid4().hex[:6]}").json()
    created = tenant.client.post(
        "/v1/reviews",
        json=review_body(engineer["member_id"], finalise=True),
        headers=tenant.headers(),
    )
    assert created.json()["status"] == "finalised"
    url = created.headers["location"]
    assert (
        tenant.client.put(
            url, json={"ratings": [], "overall_rating": 4}, headers=tenant.headers()
        ).status_code
        == 409
    )
    no_reason = tenant.client.post(
        f"{url}/amendments", json={"ratings": [], "overall_rating": 4}, headers=tenant.headers()
    )
    assert no_reason.status_code == 400
    amended = tenant.client.post(
        f"{url}/amendments",
        json={"ratings": [], "overall_rating": 4, "reason": "calibration meeting"},
        headers=tenant.headers(),
    )
    assert amended.status_code == 200
    assert amended.json()["amendments"] == 1
    detail = tenant.client.get(url, headers=tenant.headers()).json()
    assert detail["overall_rating"] == 4


def test_review_text_with_a_nul_character_is_refused(
    tenant: TenantUnderTest, services: Services
) -> None:
    # PostgreSQL refuses NUL in text: such a review would have stopped the views.
    engineer = tenant.add(f"RN{uuid.uuid4().hex[:6]}").json()
    before = services.app.recorder.max_notification_id()
    for overrides, field in (
        ({"cycle": "2026\x00"}, "cycle"),
        ({"strengths": ["ok", "\x00"]}, "strengths"),
        ({"external_id": "R\x00"}, "external_id"),
    ):
        body = review_body(engineer["member_id"], **overrides)
        refused = tenant.client.post("/v1/reviews", json=body, headers=tenant.headers())
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert field in str(refused.json()["errors"]), refused.json()
    own = member_token(services, tenant.tenant_id, uuid.UUID(engineer["member_id"]))
    progress = {"curriculum_id": str(uuid.uuid4()), "key": "m\x00", "state": "completed"}
    refused = tenant.client.post("/v1/me/track/progress", json=progress, headers=bearer(own))
    assert refused.status_code == 400, refused.text
    assert "key" in str(refused.json()["errors"])
    assert services.app.recorder.max_notification_id() == before


def test_the_hris_import_is_idempotent_by_external_id(tenant: TenantUnderTest) -> None:
    people = [tenant.add(f"RH{i}{uuid.uuid4().hex[:4]}").json() for i in range(3)]
    batch = {
        "reviews": [
            {
                **review_body(p["member_id"]),
                "external_id": f"hris-{p['external_id']}",
                "finalised": True,
            }
            for p in people
        ]
        + [{**review_body(str(uuid.uuid4())), "external_id": "hris-ghost", "finalised": True}]
    }
    first = tenant.client.post("/v1/review-imports", json=batch, headers=tenant.headers())
    assert first.status_code == 200, first.text
    assert [r["result"] for r in first.json()["results"]] == [
        "created",
        "created",
        "created",
        "failed",
    ]
    assert first.json()["results"][3]["field"] == "member_id"
    second = tenant.client.post("/v1/review-imports", json=batch, headers=tenant.headers())
    assert [r["result"] for r in second.json()["results"]][:3] == ["unchanged"] * 3
    batch["reviews"][0]["overall_rating"] = 5
    third = tenant.client.post("/v1/review-imports", json=batch, headers=tenant.headers())
    assert third.json()["results"][0]["result"] == "amended"


def test_reviews_of_another_tenant_are_not_found(
    tenant: TenantUnderTest, client: TestClient[Any], services: Services
) -> None:
    engineer = tenant.add(f"RX{uuid.uuid4().hex[:6]}").json()
    created = tenant.client.post(
        "/v1/reviews", json=review_body(engineer["member_id"]), headers=tenant.headers()
    )
    other = TenantUnderTest(client, services)
    url = created.headers["location"]
    assert other.client.get(url, headers=other.headers()).status_code == 404
    assert other.client.post(f"{url}/finalise", json={}, headers=other.headers()).status_code == 404
    assert (
        other.client.get(
            f"/v1/members/{engineer['member_id']}/track", headers=other.headers()
        ).status_code
        == 404
    )
    bad = tenant.client.post(
        "/v1/reviews",
        json=review_body(engineer["member_id"], overall_rating=9),
        headers=tenant.headers(),
    )
    assert bad.status_code == 400
    unknown_skill = tenant.client.post(
        "/v1/reviews",
        json=review_body(engineer["member_id"], ratings=[{"skill": "astrology", "level": 2}]),
        headers=tenant.headers(),
    )
    assert unknown_skill.status_code == 422
