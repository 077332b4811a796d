"""Read-your-writes for every query family while another tenant imports thousands of members.

Tenant B imports several thousand members through ``POST /v1/member-imports`` while tenant A
writes and reads back with the ``Training-Position`` its write returned. A's reads are never
stale, never 404 and never 503 because of B (ADR 0028). Two more tests hold one view still to
show the two rules without depending on timing: a query of a view built from the planning
process waits for that view (not only for the process), and another tenant's backlog in a
view is not waited for.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql

from tests.helpers import (
    PROBLEM,
    TenantUnderTest,
    bearer,
    fetch_token,
    member_token,
    system_context,
)
from training.bootstrap import Services
from training.core.access import Role
from training.core.context import Actor, ActorKind, CommandContext
from training.demo.world import load_catalogue
from training.people.handlers.imports import ImportMembers, MemberRow
from training.tenancy.handlers import RegisterApiClient

IMPORT_ROWS = 4000
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


class BulkImport:
    """Tenant B, always importing: a job of ``IMPORT_ROWS`` members is under way whenever a
    test of tenant A writes."""

    def __init__(self, client: TestClient[Any], services: Services) -> None:
        self.tenant = TenantUnderTest(client, services, seat_limit=100_000)
        self.client = client
        self.job_url: str | None = None
        self.jobs = 0

    def status(self) -> dict[str, Any]:
        assert self.job_url is not None
        response = self.client.get(self.job_url, headers=self.tenant.headers())
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    def far_from_done(self) -> bool:
        """A job is under way with at least half its rows still to write: the test's writes
        land before it ends, however fast the views take an import in."""
        if self.job_url is None:
            return False
        job = self.status()
        running = job["status"] in ("queued", "running")
        return running and job["processed_rows"] <= IMPORT_ROWS // 2

    def ensure_under_way(self) -> None:
        """Starts a job unless one is under way and far from done, and returns once it has
        written members."""
        if self.far_from_done():
            return
        self.jobs += 1
        prefix = f"B{self.jobs}-{uuid.uuid4().hex[:6]}"
        csv = "external_id,display_name,email,roles\n" + "".join(
            f"{prefix}-{n},Person {n},{prefix.lower()}-{n}@b.example,engineer\n"
            for n in range(IMPORT_ROWS)
        )
        accepted = self.client.post(
            "/v1/member-imports",
            content=csv.encode(),
            headers={**self.tenant.headers(), "content-type": "text/csv"},
        )
        assert accepted.status_code == 202, accepted.text
        self.job_url = accepted.headers["location"]
        deadline = time.monotonic() + 60
        while self.status()["processed_rows"] == 0:
            assert time.monotonic() < deadline, "the import wrote nothing"
            time.sleep(0.02)

    def check_overlap(self) -> None:
        """The write just made landed while the import was still writing."""
        job = self.status()
        assert job["status"] in ("queued", "running"), f"the import ended too early: {job}"


@pytest.fixture(scope="module")
def importing(client: TestClient[Any], services: Services) -> BulkImport:
    load_catalogue(services.bus, system_context())  # curricula the planner picks modules from
    return BulkImport(client, services)


@pytest.fixture
def a(client: TestClient[Any], services: Services) -> TenantUnderTest:
    return TenantUnderTest(client, services, seat_limit=500)


def read(
    tenant: TenantUnderTest, url: str, position: str, headers: dict[str, str] | None = None
) -> Any:
    """A read of ``url`` that sends ``position`` back: it must answer 200 at once."""
    sent = {**(headers or bearer(tenant.token)), "Training-Position": position}
    response = tenant.client.get(url, headers=sent)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
    return response.json()


def written(response: Any, status: int = 201) -> tuple[Any, str]:
    assert response.status_code == status, response.text
    return response.json(), str(response.headers["training-position"])


def a_member(tenant: TenantUnderTest, **fields: Any) -> tuple[str, str]:
    body, position = written(tenant.add(f"A-{uuid.uuid4().hex[:8]}", **fields))
    return str(body["member_id"]), position


def review(member_id: str, cycle: str = "2026-H2", *, level: int = 1) -> dict[str, Any]:
    return {
        "cycle": cycle,
        "member_id": member_id,
        "ratings": [{"skill": "python", "level": level}, {"skill": "kubernetes", "level": 1}],
        "overall_rating": 3,
        "strengths": [],
        "goals": [{"goal_id": "G1", "skill": "kubernetes", "target_level": 3, "due": "2027-06-30"}],
    }


def finalised_review(tenant: TenantUnderTest, member_id: str, cycle: str) -> tuple[str, str]:
    """Drafts and finalises a review of ``member_id``: its id and the finalisation's position."""
    drafted, _ = written(
        tenant.client.post("/v1/reviews", json=review(member_id, cycle), headers=tenant.headers())
    )
    _, position = written(
        tenant.client.post(
            f"/v1/reviews/{drafted['review_id']}/finalise", json={}, headers=tenant.headers()
        ),
        200,
    )
    return str(drafted["review_id"]), position


def published_curriculum(tenant: TenantUnderTest) -> tuple[str, int, str]:
    curriculum, _ = written(
        tenant.client.post("/v1/curricula", json={"title": "Course"}, headers=tenant.headers())
    )
    curriculum_id = str(curriculum["curriculum_id"])
    module = {
        "key": "intro",
        "title": "Intro",
        "format": "reading",
        "duration_minutes": 30,
        "targets": [{"skill": "python", "level": 2}],
    }
    written(
        tenant.client.post(
            f"/v1/curricula/{curriculum_id}/modules", json=module, headers=tenant.headers()
        )
    )
    version, position = written(
        tenant.client.post(
            f"/v1/curricula/{curriculum_id}/publish", json={}, headers=tenant.headers()
        ),
        200,
    )
    return curriculum_id, int(version["version"]), position


# -- Every query family, while B imports --------------------------------------------------------


def test_members(a: TenantUnderTest, importing: BulkImport) -> None:
    importing.ensure_under_way()
    external_id = f"A-{uuid.uuid4().hex[:8]}"
    created, position = written(a.add(external_id, team="Core"))
    importing.check_overlap()
    member_id = created["member_id"]
    assert read(a, f"/v1/members/{member_id}", position)["team"] == "Core"
    listed = read(a, f"/v1/members?q={external_id}", position)
    assert [m["member_id"] for m in listed["items"]] == [member_id]

    _, position = written(
        a.client.patch(f"/v1/members/{member_id}", json={"team": "Edge"}, headers=a.headers()),
        200,
    )
    assert read(a, f"/v1/members/{member_id}", position)["team"] == "Edge"
    boss, _ = a_member(a, roles=["manager"])
    _, position = written(
        a.client.patch(f"/v1/members/{member_id}", json={"manager_id": boss}, headers=a.headers()),
        200,
    )
    reports = read(a, f"/v1/members/{boss}/reports", position)
    assert [m["member_id"] for m in reports["items"]] == [member_id]


def test_skills(a: TenantUnderTest, importing: BulkImport) -> None:
    importing.ensure_under_way()
    key = f"profile-{uuid.uuid4().hex[:6]}"
    profile = {"key": key, "name": "Backend", "targets": [{"skill": "python", "level": 3}]}
    _, position = written(a.client.post("/v1/role-profiles", json=profile, headers=a.headers()))
    importing.check_overlap()
    assert read(a, f"/v1/role-profiles/{key}", position)["name"] == "Backend"
    revised = {"name": "Backend, revised", "targets": profile["targets"]}
    _, position = written(
        a.client.put(f"/v1/role-profiles/{key}", json=revised, headers=a.headers()), 200
    )
    assert read(a, f"/v1/role-profiles/{key}", position)["name"] == "Backend, revised"
    assert len(read(a, f"/v1/role-profiles/{key}/revisions", position)["items"]) == 2


def test_curricula(a: TenantUnderTest, importing: BulkImport) -> None:
    importing.ensure_under_way()
    curriculum, position = written(
        a.client.post("/v1/curricula", json={"title": "Fresh"}, headers=a.headers())
    )
    importing.check_overlap()
    url = f"/v1/curricula/{curriculum['curriculum_id']}"
    assert read(a, url, position)["title"] == "Fresh"
    module = {
        "key": "basics",
        "title": "Basics",
        "format": "reading",
        "duration_minutes": 20,
        "targets": [{"skill": "python", "level": 2}],
    }
    _, position = written(a.client.post(f"{url}/modules", json=module, headers=a.headers()))
    assert [m["key"] for m in read(a, url, position)["modules"]] == ["basics"]


def test_cohorts(a: TenantUnderTest, importing: BulkImport) -> None:
    importing.ensure_under_way()
    member_id, _ = a_member(a)
    importing.check_overlap()
    curriculum_id, version, _ = published_curriculum(a)
    cohort = {
        "name": "Spring",
        "curriculum_id": curriculum_id,
        "curriculum_version": version,
        "starts_on": "2030-03-01",
        "ends_on": "2030-05-31",
        "timezone": "UTC",
        "capacity": 5,
        "facilitators": [],
    }
    scheduled, position = written(a.client.post("/v1/cohorts", json=cohort, headers=a.headers()))
    url = f"/v1/cohorts/{scheduled['cohort_id']}"
    assert read(a, url, position)["name"] == "Spring"
    _, position = written(
        a.client.post(f"{url}/enrolments", json={"member_ids": [member_id]}, headers=a.headers()),
        200,
    )
    # The enrolment list names its people from the members view.
    enrolled = read(a, f"{url}/enrolments", position)["items"]
    assert [(e["member_id"], e["status"]) for e in enrolled] == [(member_id, "enrolled")]


def test_assessments(a: TenantUnderTest, importing: BulkImport, services: Services) -> None:
    importing.ensure_under_way()
    member_id, _ = a_member(a)
    importing.check_overlap()
    evidence = {"kind": "code_review", "skill": "python", "observed_level": 4, "note": "tidy"}
    recorded, position = written(
        a.client.post(f"/v1/members/{member_id}/evidence", json=evidence, headers=a.headers())
    )
    profile = read(a, f"/v1/members/{member_id}/skill-profile", position)
    sources = [s["id"] for skill in profile["skills"] for s in skill["sources"]]
    assert recorded["evidence_id"] in sources

    own = bearer(member_token(services, a.tenant_id, uuid.UUID(member_id)))
    started, position = written(
        a.client.post("/v1/assessments", json={"skill": "python"}, headers=own)
    )
    mine = read(a, "/v1/me/assessments", position, own)["items"]
    assert started["attempt_id"] in [attempt["attempt_id"] for attempt in mine]


def test_reviews(a: TenantUnderTest, importing: BulkImport) -> None:
    importing.ensure_under_way()
    member_id, _ = a_member(a)
    importing.check_overlap()
    drafted, position = written(
        a.client.post("/v1/reviews", json=review(member_id), headers=a.headers())
    )
    url = f"/v1/reviews/{drafted['review_id']}"
    assert read(a, url, position)["status"] == "draft"
    _, position = written(a.client.post(f"{url}/finalise", json={}, headers=a.headers()), 200)
    assert read(a, url, position)["status"] == "finalised"


def test_tracks(a: TenantUnderTest, importing: BulkImport) -> None:
    importing.ensure_under_way()
    member_id, _ = a_member(a)
    importing.check_overlap()
    first, position = finalised_review(a, member_id, "2026-H1")
    url = f"/v1/members/{member_id}/track"
    track = read(a, url, position)
    assert first in track["trigger"], track
    planned = track["plan_version"]

    second, position = finalised_review(a, member_id, "2026-H2")
    track = read(a, url, position)
    assert second in track["trigger"], track
    assert track["plan_version"] > planned
    history = read(a, f"{url}/history", position)["items"]
    assert history[0]["plan_version"] == track["plan_version"]


def test_reports(a: TenantUnderTest, importing: BulkImport) -> None:
    importing.ensure_under_way()
    member_id, _ = a_member(a)
    importing.check_overlap()
    _, position = finalised_review(a, member_id, "2026-H1")
    plan = read(a, f"/v1/members/{member_id}/track", position)["plan_version"]
    # The re-plan's automatic report, queued by the report trigger from the planning events.
    listed = read(a, f"/v1/members/{member_id}/pdf-reports", position)["items"]
    assert f"re-plan to version {plan} " in " ".join(r["trigger"] for r in listed), listed

    asked = a.client.post(
        "/v1/reports", json={"kind": "individual", "subject_id": member_id}, headers=a.headers()
    )
    body, position = written(asked, 202)
    assert read(a, body["status_url"], position)["report_id"] == body["report_id"]


def test_audit(a: TenantUnderTest, importing: BulkImport) -> None:
    importing.ensure_under_way()
    curriculum, position = written(
        a.client.post("/v1/curricula", json={"title": "Audited"}, headers=a.headers())
    )
    importing.check_overlap()
    entries = read(a, "/v1/audit", position)["items"]
    assert curriculum["curriculum_id"] in [e["subject_id"] for e in entries]


def test_tenancy(
    a: TenantUnderTest, importing: BulkImport, client: TestClient[Any], operator_token: str
) -> None:
    importing.ensure_under_way()
    operator = bearer(operator_token)
    changed = client.patch(f"/v1/tenants/{a.tenant_id}", json={"seat_limit": 321}, headers=operator)
    _, position = written(changed, 200)
    importing.check_overlap()
    assert read(a, f"/v1/tenants/{a.tenant_id}", position, operator)["seat_limit"] == 321
    assert read(a, f"/v1/tenants/{a.tenant_id}", position)["seat_limit"] == 321


def test_scim(
    a: TenantUnderTest, importing: BulkImport, client: TestClient[Any], services: Services
) -> None:
    """A SCIM client sends no position: it reads right after it writes, as Okta does."""
    command = RegisterApiClient(a.tenant_id, "identity provider", ("scim",))
    token = fetch_token(client, services.bus.execute(system_context(), command).result)
    scim = {**bearer(token), "Content-Type": "application/scim+json"}
    base = f"/scim/v2/{a.tenant_id}"
    importing.ensure_under_way()
    user = {"schemas": [USER], "userName": f"{uuid.uuid4().hex[:8]}@a.example", "active": True}
    created = client.post(f"{base}/Users", json=user, headers=scim)
    assert created.status_code == 201, created.text
    importing.check_overlap()
    listed = client.get(f"{base}/Users", headers=scim)
    assert listed.status_code == 200, listed.text
    assert created.json()["id"] in [u["id"] for u in listed.json()["Resources"]]

    team = {
        "schemas": [GROUP],
        "displayName": "Platform",
        "members": [{"value": created.json()["id"]}],
    }
    grouped = client.post(f"{base}/Groups", json=team, headers=scim)
    assert grouped.status_code == 201, grouped.text
    groups = client.get(f"{base}/Groups", headers=scim)
    assert groups.status_code == 200, groups.text
    members = [m["value"] for g in groups.json()["Resources"] for m in g.get("members", [])]
    assert created.json()["id"] in members


# -- The two rules, with a view held still ------------------------------------------------------


@contextmanager
def held_still(services: Services, view: str) -> Iterator[None]:
    """The view cannot record a position (so it applies nothing) until the block ends."""
    tracking = sql.Identifier(f"{view}_tracking")
    with psycopg.connect(services.database.admin_url) as conn:
        conn.execute(sql.SQL("LOCK TABLE training.{} IN EXCLUSIVE MODE").format(tracking))
        try:
            yield
        finally:
            conn.rollback()


def test_a_track_is_read_once_the_tracks_view_holds_the_replan(
    a: TenantUnderTest, services: Services
) -> None:
    """The planning process having re-planned is not enough: the tracks view, which follows
    the planning process's events, must hold the re-plan too."""
    member_id, position = a_member(a)
    read(a, f"/v1/members/{member_id}", position)
    url = f"/v1/members/{member_id}/track"
    with held_still(services, "tracks"):
        first, position = finalised_review(a, member_id, "2026-H1")
        behind = a.client.get(url, headers=a.headers(position))
        assert behind.status_code == 503, behind.text
        assert behind.headers["content-type"] == PROBLEM
        assert behind.headers["retry-after"] == "1"
    track = read(a, url, position)
    assert first in track["trigger"]


def register_members(services: Services, tenant_id: uuid.UUID, count: int) -> int:
    """``count`` members of the tenant in one transaction, as an import batch writes them."""
    context = CommandContext(Actor(ActorKind.SYSTEM, "tests"), "held", tenant_id)
    rows = tuple(
        MemberRow(
            n + 1,
            f"H-{uuid.uuid4().hex[:8]}",
            f"Held {n}",
            None,
            (Role.ENGINEER,),
            None,
            None,
            None,
        )
        for n in range(count)
    )
    outcome = services.bus.execute(context, ImportMembers(rows))
    assert outcome.position is not None
    return outcome.position


def test_another_tenants_backlog_is_not_waited_for(
    a: TenantUnderTest, client: TestClient[Any], services: Services
) -> None:
    member_id, position = a_member(a)
    read(a, f"/v1/members/{member_id}", position)
    command = RegisterApiClient(a.tenant_id, "identity provider", ("scim",))
    scim = bearer(fetch_token(client, services.bus.execute(system_context(), command).result))
    b = TenantUnderTest(client, services, seat_limit=1000)
    with held_still(services, "members"):
        b_position = register_members(services, b.tenant_id, 150)
        # A writes after B's backlog (to another view) and reads the members view with it.
        curriculum, position = written(
            a.client.post("/v1/curricula", json={"title": "After"}, headers=a.headers())
        )
        assert int(position) > b_position
        started = time.monotonic()
        assert [m["member_id"] for m in read(a, "/v1/members", position)["items"]] == [member_id]
        assert read(a, f"/v1/curricula/{curriculum['curriculum_id']}", position)
        users = client.get(f"/scim/v2/{a.tenant_id}/Users", headers=scim)
        assert users.status_code == 200, users.text
        assert [u["id"] for u in users.json()["Resources"]] == [member_id]
        # Well under the read wait (2 s): nothing of B's was waited for.
        assert time.monotonic() - started < services.settings.read_wait
        # B's own reads do wait for B's events, and say so.
        behind = client.get("/v1/members", headers=b.headers(str(b_position)))
        assert behind.status_code == 503, behind.text
        assert behind.json()["type"].endswith("/view-behind")
    # Released, the view catches up (behind whatever else was written meanwhile).
    deadline = time.monotonic() + 60
    while (
        listed := b.client.get("/v1/members?limit=200", headers=b.headers(str(b_position)))
    ).status_code == 503:
        assert time.monotonic() < deadline, listed.text
        time.sleep(float(listed.headers["retry-after"]))
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["items"]) == 150
