"""PDF reports over HTTP: the automatic report of a re-plan, downloads with ETags, reports on
request, who may see which report, and tenant isolation."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from pypdf import PdfReader

from tests.helpers import PROBLEM, TenantUnderTest, bearer, member_token, system_context
from tests.waiting import wait_until
from training.bootstrap import Services
from training.cohorts.handlers.cohorts import ScheduleCohort
from training.cohorts.handlers.enrolments import Enrol
from training.core.access import Role
from training.core.context import Actor, ActorKind, CommandContext
from training.demo.world import load_catalogue
from training.infra.database import Database
from training.people.domain.members import Member
from training.people.handlers.imports import ImportMembers, MemberRow
from training.reports.worker import page_count
from training.reviews.domain import Goal, ReviewContent, SkillRating
from training.reviews.handlers import DraftReview
from training.skills.domain import SkillTarget
from training.skills.handlers import DefineRoleProfile

NAME = "Dana Whitfield"
MANAGER = "Marek Novak"
OTHER = "Olu Adeyemi"


wait_for = partial(wait_until, timeout=120.0, poll=0.2)


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


@dataclass
class Setup:
    tenant: TenantUnderTest
    context: CommandContext
    engineer: uuid.UUID
    manager: uuid.UUID
    other: uuid.UUID
    cohort: uuid.UUID
    position: int

    @property
    def client(self) -> TestClient[Any]:
        return self.tenant.client

    def hr(self) -> dict[str, str]:
        return self.tenant.headers(str(self.position))

    def person(self, member_id: uuid.UUID) -> dict[str, str]:
        token = member_token(self.tenant.services, self.tenant.tenant_id, member_id)
        return {**bearer(token), "Training-Position": str(self.position)}


def review(member_id: uuid.UUID) -> DraftReview:
    content = ReviewContent(
        ratings=(SkillRating("python", 2), SkillRating("sql", 2)),
        overall_rating=3,
        goals=(Goal("G1", "kubernetes", 3, dt.date(2027, 6, 30)),),
        target_role_profile="backend-l3",
    )
    return DraftReview("2026-H2", member_id, None, content, finalise=True, strengths=("careful",))


@pytest.fixture(scope="module")
def setup(client: TestClient[Any], services: Services) -> Setup:
    catalogue = load_catalogue(services.bus, system_context())
    tenant = TenantUnderTest(client, services)
    context = CommandContext(Actor(ActorKind.SYSTEM, "tests"), "r", tenant.tenant_id)
    rows = (
        MemberRow(1, "M1", MANAGER, None, (Role.MANAGER,), None, "Core", "Lead"),
        MemberRow(2, "E1", NAME, None, (Role.ENGINEER,), "M1", "Core", "Backend engineer"),
        MemberRow(3, "E2", OTHER, None, (Role.ENGINEER,), None, "Core", "Engineer"),
    )
    services.bus.execute(context, ImportMembers(rows))
    profile = DefineRoleProfile(
        "backend-l3", "Backend Engineer L3", "", (SkillTarget("python", 4), SkillTarget("sql", 3))
    )
    services.bus.execute(context, profile)
    engineer, manager, other = (
        Member.create_id(tenant.tenant_id, key) for key in ("E1", "M1", "E2")
    )
    services.bus.execute(context, review(engineer))
    cohort = services.bus.execute(
        context,
        ScheduleCohort(
            "Platform engineering, spring",
            catalogue[0],
            1,
            dt.date(2026, 1, 12),
            dt.date(2026, 4, 24),
            "UTC",
            10,
        ),
    ).result.cohort_id
    outcome = services.bus.execute(context, Enrol(cohort, (other,)))
    assert outcome.position is not None
    return Setup(tenant, context, engineer, manager, other, cohort, outcome.position)


def member_reports(setup: Setup, member_id: uuid.UUID) -> list[dict[str, Any]]:
    response = setup.client.get(f"/v1/members/{member_id}/pdf-reports", headers=setup.hr())
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def rendered(setup: Setup, report_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        response = setup.client.get(f"/v1/reports/{report_id}", headers=setup.hr())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["status"] != "failed", body
        return body if body["status"] == "rendered" else None

    found: dict[str, Any] = wait_for(done)
    return found


@pytest.fixture(scope="module")
def automatic(setup: Setup) -> dict[str, Any]:
    """The report the re-plan after the finalised review made, once rendered."""
    first = wait_for(
        lambda: [
            r
            for r in member_reports(setup, setup.engineer)
            if r["trigger"].startswith("re-plan to version 1 ")
        ]
    )
    return rendered(setup, first[0]["report_id"])


def plan_reasons(database: Database, tenant_id: uuid.UUID, member_id: uuid.UUID) -> list[str]:
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
        rows = conn.execute(
            "SELECT p.modules FROM training.track_plans p WHERE p.member_id = %s "
            "AND p.plan_version = 1",
            (member_id,),
        ).fetchone()
    assert rows is not None
    return [str(m["reason"]) for m in rows[0]]


def test_a_re_plan_makes_the_individual_report_automatically(
    setup: Setup, automatic: dict[str, Any], database: Database
) -> None:
    assert automatic["kind"] == "individual"
    assert automatic["subject_id"] == str(setup.engineer)
    assert automatic["plan_version"] == 1
    assert automatic["requested_by"] == "system:planning"
    assert "PerformanceReview.Finalised" in automatic["trigger"]
    response = setup.client.get(automatic["pdf_url"], headers=setup.hr())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    pdf = response.content
    digest = hashlib.sha256(pdf).hexdigest()
    assert response.headers["etag"] == f'"{digest}"'
    assert automatic["checksum"] == digest
    assert automatic["size_bytes"] == len(pdf)
    assert automatic["pages"] == len(PdfReader(io.BytesIO(pdf)).pages) == page_count(pdf) >= 3
    text = text_of(pdf)
    assert NAME in text
    reasons = plan_reasons(database, setup.tenant.tenant_id, setup.engineer)
    assert reasons
    assert " ".join(reasons[0].split()) in text
    assert "This is the first plan" in text

    again = setup.client.get(
        automatic["pdf_url"], headers={**setup.hr(), "If-None-Match": f'"{digest}"'}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == f'"{digest}"'
    other = setup.client.get(
        automatic["pdf_url"], headers={**setup.hr(), "If-None-Match": '"something-else"'}
    )
    assert other.status_code == 200
    assert other.content == pdf


def test_one_report_per_plan_version(
    setup: Setup, automatic: dict[str, Any], database: Database
) -> None:
    with psycopg.connect(database.admin_url) as conn:
        counts = conn.execute(
            "SELECT for_plan_version, count(*) FROM training.reports "
            "WHERE subject_id = %s AND for_plan_version IS NOT NULL GROUP BY 1",
            (setup.engineer,),
        ).fetchall()
        requested = conn.execute(
            "SELECT count(*) FROM training.training_events WHERE originator_id = %s "
            "AND topic = 'training.reports:Report.Requested'",
            (uuid.UUID(automatic["report_id"]),),
        ).fetchone()
    assert counts
    assert all(count == 1 for _, count in counts)
    assert requested == (1,)


def test_the_member_and_their_manager_see_the_report_and_others_do_not(
    setup: Setup, automatic: dict[str, Any]
) -> None:
    url = f"/v1/reports/{automatic['report_id']}"
    for allowed in (setup.engineer, setup.manager):
        headers = setup.person(allowed)
        assert setup.client.get(url, headers=headers).status_code == 200
        assert setup.client.get(f"{url}/pdf", headers=headers).status_code == 200
        listed = setup.client.get(f"/v1/members/{setup.engineer}/pdf-reports", headers=headers)
        assert listed.status_code == 200
        assert automatic["report_id"] in [r["report_id"] for r in listed.json()["items"]]
    stranger = setup.person(setup.other)
    for path in (url, f"{url}/pdf", f"/v1/members/{setup.engineer}/pdf-reports"):
        refused = setup.client.get(path, headers=stranger)
        assert refused.status_code in (403, 404), path
        assert refused.headers["content-type"].startswith(PROBLEM)
    asked = setup.client.post(
        "/v1/reports",
        json={"kind": "individual", "subject_id": str(setup.engineer)},
        headers=stranger,
    )
    assert asked.status_code == 403
    assert asked.headers["content-type"].startswith(PROBLEM)


def test_a_member_asks_for_their_own_report(setup: Setup, automatic: dict[str, Any]) -> None:
    headers = setup.person(setup.engineer)
    response = setup.client.post(
        "/v1/reports",
        json={"kind": "individual", "subject_id": str(setup.engineer)},
        headers=headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == body["status_url"]
    done = rendered(setup, body["report_id"])
    assert done["trigger"] == "on request"
    assert done["requested_by"] == f"member:{setup.engineer}"
    assert done["plan_version"] is not None
    items = [r["report_id"] for r in member_reports(setup, setup.engineer)]
    assert items.index(body["report_id"]) < items.index(automatic["report_id"])  # newest first
    refused = setup.client.post(
        "/v1/reports", json={"kind": "cohort", "subject_id": str(setup.cohort)}, headers=headers
    )
    assert refused.status_code == 403


def test_hr_asks_for_a_cohort_report_and_an_effectiveness_report(setup: Setup) -> None:
    response = setup.client.post(
        "/v1/reports",
        json={"kind": "cohort", "subject_id": str(setup.cohort)},
        headers=setup.hr(),
    )
    assert response.status_code == 202, response.text
    done = rendered(setup, response.json()["report_id"])
    assert done["kind"] == "cohort"
    pdf = setup.client.get(done["pdf_url"], headers=setup.hr())
    assert pdf.status_code == 200
    text = text_of(pdf.content)
    assert "Platform engineering, spring" in text
    assert OTHER in text  # the roster
    assert hashlib.sha256(pdf.content).hexdigest() == done["checksum"]

    response = setup.client.post("/v1/reports", json={"kind": "effectiveness"}, headers=setup.hr())
    assert response.status_code == 202, response.text
    done = rendered(setup, response.json()["report_id"])
    assert done["subject_id"] is None
    assert done["pages"] >= 1


def test_bad_requests_are_problems(setup: Setup) -> None:
    cases: list[tuple[dict[str, Any], int]] = [
        ({"kind": "individual"}, 422),
        ({"kind": "effectiveness", "subject_id": str(setup.cohort)}, 422),
        ({"kind": "cohort", "subject_id": str(uuid.uuid4())}, 404),
        ({"kind": "individual", "subject_id": str(uuid.uuid4())}, 404),
        ({"kind": "weekly"}, 400),
    ]
    for body, status in cases:
        response = setup.client.post("/v1/reports", json=body, headers=setup.hr())
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
    missing = setup.client.get(f"/v1/reports/{uuid.uuid4()}", headers=setup.hr())
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)


def test_another_tenant_sees_nothing(
    setup: Setup, automatic: dict[str, Any], client: TestClient[Any], services: Services
) -> None:
    intruder = TenantUnderTest(client, services)
    url = f"/v1/reports/{automatic['report_id']}"
    for path in (url, f"{url}/pdf", f"/v1/members/{setup.engineer}/pdf-reports"):
        response = client.get(path, headers=intruder.headers())
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith(PROBLEM)
    for body in (
        {"kind": "individual", "subject_id": str(setup.engineer)},
        {"kind": "cohort", "subject_id": str(setup.cohort)},
    ):
        response = client.post("/v1/reports", json=body, headers=intruder.headers())
        assert response.status_code == 404, body


def test_the_page_count_agrees_with_pypdf() -> None:
    from training.reports.rendering import render_cohort, render_individual
    from training.reports.rendering.samples import cohort_report, individual_report

    for pdf in (render_individual(individual_report()), render_cohort(cohort_report())):
        assert page_count(pdf) == len(PdfReader(io.BytesIO(pdf)).pages)


def test_after_erasure_files_naming_the_member_are_gone_and_rendered_again_saying_erased(
    setup: Setup, services: Services
) -> None:
    from training.people.handlers.members import ErasePersonalData

    asked = setup.client.post(
        "/v1/reports",
        json={"kind": "individual", "subject_id": str(setup.other)},
        headers=setup.hr(),
    )
    assert asked.status_code == 202, asked.text
    before = rendered(setup, asked.json()["report_id"])
    pdf = setup.client.get(before["pdf_url"], headers=setup.hr())
    assert OTHER in text_of(pdf.content)
    cohort = {"kind": "cohort", "subject_id": str(setup.cohort)}
    asked = setup.client.post("/v1/reports", json=cohort, headers=setup.hr())
    roster_before = rendered(setup, asked.json()["report_id"])
    pdf = setup.client.get(roster_before["pdf_url"], headers=setup.hr())
    assert OTHER in text_of(pdf.content)

    erased = services.bus.execute(setup.context, ErasePersonalData(setup.other))
    assert erased.position is not None
    setup.position = erased.position
    # The person's own report is gone, file and all.
    gone = setup.client.get(before["pdf_url"], headers=setup.hr())
    assert gone.status_code == 404
    assert gone.headers["content-type"].startswith(PROBLEM)
    with psycopg.connect(services.database.admin_url) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM training.reports WHERE report_id = %s OR (report_id = %s "
            "AND pdf IS NOT NULL AND status <> 'rendered')",
            (before["report_id"], roster_before["report_id"]),
        ).fetchone()
    assert kept == (0,)
    # The cohort report lost the file printing their name and is rendered again without it.
    again = rendered(setup, roster_before["report_id"])
    assert again["checksum"] != roster_before["checksum"]
    pdf = setup.client.get(roster_before["pdf_url"], headers=setup.hr())
    assert pdf.status_code == 200
    assert OTHER not in text_of(pdf.content)
    assert "(erased)" in text_of(pdf.content)

    asked = setup.client.post(
        "/v1/reports",
        json={"kind": "individual", "subject_id": str(setup.other)},
        headers=setup.hr(),
    )
    after = rendered(setup, asked.json()["report_id"])
    pdf = setup.client.get(after["pdf_url"], headers=setup.hr())
    assert pdf.status_code == 200
    text = text_of(pdf.content)
    assert "(erased)" in text
    assert OTHER not in text


def test_an_automatic_report_whose_plan_was_replaced_before_rendering_is_superseded(
    setup: Setup, services: Services
) -> None:
    older, newer = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(services.database.admin_url) as conn:
        for report_id, version in ((older, 1), (newer, 2)):
            conn.execute(
                "INSERT INTO training.reports (report_id, tenant_id, kind, subject_id, "
                "for_plan_version, priority, requested_by, trigger) "
                "VALUES (%s, %s, 'individual', %s, %s, 1, 'system:planning', 'a re-plan')",
                (report_id, setup.tenant.tenant_id, setup.manager, version),
            )
    try:
        url = f"/v1/reports/{older}"
        status = wait_for(
            lambda: (
                (s := setup.client.get(url, headers=setup.hr()).json())["status"] == "superseded"
                and s
            )
        )
        assert status["detail"] == "the report of plan version 2 replaces it"
        gone = setup.client.get(f"{url}/pdf", headers=setup.hr())
        assert gone.status_code == 410
        assert gone.headers["content-type"].startswith(PROBLEM)
        assert f"/v1/members/{setup.manager}/pdf-reports" in gone.json()["detail"]
    finally:
        with psycopg.connect(services.database.admin_url) as conn:
            conn.execute("DELETE FROM training.reports WHERE report_id IN (%s, %s)", (older, newer))
