"""Erasure erases: after it, the person's name and email are nowhere in the database or logs.

A unique name and a unique email go in through every path that accepts them (the people API
and its changes, SCIM create, replace and patch, a CSV import, sign-in with just-in-time
provisioning whose IdP subject is the email), and into free text about people (a review's
strengths and an amendment's reason, a deactivation reason, an engineer's note on skipping a
module, a cohort's cancellation reason, withdrawal reasons). Reports naming them are
rendered. Then each person is erased (SCIM DELETE for the SCIM user, the personal-data
endpoint for the others) and every column of every table of every schema is scanned, the
events decoded as the mapper stores them and the PDFs' text extracted, and so is everything
the service logged meanwhile.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql
from pypdf import PdfReader

from tests.api.test_sso import Tenant as SsoTenant
from tests.api.test_sso import development_idps, idp_b, sign_in  # noqa: F401 (fixtures)
from tests.conftest import TEST_ISSUER
from tests.helpers import bearer
from tests.waiting import wait_until
from training.bootstrap import Services
from training.infra.database import Database

SCIM_JSON = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


wait_for = partial(wait_until, timeout=120.0, poll=0.2)


@dataclass
class Person:
    """Names and emails one path stored (each unique to this run)."""

    path: str
    names: list[str]
    emails: list[str]
    member_id: str = ""

    @classmethod
    def of(cls, path: str, versions: int = 1) -> Person:
        tag = uuid.uuid4().hex[:8]
        names = [f"Zoë Quist{path.title()}{tag}{v}" for v in range(versions)]
        emails = [f"Zoe.Q.{path}.{tag}{v}@Example.test" for v in range(versions)]
        return cls(path, names, emails)

    @property
    def plain_names(self) -> list[str]:
        """The names without their first word: ASCII, so found in PDF text and escaped logs."""
        return [name.split(" ", 1)[1] for name in self.names]

    @property
    def needles(self) -> list[str]:
        return [*self.names, *self.plain_names, *self.emails, *(e.lower() for e in self.emails)]


@pytest.fixture
def quiet_test_tools() -> Iterator[None]:
    # The test's own HTTP client and the mock IdP log URLs with the subject in them; they
    # are not the service. The service's loggers stay as they are.
    loggers = [logging.getLogger(name) for name in ("httpx", "werkzeug")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


class Hr:
    def __init__(self, client: TestClient[Any], tenant: SsoTenant) -> None:
        self.client = client
        self.tenant = tenant
        self.position = 0

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**bearer(self.tenant.token), "Training-Position": str(self.position)}
        headers.update(kwargs.pop("headers", {}))
        response = self.client.request(method, url, headers=headers, **kwargs)
        if "training-position" in response.headers:
            self.position = max(self.position, int(response.headers["training-position"]))
        return response

    def ok(self, method: str, url: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, url, **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None


def scim(hr: Hr, method: str, path: str, body: dict[str, Any] | None, status: int) -> Any:
    url = f"/scim/v2/{hr.tenant.tenant_id}{path}"
    response = hr.call(method, url, json=body, headers={"Content-Type": SCIM_JSON})
    # A PATCH may answer the resource (200) or nothing (204).
    expected = (200, 204) if method == "PATCH" else (status,)
    assert response.status_code in expected, response.text
    return response.json() if response.content else None


def rendered(hr: Hr, report_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = hr.ok("GET", f"/v1/reports/{report_id}")
        assert body["status"] != "failed", body
        return body if body["status"] == "rendered" else None

    found: dict[str, Any] = wait_for(done)
    return found


def published_curriculum(hr: Hr) -> tuple[str, int]:
    curriculum = hr.ok("POST", "/v1/curricula", 201, json={"title": "Erasure course"})
    curriculum_id = curriculum["curriculum_id"]
    module = {"key": "m1", "title": "M1", "format": "lab", "duration_minutes": 30}
    hr.ok("POST", f"/v1/curricula/{curriculum_id}/modules", 201, json=module)
    published = hr.ok("POST", f"/v1/curricula/{curriculum_id}/publish", json={})
    return str(curriculum_id), int(published["version"])


def cohort_with(hr: Hr, curriculum: tuple[str, int], member_ids: list[str]) -> str:
    curriculum_id, version = curriculum
    cohort = hr.ok(
        "POST",
        "/v1/cohorts",
        201,
        json={
            "name": "Erasure cohort",
            "curriculum_id": curriculum_id,
            "curriculum_version": version,
            "starts_on": "2030-01-07",
            "ends_on": "2030-02-07",
            "timezone": "Europe/Paris",
            "capacity": 10,
        },
    )
    hr.ok("POST", f"/v1/cohorts/{cohort['cohort_id']}/enrolments", json={"member_ids": member_ids})
    return str(cohort["cohort_id"])


def test_erasure_leaves_no_name_or_email_anywhere(
    client: TestClient[Any],
    services: Services,
    database: Database,
    idp_b: str,  # noqa: F811 (the fixture imported above)
    capfd: pytest.CaptureFixture[str],
    quiet_test_tools: None,
) -> None:
    tenant = SsoTenant(client, services, "erase")
    tenant.configure(idp_b, jit=True)
    hr = Hr(client, tenant)
    api, scim_user, imported, signed_in, bystander = (
        Person.of("api", 2),
        Person.of("scim", 3),
        Person.of("import"),
        Person.of("sso"),
        Person.of("bystander"),
    )
    erased = (api, scim_user, imported, signed_in)

    # The people API: register, then change name and email.
    created = hr.ok(
        "POST",
        "/v1/members",
        201,
        json={
            "external_id": f"HR-{uuid.uuid4().hex[:6]}",
            "display_name": api.names[0],
            "email": api.emails[0],
            "roles": ["engineer"],
        },
    )
    api.member_id = created["member_id"]
    hr.ok(
        "PATCH",
        f"/v1/members/{api.member_id}",
        json={"display_name": api.names[1], "email": api.emails[1]},
    )

    # SCIM: create without externalId, replace, patch.
    user = scim(
        hr,
        "POST",
        "/Users",
        {
            "schemas": [USER],
            "userName": scim_user.emails[0],
            "displayName": scim_user.names[0],
            "active": True,
        },
        201,
    )
    scim_user.member_id = user["id"]
    scim(
        hr,
        "PUT",
        f"/Users/{user['id']}",
        {
            "schemas": [USER],
            "userName": scim_user.emails[1],
            "name": {"formatted": scim_user.names[1]},
            "active": True,
        },
        200,
    )
    scim(
        hr,
        "PATCH",
        f"/Users/{user['id']}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "path": "userName", "value": scim_user.emails[2]},
                {"op": "replace", "path": "displayName", "value": scim_user.names[2]},
            ],
        },
        200,
    )

    # A CSV import.
    csv = (
        "external_id,display_name,email,roles\n"
        f"IMP-{uuid.uuid4().hex[:6]},{imported.names[0]},{imported.emails[0]},engineer\n"
    )
    job = hr.ok(
        "POST", "/v1/member-imports", 202, content=csv, headers={"Content-Type": "text/csv"}
    )

    def finished() -> dict[str, Any] | None:
        state: dict[str, Any] = hr.ok("GET", job["status_url"])
        return state if state["status"] in ("completed", "failed") else None

    done = wait_for(finished)
    assert (done["status"], done["created"]) == ("completed", 1), done
    found = hr.ok("GET", "/v1/members", params={"q": imported.emails[0].lower()})
    [imported_record] = found["items"]
    imported.member_id = imported_record["member_id"]

    # Sign-in with just-in-time provisioning, the IdP's subject being the email.
    curriculum = published_curriculum(hr)
    subject = f"{signed_in.emails[0].split('@')[0]}@{tenant.domain}"
    signed_in.emails = [subject]
    claims = {"email": subject, "name": signed_in.names[0]}
    assert httpx.put(f"{idp_b}/users/{subject}", json=claims).status_code == 204
    session = sign_in(client, tenant.slug, subject)
    assert session.status_code == 200, session.text
    signed_in.member_id = session.json()["member_id"]
    # They skip a module of their track, saying why: the note names them and someone else.
    skipped = client.post(
        "/v1/me/track/progress",
        json={
            "curriculum_id": curriculum[0],
            "key": "m1",
            "state": "skipped",
            "reason": f"{signed_in.names[0]} did it with {api.names[1]} last year",
        },
    )
    assert skipped.status_code == 200, skipped.text
    # Their own calendar feed (a secret URL, answered without a token).
    calendar = client.post("/v1/me/calendar")
    assert calendar.status_code == 200, calendar.text
    feed = calendar.json()["url"].removeprefix(TEST_ISSUER)
    client.cookies.clear()
    assert client.get(feed).status_code == 200

    # Someone who stays, whose records mention the others.
    staying = hr.ok(
        "POST",
        "/v1/members",
        201,
        json={
            "external_id": f"STAY-{uuid.uuid4().hex[:6]}",
            "display_name": bystander.names[0],
            "email": bystander.emails[0],
            "roles": ["engineer"],
        },
    )["member_id"]
    leaving = hr.ok(
        "POST",
        "/v1/members",
        201,
        json={
            "external_id": f"LEAVE-{uuid.uuid4().hex[:6]}",
            "display_name": "Lee",
            "roles": ["engineer"],
        },
    )["member_id"]
    hr.ok(
        "POST",
        f"/v1/members/{leaving}/deactivate",
        json={"reason": f"moved to {signed_in.names[0]}'s team"},
    )

    # Reviews: of a person who is erased, and of the one who stays, naming the others.
    review_of = {"cycle": "2026-H2", "ratings": [], "overall_rating": 3, "finalise": True}
    erased_review = hr.ok(
        "POST",
        "/v1/reviews",
        201,
        json={
            **review_of,
            "member_id": api.member_id,
            "strengths": [f"{api.names[1]} ({api.emails[1]}) mentors everyone"],
        },
    )
    hr.ok(
        "POST",
        f"/v1/reviews/{erased_review['review_id']}/amendments",
        json={"ratings": [], "overall_rating": 4, "reason": f"asked by {api.names[1]}"},
    )
    kept_review = hr.ok(
        "POST",
        "/v1/reviews",
        201,
        json={
            **review_of,
            "member_id": staying,
            "strengths": [f"pairs well with {scim_user.names[2]}", "writes clear docs"],
        },
    )
    hr.ok(
        "POST",
        f"/v1/reviews/{kept_review['review_id']}/amendments",
        json={
            "ratings": [],
            "overall_rating": 4,
            "strengths": [f"pairs well with {scim_user.names[2]}", "writes clear docs"],
            "reason": f"{imported.emails[0]} asked for it",
        },
    )

    # Reports that print their names: an individual one and a cohort's roster.
    cohort_id = cohort_with(hr, curriculum, [api.member_id, scim_user.member_id, staying])
    individual = hr.ok(
        "POST", "/v1/reports", 202, json={"kind": "individual", "subject_id": api.member_id}
    )
    roster = hr.ok("POST", "/v1/reports", 202, json={"kind": "cohort", "subject_id": cohort_id})
    for report in (individual, roster):
        pdf = hr.call("GET", rendered(hr, report["report_id"])["pdf_url"])
        assert api.plain_names[1] in pdf_text(pdf.content)

    # Why people left cohorts: a withdrawal naming the person withdrawn, one naming someone
    # else, and a cancellation naming a third.
    enrolment = f"/v1/cohorts/{cohort_id}/enrolments"
    hr.ok("DELETE", f"{enrolment}/{api.member_id}", params={"reason": f"{api.emails[1]} quit"})
    hr.ok(
        "DELETE",
        f"{enrolment}/{staying}",
        params={"reason": f"swapped places with {scim_user.names[2]}"},
    )
    cancelled_cohort = cohort_with(hr, curriculum, [staying])
    hr.ok(
        "POST",
        f"/v1/cohorts/{cancelled_cohort}/cancel",
        json={"reason": f"{imported.names[0]} could not teach it"},
    )

    # What is held about a person beside the events is in their export.
    notes = hr.ok("GET", f"/v1/members/{signed_in.member_id}/export")["learning_notes"]
    assert [n["note"] for n in notes] == [
        f"{signed_in.names[0]} did it with {api.names[1]} last year"
    ]
    withdrawals = hr.ok("GET", f"/v1/members/{api.member_id}/export")["withdrawal_reasons"]
    assert [(w["cohort_id"], w["reason"]) for w in withdrawals] == [
        (cohort_id, f"{api.emails[1]} quit")
    ]

    # Everything went in: the scan finds each of them before the erasure.
    before = scan(database, services)
    for person in (*erased, bystander):
        assert any(n.lower() in before for n in person.needles), person.path

    # The erasures: SCIM DELETE for the SCIM user, the personal-data endpoint for the others.
    scim(hr, "DELETE", f"/Users/{scim_user.member_id}", None, 204)
    for person in (api, imported, signed_in):
        hr.ok("DELETE", f"/v1/members/{person.member_id}/personal-data")
    # The views catch up, and the cohort report is rendered again without the names.
    for person in erased:
        record = hr.ok("GET", f"/v1/members/{person.member_id}")
        assert record["erased"] is True
        assert record["display_name"] == "(erased)"
        assert "@" not in record["external_id"]
        assert record["email"] is None
    again = rendered(hr, roster["report_id"])
    text = pdf_text(hr.call("GET", again["pdf_url"]).content)
    assert "(erased)" in text
    assert bystander.plain_names[0] in text
    assert api.plain_names[1] not in text
    assert hr.call("GET", f"/v1/reports/{individual['report_id']}").status_code == 404

    # Their calendar feed stops answering.
    assert client.get(feed).status_code == 404

    # Search and SCIM no longer find them.
    for person in erased:
        for needle in person.needles:
            found = hr.ok("GET", "/v1/members", params={"q": needle[:100]})
            assert found["items"] == [], (person.path, needle)
        for email in person.emails:
            listed = hr.ok(
                "GET",
                f"/scim/v2/{tenant.tenant_id}/Users",
                params={"filter": f'userName eq "{email}"'},
            )
            assert listed["totalResults"] == 0
    # The review of the one who stays keeps its text, without the others' names.
    kept = hr.ok("GET", f"/v1/reviews/{kept_review['review_id']}")
    assert kept["strengths"] == ["pairs well with (erased)", "writes clear docs"]
    assert kept["amendment_reasons"] == ["(erased) asked for it"]
    gone = hr.ok("GET", f"/v1/reviews/{erased_review['review_id']}")
    assert (gone["strengths"], gone["amendment_reasons"]) == ([], [])
    # The cohorts' reasons: an erased person's own withdrawal reasons are gone (the SCIM
    # user's deactivation withdrew them too), the others' keep their text without the names.
    withdrawn = hr.ok("GET", enrolment, params={"status": "withdrawn"})["items"]
    reasons = {item["member_id"]: item["withdrawn_reason"] for item in withdrawn}
    assert reasons == {
        api.member_id: None,
        scim_user.member_id: None,
        staying: "swapped places with (erased)",
    }
    assert hr.ok("GET", f"/v1/cohorts/{cancelled_cohort}")["cancel_reason"] == (
        "(erased) could not teach it"
    )

    after = scan(database, services)
    logged = capfd.readouterr()
    for person in erased:
        for needle in person.needles:
            assert needle.lower() not in after, (person.path, needle, where(after, needle))
            assert needle not in logged.out, (person.path, needle)
            assert needle not in logged.err, (person.path, needle)
    # The one who stays is still there.
    assert bystander.names[0].lower() in after


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def scan(database: Database, services: Services) -> str:
    """Every value of every column of every table, as lower-case text: stored events decoded
    as the mapper stores them (decrypted and decompressed when it does), PDFs as their text,
    other bytes as UTF-8. One line per value, prefixed with where it was."""
    mapper = services.app.mapper
    lines: list[str] = []
    with psycopg.connect(database.admin_url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            cur = conn.execute(
                sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )
            columns = [c.name for c in cur.description or []]
            for row in cur:
                for column, value in zip(columns, row, strict=True):
                    text = readable(value, mapper, column)
                    if text:
                        lines.append(f"{schema}.{table}.{column}: {text}")
    return "\n".join(lines).lower()


def readable(value: Any, mapper: Any, column: str) -> str:
    if value is None:
        return ""
    if isinstance(value, memoryview | bytes):
        data = bytes(value)
        if data.startswith(b"%PDF"):
            return pdf_text(data)
        if column == "state":
            if mapper.cipher:
                data = mapper.cipher.decrypt(data)
            if mapper.compressor:
                data = mapper.compressor.decompress(data)
        return data.decode("utf-8", errors="replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def where(scanned: str, needle: str) -> list[str]:
    return [line[:200] for line in scanned.splitlines() if needle.lower() in line][:5]
