"""The audit log: a projection of the events, filtered, paginated and exportable as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from litestar.testing import TestClient

from tests.helpers import PROBLEM, TenantUnderTest, bearer, member_token
from training.bootstrap import Services


def test_a_tenant_admin_lists_who_did_what(tenant: TenantUnderTest, services: Services) -> None:
    created = tenant.add(f"AU{uuid.uuid4().hex[:6]}", roles=["tenant_admin"])
    assert created.status_code == 201
    member = created.json()
    admin = member_token(services, tenant.tenant_id, uuid.UUID(member["member_id"]))
    changed = tenant.client.patch(
        f"/v1/members/{member['member_id']}", json={"team": "Audit"}, headers=bearer(admin)
    )
    assert changed.status_code == 200
    position = changed.headers["training-position"]
    page = tenant.client.get(
        "/v1/audit", headers={**bearer(admin), "Training-Position": position}
    ).json()
    latest = page["items"][0]
    assert latest["event_type"] == "training.people:Member.PositionChanged"
    assert latest["actor"] == f"member:{member['member_id']}"
    assert latest["subject_id"] == member["member_id"]
    assert latest["request_id"] == changed.headers["x-request-id"]

    by_actor = tenant.client.get(
        "/v1/audit", params={"actor": f"member:{member['member_id']}"}, headers=bearer(admin)
    ).json()
    assert {i["event_type"] for i in by_actor["items"]} == {
        "training.people:Member.PositionChanged"
    }
    by_type = tenant.client.get(
        "/v1/audit", params={"type": "training.people:Member.Registered"}, headers=bearer(admin)
    ).json()
    assert all(i["event_type"] == "training.people:Member.Registered" for i in by_type["items"])
    future = tenant.client.get(
        "/v1/audit", params={"from": "2999-01-01T00:00:00Z"}, headers=bearer(admin)
    ).json()
    assert future["items"] == []

    first = tenant.client.get("/v1/audit", params={"limit": 2}, headers=bearer(admin)).json()
    second = tenant.client.get(
        "/v1/audit", params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer(admin)
    ).json()
    ids = [i["notification_id"] for i in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 4


def test_the_audit_log_exports_as_csv(tenant: TenantUnderTest) -> None:
    added = tenant.add(f"CSV{uuid.uuid4().hex[:6]}")
    response = tenant.client.get(
        "/v1/audit/export.csv", headers=tenant.headers(added.headers["training-position"])
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows
    assert {"actor", "event_type", "subject_id", "recorded_at"} <= set(rows[0])
    assert any(r["event_type"] == "training.people:Member.Registered" for r in rows)


def test_the_audit_log_is_tenant_scoped_and_admin_only(
    tenant: TenantUnderTest, client: TestClient[Any], services: Services
) -> None:
    mine = tenant.add(f"MY{uuid.uuid4().hex[:6]}").json()
    other = TenantUnderTest(client, services)
    theirs = other.client.get("/v1/audit", headers=other.headers()).json()
    assert mine["member_id"] not in str(theirs)
    engineer = member_token(services, tenant.tenant_id, uuid.UUID(mine["member_id"]))
    refused = tenant.client.get("/v1/audit", headers=bearer(engineer))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    bad = tenant.client.get("/v1/audit", params={"from": "yesterday"}, headers=tenant.headers())
    assert bad.status_code == 400
