"""One email, one member, over real HTTP: concurrent SCIM creates, API registrations, and an
import racing a SCIM create, against uvicorn on loopback.

Each request that checks the email before its command can pass the check at the same moment
as another; the unique constraint on the stored emails, written in the events' transaction,
lets exactly one of them commit. The others answer 409 (SCIM: ``scimType: uniqueness``), or
report the row as invalid in an import while the rest of its batch lands.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.api.races import Request, at_once
from tests.helpers import ALL_SCOPES, PROBLEM
from tests.live_server import LiveServer, TenantToken, live_server, tenant_with_token
from training.infra.database import Database

RACERS = 8
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture(scope="module")
def served(database: Database) -> Iterator[LiveServer]:
    with live_server(database) as server:
        yield server


@pytest.fixture
def tenant(served: LiveServer) -> TenantToken:
    return tenant_with_token(served, "email", (*ALL_SCOPES, "scim"))


def holders(database: Database, tenant: TenantToken, email: str) -> list[uuid.UUID]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT member_id FROM training.people WHERE tenant_id = %s AND email = %s",
            (tenant.tenant_id, email),
        ).fetchall()
    return [row[0] for row in rows]


def test_concurrent_scim_creates_with_one_email_make_one_member(
    served: LiveServer, database: Database, tenant: TenantToken
) -> None:
    email = f"twin-{uuid.uuid4().hex[:8]}@example.test"
    scim = f"/scim/v2/{tenant.tenant_id}/Users"
    requests = [
        (
            "POST",
            scim,
            {
                "json": {
                    "schemas": [USER],
                    "userName": email,
                    "externalId": f"hr-{i}",
                    "active": True,
                },
                "headers": {**tenant.headers(), "Content-Type": "application/scim+json"},
            },
        )
        for i in range(RACERS)
    ]
    responses = asyncio.run(at_once(served.base_url, requests))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (RACERS - 1), [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["scimType"] == "uniqueness"
        assert email not in refused.text
    [created] = [r for r in responses if r.status_code == 201]
    assert holders(database, tenant, email) == [uuid.UUID(created.json()["id"])]


def test_concurrent_registrations_with_one_email_make_one_member(
    served: LiveServer, database: Database, tenant: TenantToken
) -> None:
    email = f"twin-{uuid.uuid4().hex[:8]}@example.test"
    requests = [
        (
            "POST",
            "/v1/members",
            {
                "json": {
                    "external_id": f"E{i}",
                    "display_name": f"Twin {i}",
                    "email": email,
                    "roles": ["engineer"],
                },
                "headers": tenant.headers(),
            },
        )
        for i in range(RACERS)
    ]
    responses = asyncio.run(at_once(served.base_url, requests))
    assert sorted(r.status_code for r in responses) == [201] + [409] * (RACERS - 1)
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert refused.json()["errors"][0]["field"] == "email"
    assert len(holders(database, tenant, email)) == 1


def test_an_import_racing_a_scim_create_reports_the_row_and_lands_the_rest(
    served: LiveServer, database: Database, tenant: TenantToken
) -> None:
    email = f"twin-{uuid.uuid4().hex[:8]}@example.test"
    rows = [
        f"IMP-{i},Imported {i},imported-{i}-{uuid.uuid4().hex[:6]}@example.test,engineer"
        for i in range(40)
    ]
    rows[20] = f"IMP-20,Imported twin,{email},engineer"
    csv = "external_id,display_name,email,roles\n" + "\n".join(rows) + "\n"
    scim = f"/scim/v2/{tenant.tenant_id}/Users"
    requests: list[Request] = [
        (
            "POST",
            "/v1/member-imports",
            {"content": csv, "headers": {**tenant.headers(), "Content-Type": "text/csv"}},
        ),
        *(
            (
                "POST",
                scim,
                {
                    "json": {
                        "schemas": [USER],
                        "userName": email,
                        "externalId": f"idp-{i}",
                        "active": True,
                    },
                    "headers": {**tenant.headers(), "Content-Type": "application/scim+json"},
                },
            )
            for i in range(RACERS - 1)
        ),
    ]
    accepted, *creates = asyncio.run(at_once(served.base_url, requests))
    assert accepted.status_code == 202, accepted.text
    with httpx.Client(base_url=served.base_url, headers=tenant.headers(), timeout=30.0) as http:
        deadline = time.monotonic() + 120.0
        while True:
            job = http.get(accepted.json()["status_url"]).json()
            if job["status"] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
    assert job["status"] == "completed", job
    scim_won = [r for r in creates if r.status_code == 201]
    assert all(r.status_code in (201, 409) for r in creates), [r.text for r in creates]
    # Exactly one member has the email, whoever won; the other rows landed either way.
    [holder] = holders(database, tenant, email)
    if scim_won:
        assert [uuid.UUID(scim_won[0].json()["id"])] == [holder]
        assert (job["created"], job["failed"]) == (39, 1)
        assert job["errors"] == [
            {"row": 22, "field": "email", "message": "another member of this tenant has this email"}
        ]
    else:
        assert (job["created"], job["failed"]) == (40, 0)
    assert len(scim_won) <= 1


def test_changing_an_email_to_a_taken_one_is_the_same_conflict(
    served: LiveServer, tenant: TenantToken
) -> None:
    with httpx.Client(base_url=served.base_url, headers=tenant.headers(), timeout=30.0) as http:
        ids = []
        for local in ("first", "second"):
            created = http.post(
                "/v1/members",
                json={
                    "external_id": f"{local}-{uuid.uuid4().hex[:6]}",
                    "display_name": local,
                    "email": f"{local}-{tenant.tenant_id.hex[:6]}@example.test",
                    "roles": ["engineer"],
                },
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["member_id"])
        taken = f"first-{tenant.tenant_id.hex[:6]}@example.test"
        changed = http.patch(f"/v1/members/{ids[1]}", json={"email": taken.upper()})
        assert changed.status_code == 409, changed.text
        assert changed.headers["content-type"].startswith(PROBLEM)
        assert changed.json()["errors"][0]["field"] == "email"
        user = f"/scim/v2/{tenant.tenant_id}/Users/{ids[1]}"
        patched = http.patch(
            user,
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "userName", "value": taken}],
            },
            headers={"Content-Type": "application/scim+json"},
        )
        assert patched.status_code == 409, patched.text
        assert patched.json()["scimType"] == "uniqueness"
