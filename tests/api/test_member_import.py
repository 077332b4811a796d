"""Bulk member import: a job with progress, a per-row report, batched writes, re-runnable."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import psycopg
from litestar.testing import TestClient

from tests.helpers import TenantUnderTest as Tenant
from training.bootstrap import Services
from training.people.domain.members import Member


def wait_for_job(tenant: Tenant, url: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = tenant.client.get(url, headers=tenant.headers()).json()
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def submit(tenant: Tenant, content: str | bytes, content_type: str) -> Any:
    return tenant.client.post(
        "/v1/member-imports",
        content=content if isinstance(content, bytes) else content.encode(),
        headers={**tenant.headers(), "content-type": content_type},
    )


CSV = """external_id,display_name,email,roles,manager_external_id,team,job_title
E2,Bob Builder,bob@example.com,engineer,E1,Core,Engineer
E1,Alice Boss,alice@example.com,manager;engineer,,Core,Lead
E3,,carol@example.com,engineer,E1,Core,Engineer
E4,Dan Duplicate,dan@example.com,engineer,,Edge,
E4,Dan Again,dan2@example.com,engineer,,Edge,
E5,Eve Error,not-an-email,engineer,,Edge,
E6,Fay Loop,fay@example.com,engineer,E7,Edge,
E7,Gus Loop,gus@example.com,engineer,E6,Edge,
E8,Hal Orphan,hal@example.com,engineer,NOBODY,Edge,
E9,Ivy Roles,ivy@example.com,pilot,,Edge,
"""


def test_a_csv_import_reports_bad_rows_and_imports_the_rest(
    tenant: Tenant, services: Services
) -> None:
    accepted = submit(tenant, CSV, "text/csv")
    assert accepted.status_code == 202, accepted.text
    job = wait_for_job(tenant, accepted.headers["location"])
    assert job["status"] == "completed", job
    assert (job["total_rows"], job["processed_rows"]) == (10, 10)
    assert (job["created"], job["failed"]) == (3, 7)
    report = {(e["row"], e["field"]) for e in job["errors"]}
    assert report == {
        (4, "display_name"),
        (6, "external_id"),
        (7, "email"),
        (8, "manager_external_id"),
        (9, "manager_external_id"),
        (10, "manager_external_id"),
        (11, "roles"),
    }
    members = tenant.client.get("/v1/members", params={"team": "Core"}, headers=tenant.headers())
    wait = time.monotonic() + 10
    while len(members.json()["items"]) < 2 and time.monotonic() < wait:
        time.sleep(0.05)
        members = tenant.client.get(
            "/v1/members", params={"team": "Core"}, headers=tenant.headers()
        )
    by_id = {m["external_id"]: m for m in members.json()["items"]}
    assert by_id["E2"]["manager_id"] == by_id["E1"]["member_id"]
    assert by_id["E1"]["roles"] == ["engineer", "manager"]


def test_running_the_same_import_again_changes_nothing(tenant: Tenant, services: Services) -> None:
    rows = {
        "members": [
            {
                "external_id": f"J{i}",
                "display_name": f"Json Person {i}",
                "email": f"j{i}@example.com",
                "roles": ["engineer"],
                "team": "Json",
            }
            for i in range(30)
        ]
    }
    first = wait_for_job(
        tenant, submit(tenant, json.dumps(rows), "application/json").headers["location"]
    )
    assert (first["created"], first["failed"]) == (30, 0)
    before = services.app.recorder.max_notification_id()
    second = wait_for_job(
        tenant, submit(tenant, json.dumps(rows), "application/json").headers["location"]
    )
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 30)
    assert services.app.recorder.max_notification_id() == before
    rows["members"][0]["team"] = "Moved"
    rows["members"][1]["display_name"] = "Renamed Person"
    third = wait_for_job(
        tenant, submit(tenant, json.dumps(rows), "application/json").headers["location"]
    )
    assert (third["updated"], third["unchanged"]) == (2, 28)


def test_the_seat_limit_stops_an_import_row_by_row(
    client: TestClient[Any], services: Services
) -> None:
    small = Tenant(client, services, seat_limit=3)
    small.add("S0")
    csv = "external_id,display_name\n" + "".join(f"S{i},Seat {i}\n" for i in range(1, 6))
    job = wait_for_job(small, submit(small, csv, "text/csv").headers["location"])
    assert (job["created"], job["failed"]) == (2, 3)
    assert all("seat limit" in e["message"] for e in job["errors"])


def test_writes_are_batched_not_one_transaction_per_row(
    client: TestClient[Any], services: Services
) -> None:
    tenant = Tenant(client, services, seat_limit=2000)
    csv = "external_id,display_name\n" + "".join(f"B{i},Batch {i}\n" for i in range(1200))
    job = wait_for_job(tenant, submit(tenant, csv, "text/csv").headers["location"])
    assert job["created"] == 1200
    ids = [Member.create_id(tenant.tenant_id, f"B{i}") for i in range(1200)]
    with psycopg.connect(services.database.admin_url) as conn:
        # Rows written by one transaction share its id (xmin). Batches hold 50 to 500 rows:
        # the import is paced to the views (ADR 0028), starting small.
        batches = conn.execute(
            "SELECT count(*) FROM training.training_events WHERE originator_id = ANY(%s) "
            "GROUP BY xmin::text",
            (ids,),
        ).fetchall()
    sizes = [int(size) for (size,) in batches]
    assert sum(sizes) == 1200
    assert max(sizes) <= 500
    assert len(sizes) <= 1200 // 50


def test_a_row_with_a_nul_character_is_reported_not_stored(tenant: Tenant) -> None:
    csv = "external_id,display_name,email,roles\nN1,Nul\x00Name,n1@example.com,engineer\n"
    job = wait_for_job(tenant, submit(tenant, csv, "text/csv").headers["location"])
    assert job["status"] == "completed", job
    assert (job["created"], job["failed"]) == (0, 1)
    assert [(e["row"], e["field"]) for e in job["errors"]] == [(2, "display_name")]


def test_bad_uploads_are_refused(tenant: Tenant) -> None:
    assert submit(tenant, "a,b\n", "text/plain").status_code == 415
    assert submit(tenant, "", "text/csv").status_code == 400
    bad_header = wait_for_job(
        tenant, submit(tenant, "name,mail\nx,y\n", "text/csv").headers["location"]
    )
    assert bad_header["status"] == "failed"
    assert "missing columns: external_id, display_name" in bad_header["detail"]
    not_json = wait_for_job(tenant, submit(tenant, "{", "application/json").headers["location"])
    assert not_json["status"] == "failed"
    unknown = tenant.client.get(f"/v1/member-imports/{uuid.uuid4()}", headers=tenant.headers())
    assert unknown.status_code == 404
    listed = tenant.client.get("/v1/member-imports", headers=tenant.headers()).json()
    assert len(listed["items"]) >= 2


def test_the_report_says_how_rows_are_counted(tenant: Tenant) -> None:
    csv = "external_id,display_name\nR1,\n"
    from_csv = wait_for_job(tenant, submit(tenant, csv, "text/csv").headers["location"])
    assert from_csv["first_member_row"] == 2
    assert [e["row"] for e in from_csv["errors"]] == [2]
    document = json.dumps({"members": [{"external_id": "R2"}]})
    from_json = wait_for_job(
        tenant, submit(tenant, document, "application/json").headers["location"]
    )
    assert from_json["first_member_row"] == 1
    assert [e["row"] for e in from_json["errors"]] == [1]
    listed = tenant.client.get("/v1/member-imports", headers=tenant.headers()).json()
    assert {job["first_member_row"] for job in listed["items"]} == {1, 2}


def test_an_upload_that_is_not_utf8_is_refused_when_sent(tenant: Tenant) -> None:
    before = tenant.client.get("/v1/member-imports", headers=tenant.headers()).json()["items"]
    uploads = [
        ("text/csv", "external_id,display_name\nX-1,Café\n".encode("latin-1")),
        # Valid UTF-8 up to its last byte: the whole file is checked, not its start.
        ("text/csv", ("external_id,display_name\n" + "X,Y\n" * 5000).encode() + b"\xff"),
        ("application/json", json.dumps({"members": []}).encode("utf-16")),
        ("application/json", b'{"members": [{"external_id": "\xff"}]}'),
    ]
    for content_type, content in uploads:
        refused = submit(tenant, content, content_type)
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        [error] = refused.json()["errors"]
        assert error["field"] == "body"
        assert "not UTF-8" in error["message"]
    after = tenant.client.get("/v1/member-imports", headers=tenant.headers()).json()["items"]
    assert after == before  # no job was created


def test_a_completed_import_gives_the_position_to_read_its_members_at(tenant: Tenant) -> None:
    csv = "external_id,display_name,team\n" + "".join(
        f"P{i},Pos {i},Positioned\n" for i in range(40)
    )
    location = submit(tenant, csv, "text/csv").headers["location"]
    job = wait_for_job(tenant, location)
    assert (job["status"], job["created"]) == ("completed", 40), job
    assert isinstance(job["position"], int)
    answered = tenant.client.get(location, headers=tenant.headers())
    assert answered.headers["training-position"] == str(job["position"])
    # Read at that position, every imported member is listed at once.
    members = tenant.client.get(
        "/v1/members",
        params={"team": "Positioned", "limit": 100},
        headers=tenant.headers(answered.headers["training-position"]),
    )
    assert members.status_code == 200, members.text
    assert len(members.json()["items"]) == 40
    # Importing the same file again writes nothing: no position to wait for.
    again = wait_for_job(tenant, submit(tenant, csv, "text/csv").headers["location"])
    assert (again["unchanged"], again["position"]) == (40, None)
    unchanged = tenant.client.get(
        f"/v1/member-imports/{again['import_id']}", headers=tenant.headers()
    )
    assert "training-position" not in unchanged.headers
