"""SCIM 2.0 provisioning over real HTTP: scim2-tester's compliance checks, then our rules.

uvicorn serves the app on a free loopback port in a background thread (scim2-tester needs a
synchronous client against a live server). Each test registers its own tenant with an API
client holding the scope ``scim`` and fetches a token over HTTP.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import psycopg
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server
from scim2_tester import filling as tester_filling

from tests.helpers import system_context
from tests.live_server import LiveServer, live_server, tenant_with_token
from training.cohorts.domain.cohorts import Cohort
from training.cohorts.handlers.cohorts import ScheduleCohort
from training.core.context import Actor, ActorKind, CommandContext
from training.core.http.ratelimit import RateLimit
from training.demo.world import load_catalogue
from training.identity.http.scim.discovery import GROUPS_SETTING
from training.infra.database import Database
from training.infra.settings import Settings
from training.people.domain.members import Member, MemberStatus

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"


@pytest.fixture(scope="module")
def served(database: Database) -> Iterator[LiveServer]:
    with live_server(database, issuer_on_loopback=True) as server:
        yield server


@dataclass(frozen=True)
class Tenant:
    tenant_id: uuid.UUID
    token: str
    scim_url: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.scim_url, headers=headers, timeout=30.0)


def token_for(served: LiveServer, scopes: tuple[str, ...]) -> tuple[uuid.UUID, str]:
    tenant = tenant_with_token(served, "scim", scopes)
    return tenant.tenant_id, tenant.token


@pytest.fixture
def tenant(served: LiveServer) -> Tenant:
    tenant_id, token = token_for(served, ("scim",))
    return Tenant(tenant_id, token, f"{served.base_url}/scim/v2/{tenant_id}")


@pytest.fixture
def scim(tenant: Tenant) -> Iterator[httpx.Client]:
    with tenant.client() as client:
        yield client


def new_user(scim: httpx.Client, email: str | None = None, **attributes: Any) -> dict[str, Any]:
    body = {
        "schemas": [USER],
        "userName": email or f"{uuid.uuid4().hex[:10]}@example.test",
        "active": True,
    }
    body.update(attributes)
    response = scim.post("/Users", json=body, headers={"Content-Type": SCIM_JSON})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def patch(
    scim: httpx.Client, path: str, *operations: dict[str, Any], if_match: str | None = None
) -> httpx.Response:
    headers = {"Content-Type": SCIM_JSON}
    if if_match is not None:
        headers["If-Match"] = if_match
    body = {"schemas": [PATCH_OP], "Operations": list(operations)}
    return scim.patch(path, json=body, headers=headers)


# -- scim2-tester ---------------------------------------------------------------------------


def result_key(result: Any) -> tuple[str, str, str | None]:
    urn = result.data.get("urn") if isinstance(result.data, dict) else None
    return (str(result.resource_type), str(result.title), urn)


def test_scim2_tester_finds_no_error(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    # scim2-tester draws userName from random UUIDs; here userName is the member's email,
    # so it is taught to draw email addresses for it (and only for it).
    draw = tester_filling.get_random_example_value

    def example_value(path: Any) -> Any:
        if str(path).rsplit(":", 1)[-1] == "userName":
            return f"{uuid.uuid4().hex}@example.test"
        return draw(path)

    monkeypatch.setattr(tester_filling, "get_random_example_value", example_value)
    http = httpx2.Client(
        base_url=tenant.scim_url,
        headers={"Authorization": f"Bearer {tenant.token}"},
    )
    with http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client)

    counts = Counter(result.status.name for result in results)
    summary = ", ".join(f"{status}: {count}" for status, count in sorted(counts.items()))
    print(f"scim2-tester: {len(results)} checks; {summary}")
    failing = [r for r in results if r.status in (Status.CRITICAL, Status.ERROR)]
    assert not failing, "\n".join(f"{r.status.name} {result_key(r)}: {r.reason}" for r in failing)
    assert counts[Status.ERROR.name] == counts[Status.CRITICAL.name] == 0
    assert counts[Status.SUCCESS.name] >= 60, summary


# -- Users ----------------------------------------------------------------------------------


def member(served: LiveServer, member_id: str) -> Member:
    found = served.services.app.repository.get(uuid.UUID(member_id))
    assert isinstance(found, Member)
    return found


def test_a_user_is_provisioned_read_deactivated_and_deleted(
    served: LiveServer, database: Database, tenant: Tenant, scim: httpx.Client
) -> None:
    email = f"ada.{uuid.uuid4().hex[:8]}@example.test"
    created = new_user(
        scim,
        email,
        schemas=[USER, ENTERPRISE],
        externalId="hr-1815",
        name={"formatted": "Ada Lovelace", "givenName": "Ada"},  # givenName is not kept
        title="Analyst",
        phoneNumbers=[{"value": "+44 20 7946 0000"}],  # not kept either, and no error
        **{ENTERPRISE: {"department": "Engines"}},
    )
    member_id = created["id"]
    assert created["userName"] == email
    assert created["externalId"] == "hr-1815"
    # name.formatted is another way to send the display name; it is returned as displayName.
    assert created["displayName"] == "Ada Lovelace"
    assert "name" not in created
    assert created["title"] == "Analyst"
    assert created["active"] is True
    assert created[ENTERPRISE] == {"department": "Engines"}
    assert created["meta"]["version"] == 'W/"1"'
    assert created["meta"]["location"] == f"{tenant.scim_url}/Users/{member_id}"
    assert "phoneNumbers" not in created
    provisioned = member(served, member_id)
    assert provisioned.tenant_id == tenant.tenant_id
    assert provisioned.external_id == "hr-1815"
    assert [str(role) for role in provisioned.roles] == ["engineer"]
    assert (provisioned.team, provisioned.job_title) == ("Engines", "Analyst")

    read = scim.get(f"/Users/{member_id}")
    assert read.status_code == 200, read.text
    assert read.headers["etag"] == 'W/"1"'
    assert read.headers["content-type"].startswith(SCIM_JSON)
    assert read.json()["userName"] == email

    deactivated = patch(
        scim, f"/Users/{member_id}", {"op": "replace", "path": "active", "value": False}
    )
    assert deactivated.status_code in (200, 204), deactivated.text
    assert deactivated.headers["etag"] == 'W/"2"'
    assert member(served, member_id).status is MemberStatus.DEACTIVATED
    assert scim.get(f"/Users/{member_id}").json()["active"] is False

    deleted = scim.delete(f"/Users/{member_id}")
    assert deleted.status_code == 204, deleted.text
    gone = scim.get(f"/Users/{member_id}")
    assert gone.status_code == 404
    assert gone.json()["schemas"] == [ERROR]
    assert (
        scim.get("/Users", params={"filter": f'userName eq "{email}"'}).json()["totalResults"] == 0
    )
    closed = member(served, member_id)
    assert closed.erased
    assert closed.status is MemberStatus.DEACTIVATED

    # The personal data is gone, and no event ever held it.
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM training.people WHERE member_id = %s", (member_id,)
        ).fetchone()
    assert row is not None
    assert row[0] == 0
    recorder = served.services.app.recorder
    stored = list(recorder.select_notifications(start=1, limit=1_000_000))
    assert any(event.originator_id == uuid.UUID(member_id) for event in stored)
    for event in stored:
        decoded = repr(served.services.app.mapper.to_domain_event(event))
        for secret in (email, "Ada Lovelace"):
            assert secret.encode() not in event.state
            assert secret not in decoded


def test_a_user_without_external_id_gets_an_opaque_one_and_the_user_name_as_name(
    served: LiveServer, database: Database, scim: httpx.Client
) -> None:
    created = new_user(scim, "Grace.Hopper@Example.TEST")
    assert created["userName"] == "grace.hopper@example.test"
    # The defaults are not shown as the client's own values: it sent none.
    assert "externalId" not in created
    assert "displayName" not in created
    provisioned = member(served, created["id"])
    # An email is never an external id: it would stay in the member's history.
    assert re.fullmatch(r"member-[0-9a-f]{32}", provisioned.external_id)
    assert personal(database, created["id"]) == ("grace.hopper@example.test",) * 2

    # The display name follows the email when it changes; the external id stays.
    moved = patch(
        scim,
        f"/Users/{created['id']}",
        {"op": "replace", "path": "userName", "value": "grace@example.test"},
    )
    assert moved.status_code in (200, 204), moved.text
    assert member(served, created["id"]).external_id == provisioned.external_id
    assert personal(database, created["id"]) == ("grace@example.test",) * 2


def test_an_email_as_external_id_is_refused(scim: httpx.Client) -> None:
    refused = scim.post(
        "/Users",
        json={
            "schemas": [USER],
            "userName": "eve@example.test",
            "externalId": "eve@example.test",
            "active": True,
        },
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["scimType"] == "invalidValue"
    assert "external id" in refused.json()["detail"]
    user = new_user(scim)
    changed = patch(
        scim,
        f"/Users/{user['id']}",
        {"op": "replace", "path": "externalId", "value": user["userName"]},
    )
    assert changed.status_code == 400, changed.text


def personal(database: Database, member_id: str) -> tuple[str, str | None]:
    """The member's stored display name and email."""
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT display_name, email FROM training.people WHERE member_id = %s", (member_id,)
        ).fetchone()
    assert row is not None
    return str(row[0]), row[1]


def test_a_user_name_must_be_an_unused_email(scim: httpx.Client) -> None:
    refused = scim.post(
        "/Users", json={"schemas": [USER], "userName": "not-an-email", "active": True}
    )
    assert refused.status_code == 400
    assert refused.json()["scimType"] == "invalidValue"
    # A member always has a status: active is required, and nothing is written without it.
    no_status = scim.post("/Users", json={"schemas": [USER], "userName": "s@example.test"})
    assert no_status.status_code == 400
    assert "active" in no_status.json()["detail"]
    assert (
        scim.get("/Users", params={"filter": 'userName eq "s@example.test"'}).json()["totalResults"]
        == 0
    )
    taken = new_user(scim)["userName"]
    again = scim.post(
        "/Users",
        json={"schemas": [USER], "userName": taken, "externalId": "other", "active": True},
    )
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"


def test_changes_map_to_the_member(served: LiveServer, scim: httpx.Client) -> None:
    manager = new_user(scim)
    user = new_user(scim)
    renamed = f"new.{uuid.uuid4().hex[:8]}@example.test"
    response = patch(
        scim,
        f"/Users/{user['id']}",
        {"op": "replace", "path": "userName", "value": renamed},
        {"op": "replace", "path": "displayName", "value": "Grace B. Hopper"},
        {"op": "add", "path": "title", "value": "Rear Admiral"},
        {"op": "add", "path": f"{ENTERPRISE}:department", "value": "Compilers"},
        {"op": "add", "path": f"{ENTERPRISE}:manager", "value": {"value": manager["id"]}},
    )
    assert response.status_code in (200, 204), response.text
    read = scim.get(f"/Users/{user['id']}").json()
    assert read["userName"] == renamed
    assert read["displayName"] == "Grace B. Hopper"
    assert read["title"] == "Rear Admiral"
    assert read[ENTERPRISE]["department"] == "Compilers"
    assert read[ENTERPRISE]["manager"]["value"] == manager["id"]
    assert read[ENTERPRISE]["manager"]["$ref"].endswith(f"/Users/{manager['id']}")
    changed = member(served, user["id"])
    assert changed.manager_id == uuid.UUID(manager["id"])
    assert (changed.team, changed.job_title) == ("Compilers", "Rear Admiral")

    cleared = patch(
        scim,
        f"/Users/{user['id']}",
        {"op": "remove", "path": "title"},
        {"op": "remove", "path": f"{ENTERPRISE}:manager"},
    )
    assert cleared.status_code in (200, 204), cleared.text
    assert member(served, user["id"]).manager_id is None
    assert member(served, user["id"]).job_title is None

    reactivated = patch(
        scim, f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": False}
    )
    assert reactivated.status_code in (200, 204)
    put = scim.put(
        f"/Users/{user['id']}",
        json={"schemas": [USER], "userName": renamed, "displayName": "G", "active": True},
    )
    assert put.status_code == 200, put.text
    assert put.json()["active"] is True
    assert put.json()["displayName"] == "G"
    assert "title" not in put.json()
    assert member(served, user["id"]).status is MemberStatus.ACTIVE


def test_the_external_id_may_change_and_the_member_id_stays(
    served: LiveServer, database: Database, scim: httpx.Client
) -> None:
    first, second = f"hr-{uuid.uuid4().hex[:8]}", f"hr-{uuid.uuid4().hex[:8]}"
    user = new_user(scim, externalId=first, displayName="Ada")
    path = f"/Users/{user['id']}"
    changed = patch(scim, path, {"op": "replace", "path": "externalId", "value": second})
    assert changed.status_code in (200, 204), changed.text
    assert changed.headers["etag"] == 'W/"2"'
    assert member(served, user["id"]).external_id == second

    def found(key: str) -> list[str]:
        listed = scim.get("/Users", params={"filter": f'externalId eq "{key}"'}).json()
        return [r["id"] for r in listed.get("Resources", [])]

    assert found(second) == [user["id"]]
    assert found(first) == []
    # The old external id is free again: a new member gets it, with an id of its own.
    again = new_user(scim, externalId=first)
    assert again["id"] != user["id"]
    assert found(first) == [again["id"]]
    # An external id another member holds is refused, and nothing changes.
    taken = patch(scim, path, {"op": "replace", "path": "externalId", "value": first})
    assert taken.status_code == 409
    assert taken.json()["scimType"] == "uniqueness"
    assert member(served, user["id"]).external_id == second
    # The change is an event of its own, naming no personal data.
    events = served.services.app.repository.event_store.get(uuid.UUID(user["id"]))
    assert [type(e).__name__ for e in events][-1] == "ExternalIdChanged"

    # Removing externalId or displayName brings the defaults back: a generated external id
    # and the email as display name.
    removed = patch(
        scim, path, {"op": "remove", "path": "externalId"}, {"op": "remove", "path": "displayName"}
    )
    assert removed.status_code in (200, 204), removed.text
    read = scim.get(path).json()
    assert "externalId" not in read
    assert "displayName" not in read
    assert re.fullmatch(r"member-[0-9a-f]{32}", member(served, user["id"]).external_id)
    assert personal(database, user["id"]) == (user["userName"], user["userName"])
    assert found(second) == []
    # A PUT that omits them does not assert them: the values are kept.
    patch(scim, path, {"op": "add", "path": "externalId", "value": second})
    put = scim.put(path, json={"schemas": [USER], "userName": user["userName"], "active": True})
    assert put.status_code == 200, put.text
    assert put.json()["externalId"] == second


def test_filters_by_user_name_and_external_id(scim: httpx.Client) -> None:
    ada = new_user(scim, externalId=f"hr-{uuid.uuid4().hex[:8]}")
    new_user(scim)
    by_name = scim.get("/Users", params={"filter": f'userName eq "{ada["userName"].upper()}"'})
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["totalResults"] == 1
    assert [r["id"] for r in by_name.json()["Resources"]] == [ada["id"]]
    by_key = scim.get("/Users", params={"filter": f'externalId eq "{ada["externalId"]}"'})
    assert [r["id"] for r in by_key.json()["Resources"]] == [ada["id"]]
    # externalId is case-exact.
    other_case = scim.get(
        "/Users", params={"filter": f'externalId eq "{ada["externalId"].upper()}"'}
    )
    assert other_case.json()["totalResults"] == 0
    nobody = scim.get("/Users", params={"filter": 'userName eq "nobody@example.test"'})
    assert nobody.json()["totalResults"] == 0
    # Any other filter is evaluated by scim2-models over the tenant's members.
    starts = scim.get("/Users", params={"filter": f'userName sw "{ada["userName"][:6]}"'})
    assert [r["id"] for r in starts.json()["Resources"]] == [ada["id"]]
    searched = scim.post(
        "/Users/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f'externalId eq "{ada["externalId"]}"',
            "attributes": ["userName"],
        },
    )
    assert searched.status_code == 200, searched.text
    assert searched.json()["Resources"] == [
        {"schemas": [USER], "id": ada["id"], "userName": ada["userName"]}
    ]


def test_pagination(scim: httpx.Client) -> None:
    ids = sorted(new_user(scim)["id"] for _ in range(5))
    first = scim.get("/Users", params={"startIndex": 1, "count": 2}).json()
    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (5, 1, 2)
    pages = [
        scim.get("/Users", params={"startIndex": start, "count": 2, "sortBy": "id"}).json()
        for start in (1, 3, 5)
    ]
    assert [len(page["Resources"]) for page in pages] == [2, 2, 1]
    seen = [r["id"] for page in pages for r in page["Resources"]]
    assert sorted(seen) == ids
    beyond = scim.get("/Users", params={"startIndex": 6, "count": 2}).json()
    assert beyond["totalResults"] == 5
    assert beyond.get("Resources", []) == []
    ordered = scim.get("/Users", params={"sortBy": "userName", "sortOrder": "descending"})
    names = [r["userName"] for r in ordered.json()["Resources"]]
    assert names == sorted(names, reverse=True)


def test_if_match_with_an_old_etag_fails_with_412(served: LiveServer, scim: httpx.Client) -> None:
    user = new_user(scim)
    path = f"/Users/{user['id']}"
    etag = scim.get(path).headers["etag"]
    assert etag == 'W/"1"'
    stale = patch(scim, path, {"op": "replace", "path": "title", "value": "A"}, if_match='W/"7"')
    assert stale.status_code == 412
    assert stale.json()["schemas"] == [ERROR]
    fresh = patch(scim, path, {"op": "replace", "path": "title", "value": "A"}, if_match=etag)
    assert fresh.status_code in (200, 204), fresh.text
    assert fresh.headers["etag"] == 'W/"2"' == f'W/"{member(served, user["id"]).version}"'
    old = scim.put(
        path,
        json={"schemas": [USER], "userName": user["userName"], "title": "B", "active": True},
        headers={"If-Match": etag},
    )
    assert old.status_code == 412
    assert scim.delete(path, headers={"If-Match": etag}).status_code == 412
    assert scim.get(path, headers={"If-None-Match": 'W/"2"'}).status_code == 304
    assert scim.delete(path, headers={"If-Match": 'W/"2"'}).status_code == 204


# -- Who may provision ----------------------------------------------------------------------


def test_only_a_scim_client_of_the_tenant_may_provision(
    served: LiveServer, tenant: Tenant, scim: httpx.Client
) -> None:
    new_user(scim)
    with httpx.Client(base_url=tenant.scim_url, timeout=30.0) as anonymous:
        missing = anonymous.get("/Users")
    assert missing.status_code == 401
    assert missing.json()["schemas"] == [ERROR]
    assert missing.json()["status"] == "401"
    assert missing.headers["www-authenticate"].startswith("Bearer")

    with tenant.client("not-a-token") as forged:
        assert forged.get("/Users").status_code == 401

    _, other_token = token_for(served, ("scim",))
    with tenant.client(other_token) as other_tenant:
        refused = other_tenant.get("/Users")
        assert refused.status_code == 403
        assert refused.json()["schemas"] == [ERROR]
        assert other_tenant.post("/Users", json={"userName": "x@example.test"}).status_code == 403

    unscoped_tenant, unscoped = token_for(served, ("members:read", "members:write"))
    with httpx.Client(base_url=served.base_url, timeout=30.0) as http:
        refused = http.get(
            f"/scim/v2/{unscoped_tenant}/Users", headers={"Authorization": f"Bearer {unscoped}"}
        )
    assert refused.status_code == 403
    assert "scim" in refused.json()["detail"]


def test_scim_requests_are_rate_limited_per_client(
    served: LiveServer,
    database: Database,
    tenant: Tenant,
    scim: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A small limit for this test only; the tenant's client is new, so its bucket is full.
    monkeypatch.setattr(served.app.state.rate_limits, "limit", RateLimit(3, 60))
    for _ in range(3):
        assert scim.get("/Users").status_code == 200
    refused = scim.post("/Users", json={"schemas": [USER], "userName": "late@example.test"})
    assert refused.status_code == 429
    assert refused.json()["schemas"] == [ERROR]
    assert refused.json()["status"] == "429"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Nothing was written by the refused request.
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM training.people WHERE tenant_id = %s", (tenant.tenant_id,)
        ).fetchone()
    assert row == (0,)


def test_unknown_tenant_prefix_is_a_scim_404(served: LiveServer, tenant: Tenant) -> None:
    with httpx.Client(base_url=served.base_url, timeout=30.0) as http:
        response = http.get(
            "/scim/v2/not-a-tenant/Users", headers={"Authorization": f"Bearer {tenant.token}"}
        )
    assert response.status_code == 404
    assert response.json()["schemas"] == [ERROR]


# -- Discovery ------------------------------------------------------------------------------


def test_discovery_is_served_per_tenant(tenant: Tenant, scim: httpx.Client) -> None:
    config = scim.get("/ServiceProviderConfig")
    assert config.status_code == 200, config.text
    assert config.json()["etag"] == {"supported": True}
    assert config.json()["meta"]["location"] == f"{tenant.scim_url}/ServiceProviderConfig"
    types = scim.get("/ResourceTypes").json()
    assert sorted(t["name"] for t in types["Resources"]) == ["Group", "User"]
    schemas = {s["id"]: s for s in scim.get("/Schemas").json()["Resources"]}
    user_attributes = {a["name"] for a in schemas[USER]["attributes"]}
    assert user_attributes == {"userName", "name", "displayName", "title", "active"}
    enterprise = {a["name"] for a in schemas[ENTERPRISE]["attributes"]}
    assert enterprise == {"department", "manager"}


def test_groups_may_be_cohorts_whose_members_are_enrolled(
    served: LiveServer, tenant: Tenant, scim: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada, grace = new_user(scim), new_user(scim)
    catalogue = load_catalogue(served.services.bus, system_context())
    context = CommandContext(Actor(ActorKind.SYSTEM, "tests"), "r", tenant.tenant_id)
    schedule = ScheduleCohort(
        "Spring cohort", catalogue[0], 1, dt.date(2027, 1, 11), dt.date(2027, 4, 23), "UTC", 10
    )
    cohort_id = served.services.bus.execute(context, schedule).result.cohort_id
    settings = dataclasses.replace(served.services.settings, scim_groups="cohorts")
    monkeypatch.setattr(served.services, "settings", settings)

    types = scim.get("/ResourceTypes").json()
    assert sorted(t["name"] for t in types["Resources"]) == ["Group", "User"]
    listed = scim.get("/Groups").json()
    assert [(g["id"], g["displayName"]) for g in listed["Resources"]] == [
        (str(cohort_id), "Spring cohort")
    ]
    path = f"/Groups/{cohort_id}"
    group = scim.get(path)
    assert group.status_code == 200, group.text
    assert group.headers["etag"] == 'W/"1"'  # the cohort's version

    enrolled = patch(
        scim,
        path,
        {"op": "add", "path": "members", "value": [{"value": ada["id"]}, {"value": grace["id"]}]},
        if_match=group.headers["etag"],
    )
    assert enrolled.status_code in (200, 204), enrolled.text
    cohort = served.services.app.repository.get(cohort_id)
    assert isinstance(cohort, Cohort)
    assert set(cohort.enrolled) == {uuid.UUID(ada["id"]), uuid.UUID(grace["id"])}
    read = scim.get(path)
    assert sorted(m["value"] for m in read.json()["members"]) == sorted([ada["id"], grace["id"]])
    assert read.headers["etag"] == f'W/"{cohort.version}"'

    withdrawn = patch(scim, path, {"op": "remove", "path": f'members[value eq "{ada["id"]}"]'})
    assert withdrawn.status_code in (200, 204), withdrawn.text
    cohort = served.services.app.repository.get(cohort_id)
    assert isinstance(cohort, Cohort)
    assert cohort.enrolled == [uuid.UUID(grace["id"])]

    # An old ETag, a new name, creating or deleting a cohort: refused, nothing written.
    version = cohort.version
    stale = patch(
        scim,
        path,
        {"op": "add", "path": "members", "value": [{"value": ada["id"]}]},
        if_match='W/"1"',
    )
    assert stale.status_code == 412
    renamed = patch(scim, path, {"op": "replace", "path": "displayName", "value": "Other"})
    assert renamed.status_code == 400
    assert renamed.json()["scimType"] == "mutability"
    created = scim.post("/Groups", json={"schemas": [GROUP], "displayName": "New"})
    assert created.status_code == 403
    assert GROUPS_SETTING in created.json()["detail"]
    assert scim.delete(path).status_code == 403
    assert served.services.app.repository.get(cohort_id).version == version
    # Another tenant's cohort is not found.
    other_tenant, other_token = token_for(served, ("scim",))
    with httpx.Client(
        base_url=f"{served.base_url}/scim/v2/{other_tenant}",
        headers={"Authorization": f"Bearer {other_token}"},
        timeout=30.0,
    ) as other:
        assert other.get(path).status_code == 404
        assert other.get("/Groups").json()["totalResults"] == 0


def test_an_unknown_groups_setting_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match=GROUPS_SETTING):
        Settings.from_env({GROUPS_SETTING: "departments"})


# -- Groups are teams -----------------------------------------------------------------------


def test_group_membership_is_the_team(served: LiveServer, scim: httpx.Client) -> None:
    ada, grace = new_user(scim), new_user(scim)
    created = scim.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "displayName": "Platform",
            "members": [{"value": ada["id"], "type": "User"}],
        },
    )
    assert created.status_code == 201, created.text
    group = created.json()
    assert [m["value"] for m in group["members"]] == [ada["id"]]
    assert member(served, ada["id"]).team == "Platform"
    assert scim.get(f"/Users/{ada['id']}").json()[ENTERPRISE]["department"] == "Platform"

    added = patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": grace["id"]}]},
        if_match=group["meta"]["version"],
    )
    assert added.status_code in (200, 204), added.text
    assert member(served, grace["id"]).team == "Platform"
    listed = scim.get("/Groups", params={"filter": 'displayName eq "Platform"'}).json()
    assert listed["totalResults"] == 1
    assert sorted(m["value"] for m in listed["Resources"][0]["members"]) == sorted(
        [ada["id"], grace["id"]]
    )

    removed = patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "remove", "path": f'members[value eq "{ada["id"]}"]'},
    )
    assert removed.status_code in (200, 204), removed.text
    assert member(served, ada["id"]).team is None
    assert member(served, grace["id"]).team == "Platform"

    # A team has an identity of its own: renaming it keeps the id and moves its members.
    renamed = patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "replace", "path": "displayName", "value": "Platform Engineering"},
        {"op": "add", "path": "externalId", "value": "okta-00g1"},
    )
    assert renamed.status_code in (200, 204), renamed.text
    assert member(served, grace["id"]).team == "Platform Engineering"
    read = scim.get(f"/Groups/{group['id']}").json()
    assert (read["displayName"], read["externalId"]) == ("Platform Engineering", "okta-00g1")
    assert [m["value"] for m in read["members"]] == [grace["id"]]
    assert (
        scim.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "platform engineering"}
        ).json()["scimType"]
        == "uniqueness"
    )
    # An unknown member is refused with a SCIM error, and nothing is written.
    unknown = patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "add", "path": "members", "value": [{"value": str(uuid.uuid4())}]},
    )
    assert unknown.status_code == 400, unknown.text
    assert unknown.json()["schemas"] == [ERROR]
    assert scim.get(f"/Groups/{group['id']}").json()["displayName"] == "Platform Engineering"
    assert member(served, grace["id"]).team == "Platform Engineering"

    # An empty team exists, is listed, and goes when deleted.
    empty = scim.post("/Groups", json={"schemas": [GROUP], "displayName": "Empty"})
    assert empty.status_code == 201, empty.text
    assert "members" not in empty.json()
    listed_names = {g["displayName"] for g in scim.get("/Groups").json()["Resources"]}
    assert listed_names == {"Platform Engineering", "Empty"}

    assert scim.delete(f"/Groups/{group['id']}").status_code == 204
    assert member(served, grace["id"]).team is None
    assert scim.get(f"/Groups/{group['id']}").status_code == 404
    assert scim.delete(f"/Groups/{empty.json()['id']}").status_code == 204
    assert scim.get("/Groups").json()["totalResults"] == 0


def test_another_tenants_group_is_not_found(served: LiveServer, scim: httpx.Client) -> None:
    group = scim.post("/Groups", json={"schemas": [GROUP], "displayName": "Mine"}).json()
    other_tenant, other_token = token_for(served, ("scim",))
    with httpx.Client(
        base_url=f"{served.base_url}/scim/v2/{other_tenant}",
        headers={"Authorization": f"Bearer {other_token}"},
        timeout=30.0,
    ) as other:
        assert other.get(f"/Groups/{group['id']}").status_code == 404
        assert other.delete(f"/Groups/{group['id']}").status_code == 404
        assert other.get("/Groups").json()["totalResults"] == 0
    assert scim.get(f"/Groups/{group['id']}").json()["displayName"] == "Mine"


def test_an_entra_style_patch_is_understood(served: LiveServer, scim: httpx.Client) -> None:
    user = new_user(scim)
    response = patch(
        scim,
        f"/Users/{user['id']}",
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": user["userName"]},
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555"},
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Sales"},
    )
    assert response.status_code in (200, 204), response.text
    changed = member(served, user["id"])
    assert changed.status is MemberStatus.DEACTIVATED
    assert changed.team == "Sales"
