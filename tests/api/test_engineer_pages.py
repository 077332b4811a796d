"""The engineer's own pages through the real app: the skill profile (a chart and a table that
agree, as of a day), their cohorts and sessions with the session feedback form and the
calendar link, and their PDF reports with the download of their own only."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.pages import BROWSER, csrf_token, page_client, signed_in
from tests.api.test_cohorts import Hr
from tests.api.test_reviews_tracks import review_body
from tests.helpers import TenantUnderTest
from tests.waiting import wait_until
from training.bootstrap import Services

wait_for = partial(wait_until, timeout=120.0, poll=0.2)
HOSTILE = '<script>alert("x")</script>'
CHART_ROW = re.compile(
    r'<g class="skill" data-skill="([^"]+)" data-level="(\d)" data-low="(\d)" data-high="(\d)">'
)
TABLE_ROW = re.compile(
    r'<tr data-skill="([^"]+)" data-level="(\d)" data-low="(\d)" data-high="(\d)">'
)


@dataclass
class World:
    hr: Hr
    engineer: str
    other: str
    cohort: str
    waiting_cohort: str
    coming: str
    past: str

    @property
    def tenant(self) -> TenantUnderTest:
        return self.hr.tenant


@pytest.fixture(scope="module")
def browser(services: Services) -> Iterator[TestClient[Any]]:
    with page_client(services) as client:
        yield client


@pytest.fixture(scope="module")
def world(browser: TestClient[Any], services: Services) -> World:
    """An engineer with reviews of their skills, a finalised performance review (which plans
    a track and makes a report), a cohort they are in with a coming and a past session they
    attended, and a full cohort where they wait; and another engineer with their own report."""
    # The API calls go through the same app (a bearer token wins over a session cookie).
    hr = Hr(TenantUnderTest(browser, services))
    engineer, other, seated = hr.members("EP", "EO", "ES")
    for member_id in (engineer, other):
        drafted = hr.post("/v1/reviews", json=review_body(member_id, finalise=True))
        assert drafted.status_code == 201, drafted.text
    for skill, level in (("python", 5), ("sql", 2)):
        recorded = hr.post(
            f"/v1/members/{engineer}/evidence",
            json={"kind": "code_review", "skill": skill, "observed_level": level, "note": "ok"},
        )
        assert recorded.status_code == 201, recorded.text
    cohort = hr.cohort(name=f"{HOSTILE} Platform", timezone="Asia/Shanghai", capacity=2)
    assert hr.enrol(cohort, engineer).status_code == 200
    coming = hr.session(cohort, title=f"{HOSTILE} Kick-off", starts_at="2030-03-04T09:00:00+01:00")
    past = hr.session(cohort, title="Retrospective", starts_at="2026-01-05T09:00:00Z")
    attended = hr.call(
        "PUT",
        f"/v1/cohorts/{cohort}/sessions/{past}/attendance",
        json={
            "attendance": [
                {
                    "member_id": engineer,
                    "joined_at": "2026-01-05T09:00:00Z",
                    "left_at": "2026-01-05T10:00:00Z",
                }
            ]
        },
    )
    assert attended.status_code == 200, attended.text
    waiting_cohort = hr.cohort(name="Data cohort", capacity=1)
    assert hr.enrol(waiting_cohort, seated, engineer).status_code == 200
    # The views hold all of it before a page (which sends no position) reads them.
    mine = hr.client.get("/v1/me/sessions", headers=hr.as_member(engineer))
    assert mine.status_code == 200, mine.text
    return World(hr, engineer, other, cohort, waiting_cohort, coming, past)


def sign_in(browser: TestClient[Any], services: Services, world: World) -> None:
    signed_in(browser, services, world.tenant.tenant_id, world.engineer)


def reports_of(world: World, member_id: str) -> list[dict[str, Any]]:
    listed = world.hr.client.get(
        f"/v1/members/{member_id}/pdf-reports", headers=world.hr.as_member(member_id)
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


def session_row(world: World, session_id: str) -> dict[str, Any]:
    listed = world.hr.get(f"/v1/cohorts/{world.cohort}/sessions")
    assert listed.status_code == 200, listed.text
    found: dict[str, Any] = next(s for s in listed.json()["items"] if s["session_id"] == session_id)
    return found


# -- the skill profile -----------------------------------------------------------------------


def test_the_skill_profile_draws_the_levels_and_lists_the_same_in_a_table(
    browser: TestClient[Any], services: Services, world: World
) -> None:
    sign_in(browser, services, world)
    api = world.hr.client.get(
        f"/v1/members/{world.engineer}/skill-profile", headers=world.hr.as_member(world.engineer)
    )
    assert api.status_code == 200, api.text
    levels = {s["skill"]: s["level"] for s in api.json()["skills"]}
    assert set(levels) >= {"python", "sql"}

    page = browser.get("/profile/skills", headers=BROWSER)
    assert page.status_code == 200, page.text
    assert "<h1>My skill profile</h1>" in page.text
    assert '<svg class="profile-chart"' in page.text
    assert 'role="img"' in page.text
    chart = CHART_ROW.findall(page.text)
    table = TABLE_ROW.findall(page.text)
    assert chart
    assert chart == table
    shown = {skill: int(level) for skill, level, _, _ in chart}
    assert shown == levels
    for _, level, low, high in chart:
        assert int(low) <= int(level) <= int(high)
    # The chart is drawn by the page: no script, no inline style.
    assert "<script" not in page.text
    assert "style=" not in page.text
    assert 'href="/profile/skills" aria-current="page"' in page.text


def test_the_skill_profile_as_of_a_day_before_any_evidence_is_empty(
    browser: TestClient[Any], services: Services, world: World
) -> None:
    sign_in(browser, services, world)
    page = browser.get("/profile/skills", params={"as_of": "2001-01-01"}, headers=BROWSER)
    assert page.status_code == 200, page.text
    assert "No skill measured yet" in page.text
    assert 'value="2001-01-01"' in page.text
    assert not CHART_ROW.findall(page.text)
    # An empty field is today.
    today = browser.get("/profile/skills", params={"as_of": ""}, headers=BROWSER)
    assert today.status_code == 200
    assert CHART_ROW.findall(today.text)


@pytest.mark.parametrize("bad", ["2026-13-45", "yesterday", "20260105", "1999-12-31"])
def test_a_bad_as_of_is_a_bad_request_page(
    browser: TestClient[Any], services: Services, world: World, bad: str
) -> None:
    sign_in(browser, services, world)
    page = browser.get("/profile/skills", params={"as_of": bad}, headers=BROWSER)
    assert page.status_code == 400, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Check what you entered and try again." in page.text


# -- cohorts and sessions --------------------------------------------------------------------


def test_my_cohorts_show_the_seat_the_waitlist_and_the_sessions_in_the_cohorts_time_zone(
    browser: TestClient[Any], services: Services, world: World
) -> None:
    sign_in(browser, services, world)
    page = browser.get("/cohorts/mine", headers=BROWSER)
    assert page.status_code == 200, page.text
    text = page.text
    assert "Data cohort" in text
    assert "On the waitlist: you are number 1." in text
    assert "Enrolled" in text
    # 09:00 at +01:00 is 16:00 in Shanghai.
    assert "4:00:00\u202fPM" in text or "4:00:00 PM" in text
    assert "(Asia/Shanghai)" in text
    assert 'href="https://meet.example.com/kick-off"' in text
    # The past session attended has its rating form; the coming one has none.
    assert f'action="/cohorts/{world.cohort}/sessions/{world.past}/feedback"' in text
    assert f"/sessions/{world.coming}/feedback" not in text
    assert 'href="/cohorts/mine" aria-current="page"' in text


def test_what_hr_typed_in_a_cohort_comes_back_escaped(
    browser: TestClient[Any], services: Services, world: World
) -> None:
    sign_in(browser, services, world)
    page = browser.get("/cohorts/mine", headers=BROWSER)
    assert HOSTILE not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Platform" in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Kick-off" in page.text


def test_the_feedback_form_records_three_ratings_and_refuses_a_six(
    browser: TestClient[Any], services: Services, world: World
) -> None:
    sign_in(browser, services, world)
    url = f"/cohorts/{world.cohort}/sessions/{world.past}/feedback"
    token = csrf_token(browser, "/cohorts/mine")
    sent = browser.post(
        url,
        data={"content": "5", "delivery": "4", "interaction": "3", "_csrf_token": token},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"/cohorts/mine#session-{world.past}"

    def recorded() -> dict[str, Any] | None:
        row = session_row(world, world.past)
        return row if row["feedback_count"] == 1 else None

    assert wait_for(recorded)["content_satisfaction"] == 4.0

    def shown() -> str | None:
        page = browser.get("/cohorts/mine", headers=BROWSER).text
        return page if "Your rating: content 5, delivery 4, interaction 3." in page else None

    assert '<option value="5" selected>5</option>' in wait_for(shown)

    refused = browser.post(
        url,
        data={"content": "6", "delivery": "4", "interaction": "3", "_csrf_token": token},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("text/html")
    assert "a rating is 1 to 5" in refused.text
    unchanged = session_row(world, world.past)
    assert unchanged["feedback_count"] == 1
    assert unchanged["content_satisfaction"] == 4.0


def test_a_form_without_its_csrf_token_is_refused_and_records_nothing(
    browser: TestClient[Any], services: Services, world: World
) -> None:
    sign_in(browser, services, world)
    before = session_row(world, world.past)
    refused = browser.post(
        f"/cohorts/{world.cohort}/sessions/{world.past}/feedback",
        data={"content": "1", "delivery": "1", "interaction": "1"},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert "The form had expired" in refused.text
    assert session_row(world, world.past) == before
    no_link = browser.post("/cohorts/mine/calendar", headers=BROWSER, follow_redirects=False)
    assert no_link.status_code == 403
    assert "/calendar/" not in no_link.text


def test_the_calendar_link_is_issued_and_serves_my_sessions(
    browser: TestClient[Any], services: Services, world: World
) -> None:
    sign_in(browser, services, world)
    token = csrf_token(browser, "/cohorts/mine")
    issued = browser.post("/cohorts/mine/calendar", data={"_csrf_token": token}, headers=BROWSER)
    assert issued.status_code == 200, issued.text
    assert issued.headers["cache-control"] == "no-store"
    found = re.search(r'id="calendar-url"[^>]*value="([^"]+)"', issued.text)
    assert found, issued.text
    url = found.group(1)
    path = url.split("training.test", 1)[-1] if "training.test" in url else url
    feed = browser.get(path)
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    assert "Kick-off" in feed.text
    # A new link replaces it: the first stops working.
    again = browser.post("/cohorts/mine/calendar", data={"_csrf_token": token}, headers=BROWSER)
    assert again.status_code == 200
    assert browser.get(path).status_code == 404


# -- reports ---------------------------------------------------------------------------------


def test_my_reports_list_my_pdf_and_download_it(
    browser: TestClient[Any], services: Services, world: World
) -> None:
    def rendered() -> dict[str, Any] | None:
        done = [r for r in reports_of(world, world.engineer) if r["status"] == "rendered"]
        return done[0] if done else None

    report = wait_for(rendered)
    sign_in(browser, services, world)
    page = browser.get("/reports/mine", headers=BROWSER)
    assert page.status_code == 200, page.text
    link = f'href="/reports/{report["report_id"]}/pdf"'
    assert link in page.text
    assert "Ready" in page.text
    assert 'href="/reports/mine" aria-current="page"' in page.text

    pdf = browser.get(f"/reports/{report['report_id']}/pdf", headers=BROWSER)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert pdf.headers["etag"] == f'"{report["checksum"]}"'
    unchanged = browser.get(
        f"/reports/{report['report_id']}/pdf",
        headers={**BROWSER, "If-None-Match": pdf.headers["etag"]},
    )
    assert unchanged.status_code == 304


def test_another_persons_report_is_a_not_found_page(
    browser: TestClient[Any], services: Services, world: World
) -> None:
    theirs = wait_for(lambda: reports_of(world, world.other))
    sign_in(browser, services, world)
    for report_id in (theirs[0]["report_id"], str(uuid.uuid4())):
        page = browser.get(f"/reports/{report_id}/pdf", headers=BROWSER)
        assert page.status_code == 404, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "%PDF" not in page.text
    listed = browser.get("/reports/mine", headers=BROWSER)
    assert theirs[0]["report_id"] not in listed.text


def test_the_engineer_pages_need_a_session(browser: TestClient[Any]) -> None:
    browser.cookies.clear()
    for path in ("/profile/skills", "/cohorts/mine", "/reports/mine"):
        answer = browser.get(path, headers=BROWSER, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/sign-in?next=")
