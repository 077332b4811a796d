"""The HR manager's cohort and report pages: scheduling a cohort (a refused form keeps what
was entered), enrolling into a full cohort with the waitlist's places, withdrawing (the first
person waiting takes the seat), transferring, scheduling a session and recording its
attendance, progress, asking for reports, and who may open the pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.pages import BROWSER, csrf_token, page_client, signed_in
from tests.api.test_cohorts import Hr
from tests.helpers import TenantUnderTest
from training.bootstrap import Services

COHORT_PATH = re.compile(r"^/cohorts/([0-9a-f-]{36})")
AT = re.compile(r"[?&]at=([0-9]+)")
REPORT_ROW = re.compile(r'<tr id="report-([0-9a-f-]{36})">')


@pytest.fixture(scope="module")
def browser(services: Services) -> Iterator[TestClient[Any]]:
    with page_client(services) as client:
        yield client


@pytest.fixture
def hr(browser: TestClient[Any], services: Services) -> Hr:
    """A new company with an HR manager signed in, and its HR integration for the set-up."""
    tenant = TenantUnderTest(browser, services)
    person = tenant.add(f"HR{uuid.uuid4().hex[:6]}", roles=["hr_manager"])
    assert person.status_code == 201, person.text
    signed_in(browser, services, tenant.tenant_id, person.json()["member_id"])
    return Hr(tenant)


def send(browser: TestClient[Any], path: str, form: dict[str, Any], **kw: Any) -> Any:
    data = {**form, "_csrf_token": csrf_token(browser, "/cohorts")}
    return browser.post(path, data=data, headers=BROWSER, follow_redirects=False, **kw)


def seen_by(hr: Hr, answer: Any) -> None:
    """The API reads at the position a form's redirect carries (what the form wrote)."""
    found = AT.search(answer.headers["location"])
    assert found, answer.headers["location"]
    hr.position = max(hr.position, int(found.group(1)))


def shown(browser: TestClient[Any], answer: Any) -> str:
    """The page a form's redirect lands on."""
    assert answer.status_code == 303, answer.text[:2000]
    landed = browser.get(answer.headers["location"], headers=BROWSER)
    assert landed.status_code == 200, landed.text[:2000]
    return str(landed.text)


def people(hr: Hr, count: int) -> list[tuple[str, str]]:
    """People registered through the API: their ids and external ids."""
    found = []
    for n in range(count):
        external_id = f"P{n}-{uuid.uuid4().hex[:6]}"
        found.append((hr.member(external_id), external_id))
    return found


def section(page: str, start: str, end: str) -> str:
    return page.split(start, 1)[1].split(end, 1)[0]


def test_an_hr_manager_schedules_a_cohort_and_a_refused_form_keeps_the_values(
    browser: TestClient[Any], hr: Hr
) -> None:
    curriculum_id, version = hr.curriculum()
    form = browser.get(f"/cohorts/new?at={hr.position}", headers=BROWSER)
    assert form.status_code == 200
    assert f'<option value="{curriculum_id}"' in form.text  # the curricula to choose from
    assert 'aria-current="page">Cohorts</a>' in form.text

    fields = {
        "name": "Autumn <script>alert(1)</script>",
        "curriculum_id": curriculum_id,
        "curriculum_version": str(version),
        "starts_on": "2030-09-01",
        "ends_on": "2030-11-30",
        "timezone": "Asia/Shanghai",
        "capacity": "0",
    }
    refused = send(browser, "/cohorts", fields)
    assert refused.status_code == 422
    assert "Enter a number of seats from 1 to 10,000." in refused.text
    assert 'value="Asia/Shanghai"' in refused.text
    assert 'value="Autumn &lt;script&gt;alert(1)&lt;/script&gt;"' in refused.text

    bad_zone = send(browser, "/cohorts", {**fields, "capacity": "12", "timezone": "Mars/Base"})
    assert bad_zone.status_code == 422
    assert "is not an IANA time zone" in bad_zone.text

    # Without a version, the latest published one.
    latest = {**fields, "capacity": "12", "curriculum_version": ""}
    page = shown(browser, send(browser, "/cohorts", latest))
    assert f"version {version}" in page
    assert "Autumn &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert "Asia/Shanghai" in page

    listed = browser.get("/cohorts", params={"status": "planned"}, headers=BROWSER)
    assert "Autumn &lt;script&gt;" in listed.text
    none_running = browser.get("/cohorts", params={"status": "running"}, headers=BROWSER)
    assert "Autumn" not in none_running.text


def test_enrol_into_a_full_cohort_withdraw_and_transfer(browser: TestClient[Any], hr: Hr) -> None:
    cohort_id = hr.cohort(capacity=2)
    other_id = hr.cohort(name="Other cohort", capacity=5)
    (a, a_ext), (b, b_ext), (c, c_ext) = people(hr, 3)

    # The people to pick are listed, found by their id.
    picker = browser.get(
        f"/cohorts/{cohort_id}", params={"q": c_ext, "at": hr.position}, headers=BROWSER
    )
    assert picker.status_code == 200
    assert f'value="{c}"' in picker.text
    assert f'value="{a}"' not in picker.text

    nobody = send(browser, f"/cohorts/{cohort_id}/enrolments", {})
    assert nobody.status_code == 422
    assert "Choose at least one person" in nobody.text

    page = shown(
        browser, send(browser, f"/cohorts/{cohort_id}/enrolments", {"member_ids": [a, b, c]})
    )
    waitlist = section(page, 'id="waitlist"', "</table>")
    assert '<td class="place">1</td>' in waitlist
    assert c_ext in waitlist
    assert a_ext not in waitlist

    # A withdrawal needs its reason; then the first person waiting takes the seat.
    refused = send(browser, f"/cohorts/{cohort_id}/withdrawals", {"member_id": a, "reason": ""})
    assert refused.status_code == 422
    assert "Give a reason" in refused.text
    page = shown(
        browser,
        send(browser, f"/cohorts/{cohort_id}/withdrawals", {"member_id": a, "reason": "Left"}),
    )
    assert "Nobody is waiting." in page
    enrolled = section(page, 'id="roster-title"', "</table>")
    assert c_ext in enrolled
    assert a_ext not in enrolled
    assert f"{a_ext}</span>: Left" in page  # among the withdrawn, with the reason

    moved = send(
        browser,
        f"/cohorts/{cohort_id}/transfers",
        {"member_id": b, "to_cohort_id": other_id, "reason": "Better dates"},
    )
    assert COHORT_PATH.match(moved.headers["location"]).group(1) == other_id  # type: ignore[union-attr]
    seen_by(hr, moved)
    target = shown(browser, moved)
    assert b_ext in section(target, 'id="roster-title"', "</table>")
    assert hr.placed(cohort_id, "enrolled") == [c]

    # More seats, then the cohort starts and is cancelled with its reason.
    capacity = send(browser, f"/cohorts/{cohort_id}/capacity", {"capacity": "0"})
    assert capacity.status_code == 422
    page = shown(browser, send(browser, f"/cohorts/{cohort_id}/capacity", {"capacity": "3"}))
    assert "1 / 3" in page
    page = shown(browser, send(browser, f"/cohorts/{cohort_id}/start", {}))
    assert "Running" in page
    page = shown(browser, send(browser, f"/cohorts/{cohort_id}/cancel", {"reason": "Budget"}))
    assert "Cancelled (Budget)" in page


def test_enrol_by_team(browser: TestClient[Any], hr: Hr) -> None:
    cohort_id = hr.cohort(capacity=5)
    team = f"Team{uuid.uuid4().hex[:6]}"
    in_team = [hr.member(f"T{n}-{uuid.uuid4().hex[:6]}", team=team) for n in range(2)]
    hr.member(f"X-{uuid.uuid4().hex[:6]}", team="Elsewhere")
    # The members' view holds them before the form is sent.
    assert browser.get(f"/cohorts/{cohort_id}?at={hr.position}", headers=BROWSER).status_code == 200
    answer = send(browser, f"/cohorts/{cohort_id}/enrolments", {"team": team, "role": ""})
    assert answer.status_code == 303, answer.text[:2000]
    seen_by(hr, answer)
    assert sorted(hr.placed(cohort_id, "enrolled")) == sorted(in_team)


def test_a_session_is_scheduled_and_its_attendance_recorded(
    browser: TestClient[Any], hr: Hr
) -> None:
    cohort_id = hr.cohort(capacity=5)
    (a, a_ext), (b, _) = people(hr, 2)
    assert hr.enrol(cohort_id, a, b).status_code == 200

    refused = send(
        browser,
        f"/cohorts/{cohort_id}/sessions",
        {"title": "Kick-off", "day": "someday", "time": "09:00", "duration_minutes": "60"},
    )
    assert refused.status_code == 422
    assert "Enter a date such as 2030-03-04." in refused.text
    assert 'value="Kick-off"' in refused.text

    session = {
        "title": "Kick-off",
        "day": "2030-03-04",
        "time": "09:00",
        "duration_minutes": "60",
        "join_url": "https://meet.example.com/kick-off",
    }
    scheduled = send(browser, f"/cohorts/{cohort_id}/sessions", session)
    seen_by(hr, scheduled)
    page = shown(browser, scheduled)
    assert "Kick-off" in page
    listed = hr.get(f"/v1/cohorts/{cohort_id}/sessions").json()["items"]
    assert listed[0]["starts_at"].startswith("2030-03-04T08:00:00")  # 09:00 in Berlin
    session_id = listed[0]["session_id"]

    attendance = f"/cohorts/{cohort_id}/sessions/{session_id}/attendance"
    form = browser.get(attendance, headers=BROWSER)
    assert form.status_code == 200
    assert a_ext in form.text
    empty = send(browser, attendance, {})
    assert empty.status_code == 422
    page = shown(
        browser,
        send(browser, attendance, {"attended": [a], "comments": "6", "questions": "3"}),
    )
    rate = section(page, 'class="rate">', "</td>")
    assert "50%" in rate
    assert "(1/2)" in rate
    assert "0.15" in page  # interactions per minute: 9 over 60 minutes

    # The conferencing tool's export replaces the import: one person by id, one by theirs.
    bad = send(
        browser, attendance, {}, files={"file": ("export.csv", b"member_id\nnope\n", "text/csv")}
    )
    assert bad.status_code == 422
    assert "Row 2" in bad.text
    export = (
        "member_id,external_id,joined_at,left_at\n"
        f",{a_ext},2030-03-04T09:00:00+01:00,2030-03-04T09:30:00+01:00\n"
        f",{a_ext},2030-03-04T09:40:00+01:00,2030-03-04T10:00:00+01:00\n"
        f"{b},,2030-03-04T09:00:00+01:00,2030-03-04T10:00:00+01:00\n"
    )
    files = {"file": ("export.csv", export.encode(), "text/csv")}
    page = shown(browser, send(browser, attendance, {}, files=files))
    assert "100%" in section(page, 'class="rate">', "</td>")

    progress = browser.get(f"/cohorts/{cohort_id}/progress", headers=BROWSER)
    assert progress.status_code == 200
    assert a_ext in progress.text
    assert "People at risk: 0" in progress.text  # the window has not begun


def test_reports_are_requested_and_their_status_shown(
    browser: TestClient[Any], services: Services, hr: Hr
) -> None:
    cohort_id = hr.cohort(name="Reported cohort")
    page = browser.get(f"/reports?at={hr.position}", headers=BROWSER)
    assert page.status_code == 200
    assert 'aria-current="page">Company reports</a>' in page.text
    assert "No cohort or effectiveness report yet." in page.text

    refused = send(browser, "/reports", {"kind": "cohort", "subject_id": "nope"})
    assert refused.status_code == 422
    page_text = shown(
        browser, send(browser, "/reports", {"kind": "cohort", "subject_id": cohort_id})
    )
    assert "Cohort report: Reported cohort" in page_text
    assert re.search(r'class="status">(Being made|Ready|Failed)', page_text)
    page_text = shown(browser, send(browser, "/reports", {"kind": "effectiveness"}))
    assert "Effectiveness report" in page_text
    # Another company's cohort reads as missing.
    assert (
        send(browser, "/reports", {"kind": "cohort", "subject_id": str(uuid.uuid4())}).status_code
        == 404
    )
    # The engineer's own reports still answer.
    assert browser.get("/reports/mine", headers=BROWSER).status_code == 200

    # HR downloads the PDF once it is made (a page saying so before); an engineer may not.
    report_id = REPORT_ROW.findall(page_text)[-1]
    pdf = browser.get(f"/reports/{report_id}/pdf", headers=BROWSER)
    assert pdf.status_code in (200, 409), pdf.text[:500]
    if pdf.status_code == 200:
        assert pdf.headers["content-type"] == "application/pdf"
    engineer = hr.member(f"E{uuid.uuid4().hex[:6]}")
    signed_in(browser, services, hr.tenant.tenant_id, engineer)
    assert browser.get(f"/reports/{report_id}/pdf", headers=BROWSER).status_code == 403


def test_who_may_open_the_pages(browser: TestClient[Any], services: Services, hr: Hr) -> None:
    cohort_id = hr.cohort()
    without_token = browser.post(
        "/cohorts", data={"name": "x"}, headers=BROWSER, follow_redirects=False
    )
    assert without_token.status_code == 403
    assert "The form had expired" in without_token.text

    other = Hr(TenantUnderTest(browser, services))
    theirs = other.cohort()
    for path in (
        f"/cohorts/{theirs}",
        f"/cohorts/{theirs}/sessions",
        f"/cohorts/{theirs}/progress",
    ):
        answer = browser.get(path, headers=BROWSER)
        assert answer.status_code == 404, path
        assert "not in your company" in answer.text
    assert send(browser, f"/cohorts/{theirs}/start", {}).status_code == 404

    engineer = hr.member(f"E{uuid.uuid4().hex[:6]}")
    signed_in(browser, services, hr.tenant.tenant_id, engineer)
    for path in (
        "/cohorts",
        "/cohorts/new",
        f"/cohorts/{cohort_id}",
        "/reports",
        f"/cohorts/{cohort_id}/sessions",
        f"/cohorts/{cohort_id}/progress",
    ):
        answer = browser.get(path, headers=BROWSER)
        assert answer.status_code == 403, path
        assert "Your role does not allow this." in answer.text
    home = browser.get("/cohorts/mine", headers=BROWSER)
    assert home.status_code == 200
    assert 'href="/cohorts"' not in home.text
