"""Members over HTTP: roles, seats, reporting lines, personal data, erasure and export."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from litestar.testing import TestClient

from tests.helpers import PROBLEM, bearer, member_token
from tests.helpers import TenantUnderTest as Tenant
from training.bootstrap import Services


def test_register_read_and_change_a_member(tenant: Tenant) -> None:
    created = tenant.add(
        "E100",
        display_name="Ada Lovelace",
        email="Ada@Example.com",
        roles=["engineer", "manager"],
        team="Platform",
        job_title="Staff Engineer",
    )
    assert created.status_code == 201, created.text
    member = created.json()
    assert member["roles"] == ["engineer", "manager"]
    read = tenant.client.get(
        created.headers["location"], headers=tenant.headers(created.headers["training-position"])
    )
    assert read.json()["display_name"] == "Ada Lovelace"
    assert read.json()["email"] == "ada@example.com"
    assert read.headers["etag"] == '"1"'

    changed = tenant.client.patch(
        created.headers["location"],
        json={"roles": ["hr_manager"], "team": "People", "email": "ada@new.example.com"},
        headers={**tenant.headers(), "If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["roles"] == ["hr_manager"]
    again = tenant.client.get(
        created.headers["location"], headers=tenant.headers(changed.headers["training-position"])
    )
    assert again.json()["email"] == "ada@new.example.com"
    assert again.json()["display_name"] == "Ada Lovelace"
    assert again.json()["team"] == "People"
    stale = tenant.client.patch(
        created.headers["location"],
        json={"team": "X"},
        headers={**tenant.headers(), "If-Match": '"1"'},
    )
    assert stale.status_code == 412


def test_an_external_id_is_unique_per_tenant(
    tenant: Tenant, client: TestClient[Any], services: Services
) -> None:
    assert tenant.add("DUP").status_code == 201
    again = tenant.add("DUP")
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "external_id"
    other = Tenant(client, services)
    assert other.add("DUP").status_code == 201  # another tenant may use the same key


def test_the_seat_limit_counts_active_members(client: TestClient[Any], services: Services) -> None:
    small = Tenant(client, services, seat_limit=2)
    first = small.add("S1").json()
    assert small.add("S2").status_code == 201
    full = small.add("S3")
    assert full.status_code == 409
    assert full.headers["content-type"] == PROBLEM
    assert "seat" in full.json()["detail"]
    deactivated = small.client.post(
        f"/v1/members/{first['member_id']}/deactivate",
        json={"reason": "left"},
        headers=small.headers(),
    )
    assert deactivated.status_code == 200
    assert small.add("S3").status_code == 201
    back = small.client.post(
        f"/v1/members/{first['member_id']}/reactivate", json={}, headers=small.headers()
    )
    assert back.status_code == 409


def test_a_manager_lists_direct_and_indirect_reports(tenant: Tenant, services: Services) -> None:
    boss = tenant.add("B1", roles=["manager"]).json()
    lead = tenant.add("L1", roles=["manager", "engineer"], manager_id=boss["member_id"]).json()
    dev = tenant.add("D1", manager_id=lead["member_id"]).json()
    last = tenant.add("D2", manager_id=lead["member_id"])
    position = last.headers["training-position"]
    own_token = member_token(services, tenant.tenant_id, uuid.UUID(boss["member_id"]))
    reports = tenant.client.get(
        f"/v1/members/{boss['member_id']}/reports",
        headers={**bearer(own_token), "Training-Position": position},
    )
    assert reports.status_code == 200, reports.text
    items = reports.json()["items"]
    assert [(i["external_id"], i["depth"]) for i in items] == [("L1", 1), ("D1", 2), ("D2", 2)]
    direct = tenant.client.get(
        f"/v1/members/{boss['member_id']}/reports",
        params={"direct": "true"},
        headers=bearer(own_token),
    )
    assert [i["external_id"] for i in direct.json()["items"]] == ["L1"]
    # An engineer sees themselves but not their manager's line.
    dev_token = member_token(services, tenant.tenant_id, uuid.UUID(dev["member_id"]))
    assert (
        tenant.client.get(f"/v1/members/{dev['member_id']}", headers=bearer(dev_token)).status_code
        == 200
    )
    assert (
        tenant.client.get(
            f"/v1/members/{boss['member_id']}/reports", headers=bearer(dev_token)
        ).status_code
        == 403
    )
    assert tenant.client.get("/v1/members", headers=bearer(dev_token)).status_code == 403


def test_a_reporting_line_cannot_loop(tenant: Tenant) -> None:
    a = tenant.add("LA").json()
    b = tenant.add("LB", manager_id=a["member_id"]).json()
    loop = tenant.client.patch(
        f"/v1/members/{a['member_id']}",
        json={"manager_id": b["member_id"]},
        headers=tenant.headers(),
    )
    assert loop.status_code == 422
    assert loop.json()["errors"][0]["field"] == "manager_id"
    itself = tenant.client.patch(
        f"/v1/members/{a['member_id']}",
        json={"manager_id": a["member_id"]},
        headers=tenant.headers(),
    )
    assert itself.status_code == 422
    cleared = tenant.client.patch(
        f"/v1/members/{b['member_id']}", json={"manager_id": None}, headers=tenant.headers()
    )
    assert cleared.json()["manager_id"] is None


def test_members_are_searched_by_team_role_manager_and_status(tenant: Tenant) -> None:
    boss = tenant.add("Q0", roles=["manager"], team="Core").json()
    tenant.add("Q1", team="Core", manager_id=boss["member_id"])
    tenant.add("Q2", team="Edge", roles=["hr_manager"], display_name="Grace Hopper")
    last = tenant.add("Q3", team="Core", manager_id=boss["member_id"]).json()
    done = tenant.client.post(
        f"/v1/members/{last['member_id']}/deactivate",
        json={"reason": "moved"},
        headers=tenant.headers(),
    )
    headers = tenant.headers(done.headers["training-position"])

    def ids(**params: Any) -> list[str]:
        response = tenant.client.get("/v1/members", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [m["external_id"] for m in response.json()["items"]]

    assert ids(team="Core") == ["Q0", "Q1", "Q3"]
    assert ids(team="Core", status="active") == ["Q0", "Q1"]
    assert ids(role="hr_manager") == ["Q2"]
    assert ids(manager_id=boss["member_id"]) == ["Q1", "Q3"]
    assert ids(q="grace") == ["Q2"]
    first = tenant.client.get("/v1/members", params={"limit": 2}, headers=headers).json()
    second = tenant.client.get(
        "/v1/members", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    assert [m["external_id"] for m in first["items"] + second["items"]] == ["Q0", "Q1", "Q2", "Q3"]
    bad = tenant.client.get("/v1/members", params={"role": "pilot"}, headers=headers)
    assert bad.status_code == 400


def test_erasure_removes_personal_data_and_keeps_history(
    tenant: Tenant, services: Services
) -> None:
    name, email = (
        f"Erin Erasable {uuid.uuid4().hex[:6]}",
        f"erin.{uuid.uuid4().hex[:8]}@example.com",
    )
    created = tenant.add("ER1", display_name=name, email=email).json()
    tenant.add("ER2", display_name="Kept Person", email="kept@example.com")
    url = f"/v1/members/{created['member_id']}"
    erased = tenant.client.delete(f"{url}/personal-data", headers=tenant.headers())
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased"] is True
    read = tenant.client.get(
        url, headers=tenant.headers(erased.headers["training-position"])
    ).json()
    assert read["display_name"] == "(erased)"
    assert read["email"] is None
    assert read["erased"] is True
    listed = tenant.client.get("/v1/members", params={"q": "erin"}, headers=tenant.headers()).json()
    assert listed["items"] == []
    assert tenant.client.delete(f"{url}/personal-data", headers=tenant.headers()).status_code == 409
    assert tenant.client.patch(url, json={"team": "x"}, headers=tenant.headers()).status_code == 409

    # No stored event of any kind mentions the name or the email.
    with psycopg.connect(services.database.admin_url) as conn:
        states = [
            bytes(row[0]) for row in conn.execute("SELECT state FROM training.training_events")
        ]
        people = conn.execute(
            "SELECT count(*) FROM training.people WHERE member_id = %s", (created["member_id"],)
        ).fetchone()
    assert states
    hits = [
        s for s in states if name.encode() in s or email.encode() in s or b"kept@example.com" in s
    ]
    assert hits == []
    assert people == (0,)


def test_an_admin_exports_everything_held_about_a_member(tenant: Tenant) -> None:
    created = tenant.add("X1", display_name="Xavier Export", team="Data").json()
    tenant.client.patch(
        f"/v1/members/{created['member_id']}",
        json={"job_title": "Analyst"},
        headers=tenant.headers(),
    )
    exported = tenant.client.get(
        f"/v1/members/{created['member_id']}/export", headers=tenant.headers()
    )
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert document["personal_data"]["display_name"] == "Xavier Export"
    assert [event["type"] for event in document["history"]] == [
        "training.people:Member.Registered",
        "training.people:Member.PositionChanged",
    ]
    assert document["history"][0]["actor"].startswith("client:")
    assert "attachment" in exported.headers["content-disposition"]


def test_the_export_holds_the_free_text_kept_about_a_member(tenant: Tenant) -> None:
    created = tenant.add("X2", display_name="Yara Export").json()
    member_id = created["member_id"]
    review = tenant.client.post(
        "/v1/reviews",
        json={
            "cycle": "2026-H2",
            "member_id": member_id,
            "ratings": [],
            "overall_rating": 3,
            "strengths": ["calm under pressure"],
            "finalise": True,
        },
        headers=tenant.headers(),
    )
    assert review.status_code == 201, review.text
    deactivated = tenant.client.post(
        f"/v1/members/{member_id}/deactivate",
        json={"reason": "parental leave"},
        headers=tenant.headers(),
    )
    assert deactivated.status_code == 200, deactivated.text
    document = tenant.client.get(f"/v1/members/{member_id}/export", headers=tenant.headers())
    assert document.status_code == 200, document.text
    assert document.json()["personal_data"]["deactivation_reason"] == "parental leave"
    assert document.json()["review_texts"] == [
        {
            "review_id": review.json()["review_id"],
            "strengths": ["calm under pressure"],
            "amendment_reasons": [],
        }
    ]


def test_another_tenants_member_is_not_found(
    tenant: Tenant, client: TestClient[Any], services: Services
) -> None:
    theirs = Tenant(client, services).add("T1").json()
    url = f"/v1/members/{theirs['member_id']}"
    for method, path, body in (
        ("get", url, None),
        ("patch", url, {"team": "x"}),
        ("post", f"{url}/deactivate", {"reason": "x"}),
        ("delete", f"{url}/personal-data", None),
        ("get", f"{url}/export", None),
        ("get", f"{url}/reports", None),
    ):
        response = tenant.client.request(method.upper(), path, json=body, headers=tenant.headers())
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == PROBLEM
    # Naming their member as our manager fails the same way.
    mine = tenant.add("T2", manager_id=theirs["member_id"])
    assert mine.status_code == 422
    assert mine.json()["errors"][0]["field"] == "manager_id"


def test_bad_member_input_is_refused_and_writes_nothing(tenant: Tenant, services: Services) -> None:
    before = services.app.recorder.max_notification_id()
    for body, field in (
        ({"external_id": "", "display_name": "x", "roles": ["engineer"]}, "external_id"),
        ({"external_id": "A B", "display_name": "x", "roles": ["engineer"]}, "external_id"),
        ({"external_id": "A1", "display_name": "x", "roles": []}, "roles"),
        ({"external_id": "A1", "display_name": "x", "roles": ["pilot"]}, "roles"),
        (
            {"external_id": "A1", "display_name": "x", "roles": ["engineer"], "email": "nope"},
            "email",
        ),
        ({"external_id": "A1", "roles": ["engineer"]}, "display_name"),
        # NUL reached PostgreSQL and answered 500.
        ({"external_id": "A1", "display_name": "x\x00", "roles": ["engineer"]}, "display_name"),
        ({"external_id": "A1", "display_name": "x", "roles": ["engineer"], "team": "\x00"}, "team"),
        (
            {
                "external_id": "A1",
                "display_name": "x",
                "roles": ["engineer"],
                "email": "a\x00@b.co",
            },
            "email",
        ),
    ):
        response = tenant.client.post("/v1/members", json=body, headers=tenant.headers())
        assert response.status_code == 400, body
        assert field in str(response.json()["errors"]), response.json()
    unknown_manager = tenant.add("A2", manager_id=str(uuid.uuid4()))
    assert unknown_manager.status_code == 422
    assert services.app.recorder.max_notification_id() == before


def test_the_operator_cannot_reach_a_tenants_people(
    client: TestClient[Any], operator_token: str, tenant: Tenant
) -> None:
    created = tenant.add("OP1").json()
    for method, path in (
        ("get", "/v1/members"),
        ("get", f"/v1/members/{created['member_id']}"),
        ("post", "/v1/members"),
    ):
        response = client.request(
            method.upper(),
            path,
            headers=bearer(operator_token),
            json={} if method == "post" else None,
        )
        assert response.status_code == 403, path


def test_a_deactivated_member_cannot_act(tenant: Tenant, services: Services) -> None:
    person = tenant.add("DA1", roles=["hr_manager"]).json()
    token = member_token(services, tenant.tenant_id, uuid.UUID(person["member_id"]))
    assert tenant.client.get("/v1/members", headers=bearer(token)).status_code == 200
    tenant.client.post(
        f"/v1/members/{person['member_id']}/deactivate",
        json={"reason": "left"},
        headers=tenant.headers(),
    )
    assert tenant.client.get("/v1/members", headers=bearer(token)).status_code == 401
