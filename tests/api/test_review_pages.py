"""The HR manager's review pages: drafting a review with ratings and a goal (a refused form
keeps what was entered), finalising it (the engineer's track is planned), amending it with a
reason, the list's filters and pages, an import with a bad row, and who may open them."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.pages import BROWSER, csrf_token, page_client, signed_in
from tests.api.test_reviews_tracks import ensure_catalogue, review_body, wait_for_track
from tests.helpers import TenantUnderTest, bearer, member_token
from training.bootstrap import Services

NEXT_PAGE = re.compile(r'<a href="([^"]+)" rel="next">Next page</a>')
REVIEW_LINK = re.compile(r'<a href="/reviews/([0-9a-f-]{36})">')
VERSION = re.compile(r'name="version" value="(\d+)"')


@pytest.fixture(scope="module")
def browser(services: Services) -> Iterator[TestClient[Any]]:
    with page_client(services) as client:
        yield client


@pytest.fixture
def hr(browser: TestClient[Any], services: Services) -> TenantUnderTest:
    """A new company with an HR manager signed in."""
    tenant = TenantUnderTest(browser, services)
    person = tenant.add(f"HR{uuid.uuid4().hex[:6]}", roles=["hr_manager"])
    assert person.status_code == 201, person.text
    signed_in(browser, services, tenant.tenant_id, person.json()["member_id"])
    return tenant


def added(tenant: TenantUnderTest, external_id: str, **fields: Any) -> str:
    response = tenant.add(external_id, **fields)
    assert response.status_code == 201, response.text
    return str(response.json()["member_id"])


def reviewed(tenant: TenantUnderTest, member_id: str, **overrides: Any) -> tuple[str, str]:
    """A review recorded through the API: its id and the position to read it at."""
    response = tenant.client.post(
        "/v1/reviews", json=review_body(member_id, **overrides), headers=tenant.headers()
    )
    assert response.status_code == 201, response.text
    return response.json()["review_id"], response.headers["Training-Position"]


def send(
    browser: TestClient[Any], path: str, form: dict[str, Any], *, form_page: str = "/reviews"
) -> Any:
    data = {**form, "_csrf_token": csrf_token(browser, form_page)}
    return browser.post(path, data=data, headers=BROWSER, follow_redirects=False)


def version_of(page: str) -> str:
    found = VERSION.search(page)
    assert found, page
    return found.group(1)


def draft_form(member_id: str, **fields: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "member_id": member_id,
        "cycle": "2026-H2",
        "rating_skill_0": "python",
        "rating_level_0": "2",
        "rating_skill_1": "kubernetes",
        "rating_level_1": "1",
        "overall_rating": "3",
        "strengths": "clear writing\nkind reviews",
        "goal_skill_0": "kubernetes",
        "goal_level_0": "3",
        "goal_due_0": "2027-06-30",
        "target_role_profile": "",
    }
    for row in range(2, 5):  # blank rows are ignored
        form |= {f"rating_skill_{row}": "", f"rating_level_{row}": ""}
    for row in range(1, 5):
        form |= {f"goal_skill_{row}": "", f"goal_level_{row}": "", f"goal_due_{row}": ""}
    return form | fields


def test_a_drafted_review_is_finalised_and_plans_the_track(
    browser: TestClient[Any], services: Services, hr: TenantUnderTest
) -> None:
    ensure_catalogue(services)
    engineer = added(hr, f"RE{uuid.uuid4().hex[:6]}", display_name="Eli Engineer")
    form = browser.get(f"/reviews/new?member_id={engineer}", headers=BROWSER)
    assert form.status_code == 200
    assert "Reviewing Eli Engineer" in form.text
    assert '<option value="python">' in form.text
    assert form.text.count('name="rating_skill_') == 5  # empty rows to fill

    created = send(browser, "/reviews", draft_form(engineer), form_page="/reviews/new")
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    assert re.fullmatch(r"/reviews/[0-9a-f-]{36}\?at=\d+", location)
    shown = browser.get(location, headers=BROWSER)
    assert shown.status_code == 200
    assert "<h1>Review of Eli Engineer, 2026-H2</h1>" in shown.text
    assert "<dd>Draft</dd>" in shown.text
    assert "<li>clear writing</li>" in shown.text
    assert "<tr><td>G1</td><td>kubernetes</td><td>3</td>" in shown.text
    assert "<tr><td>kubernetes</td><td>1</td></tr>" in shown.text
    review_path = location.split("?")[0]

    # The draft changes with the same command as PUT: the goal keeps its id.
    changed = send(
        browser,
        review_path,
        draft_form(engineer, overall_rating="4", goal_id_0="G1", version=version_of(shown.text)),
    )
    assert changed.status_code == 303, changed.text
    shown = browser.get(changed.headers["location"], headers=BROWSER)
    assert "<dt>Overall rating</dt><dd>4</dd>" in shown.text

    finalised = send(
        browser, f"{review_path}/finalise", {"version": version_of(shown.text)}, form_page="/"
    )
    assert finalised.status_code == 303, finalised.text
    shown = browser.get(finalised.headers["location"], headers=BROWSER)
    assert "<dd>Finalised</dd>" in shown.text
    assert f'action="{review_path}/amend"' in shown.text
    assert "Finalise the review" not in shown.text

    own = member_token(services, hr.tenant_id, uuid.UUID(engineer))
    track = wait_for_track(browser, "/v1/me/track", bearer(own))
    assert any("goal G1" in m["reason"] for m in track["modules"]), track


def test_a_refused_draft_keeps_the_values(browser: TestClient[Any], hr: TenantUnderTest) -> None:
    engineer = added(hr, f"RK{uuid.uuid4().hex[:6]}")
    # A rating without its level, a goal without its date: the form comes back.
    bad = draft_form(engineer, rating_level_1="", goal_due_0="", cycle="2026-H1")
    refused = send(browser, "/reviews", bad, form_page="/reviews/new")
    assert refused.status_code == 422
    assert "The review was not saved." in refused.text
    assert 'id="f-rating_1-error"' in refused.text
    assert "Choose a skill and a level from 1 to 7, or leave both empty." in refused.text
    assert 'id="f-goal_0-error"' in refused.text
    assert 'value="2026-H1"' in refused.text
    assert "clear writing\nkind reviews</textarea>" in refused.text
    assert '<option value="2" selected>' in refused.text

    # A skill the company does not have: refused by the review's rules, beside its row.
    unknown = draft_form(engineer, rating_skill_1="astrology")
    refused = send(browser, "/reviews", unknown, form_page="/reviews/new")
    assert refused.status_code == 422
    assert 'id="f-rating_1-error"' in refused.text
    assert "unknown skill" in refused.text
    assert '<option value="astrology" selected>' in refused.text

    nobody = send(browser, "/reviews", draft_form("not-an-id"), form_page="/reviews/new")
    assert nobody.status_code == 422
    assert 'id="f-member_id-error"' in nobody.text
    assert 'value="not-an-id"' in nobody.text


def test_amending_a_finalised_review_needs_a_reason(
    browser: TestClient[Any], hr: TenantUnderTest
) -> None:
    engineer = added(hr, f"RA{uuid.uuid4().hex[:6]}")
    review_id, at = reviewed(hr, engineer, finalise=True)
    page = browser.get(f"/reviews/{review_id}?at={at}", headers=BROWSER)
    assert page.status_code == 200
    version = version_of(page.text)
    form = draft_form(engineer, overall_rating="5", goal_id_0="G1", version=version)

    no_reason = send(browser, f"/reviews/{review_id}/amend", form | {"reason": "  "})
    assert no_reason.status_code == 422
    assert "Say why the finalised review changes" in no_reason.text
    assert 'id="f-reason-error"' in no_reason.text
    assert '<option value="5" selected>' in no_reason.text

    amended = send(browser, f"/reviews/{review_id}/amend", form | {"reason": "calibration meeting"})
    assert amended.status_code == 303, amended.text
    shown = browser.get(amended.headers["location"], headers=BROWSER)
    assert "<dt>Amendments</dt><dd>1</dd>" in shown.text
    assert "<li>calibration meeting</li>" in shown.text
    assert "<dt>Overall rating</dt><dd>5</dd>" in shown.text

    # An amendment that changes nothing is refused, with the form kept.
    same = form | {"version": version_of(shown.text), "reason": "no change"}
    unchanged = send(browser, f"/reviews/{review_id}/amend", same)
    assert unchanged.status_code == 409
    assert "the amendment changes nothing" in unchanged.text
    assert 'value="no change"' in unchanged.text

    # A form shown before that amendment is refused, not applied over it.
    stale = send(browser, f"/reviews/{review_id}/amend", form | {"reason": "again"})
    assert stale.status_code == 412


def test_the_list_filters_and_pages(browser: TestClient[Any], hr: TenantUnderTest) -> None:
    ana = added(hr, f"LA{uuid.uuid4().hex[:6]}", display_name="Ana List")
    ben = added(hr, f"LB{uuid.uuid4().hex[:6]}", display_name="Ben List")
    ids = {}
    ids["ana-h1"], _ = reviewed(hr, ana, cycle="2026-H1")
    ids["ana-h2"], _ = reviewed(hr, ana, cycle="2026-H2", finalise=True)
    ids["ben-h2"], at = reviewed(hr, ben, cycle="2026-H2")

    everything = browser.get(f"/reviews?at={at}", headers=BROWSER)
    assert everything.status_code == 200
    assert 'aria-current="page">Reviews</a>' in everything.text  # the HR manager's nav
    assert set(REVIEW_LINK.findall(everything.text)) == set(ids.values())
    # The latest cycle first.
    assert REVIEW_LINK.findall(everything.text)[-1] == ids["ana-h1"]

    h2 = browser.get("/reviews", params={"cycle": "2026-H2"}, headers=BROWSER)
    assert set(REVIEW_LINK.findall(h2.text)) == {ids["ana-h2"], ids["ben-h2"]}
    anas = browser.get("/reviews", params={"person": ana}, headers=BROWSER)
    assert set(REVIEW_LINK.findall(anas.text)) == {ids["ana-h1"], ids["ana-h2"]}
    assert "Ana List" in anas.text
    by_name = browser.get("/reviews", params={"person": "ana li"}, headers=BROWSER)
    assert set(REVIEW_LINK.findall(by_name.text)) == {ids["ana-h1"], ids["ana-h2"]}
    several = browser.get("/reviews", params={"person": "L"}, headers=BROWSER)
    assert REVIEW_LINK.findall(several.text) == []
    assert "Several people match" in several.text
    # A person's page under People leads to their reviews and to drafting one.
    person_page = browser.get(f"/people/{ana}", headers=BROWSER)
    assert f'href="/reviews?person={ana}"' in person_page.text
    assert f'href="/reviews/new?member_id={ana}"' in person_page.text
    drafts = browser.get("/reviews", params={"status": "draft", "cycle": ""}, headers=BROWSER)
    assert set(REVIEW_LINK.findall(drafts.text)) == {ids["ana-h1"], ids["ben-h2"]}
    finalised = browser.get(
        "/reviews", params={"status": "finalised", "person": ben}, headers=BROWSER
    )
    assert REVIEW_LINK.findall(finalised.text) == []
    assert "No review matches these filters." in finalised.text

    # Two pages of drafts: the next page keeps the filter.
    first = browser.get("/reviews", params={"status": "draft", "limit": 1}, headers=BROWSER)
    assert len(REVIEW_LINK.findall(first.text)) == 1
    link = NEXT_PAGE.search(first.text)
    assert link, first.text
    target = link.group(1).replace("&amp;", "&")
    assert "status=draft" in target
    second = browser.get(target, headers=BROWSER)
    assert second.status_code == 200
    seen = REVIEW_LINK.findall(first.text) + REVIEW_LINK.findall(second.text)
    assert set(seen) == {ids["ana-h1"], ids["ben-h2"]}
    assert not NEXT_PAGE.search(second.text)


def test_an_import_reports_its_bad_rows(browser: TestClient[Any], hr: TenantUnderTest) -> None:
    engineer = added(hr, f"RI{uuid.uuid4().hex[:6]}")
    form = browser.get("/reviews/import", headers=BROWSER)
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text
    batch = {
        "reviews": [
            {**review_body(engineer), "external_id": "hris-1", "finalised": True},
            {**review_body(str(uuid.uuid4())), "external_id": "hris-ghost"},
            {**review_body(engineer, overall_rating=9), "external_id": "hris-bad"},
        ]
    }
    sent = browser.post(
        "/reviews/import",
        data={"_csrf_token": csrf_token(browser, "/reviews/import")},
        files={"file": ("reviews.json", json.dumps(batch).encode(), "application/json")},
        headers=BROWSER,
    )
    assert sent.status_code == 200, sent.text
    assert "<dt>Added</dt><dd>1</dd>" in sent.text
    assert "<dt>Refused</dt><dd>2</dd>" in sent.text
    assert re.search(r'<a href="/reviews/[0-9a-f-]{36}">hris-1</a>', sent.text)
    assert "<td>hris-ghost</td>" in sent.text
    assert "<td>member_id</td>" in sent.text
    assert "<td>hris-bad</td>" in sent.text
    assert "overall_rating" in sent.text

    # The same batch pasted: idempotent by the HR system's id.
    again = send(browser, "/reviews/import", {"reviews": json.dumps(batch)})
    assert again.status_code == 200
    assert "<dt>Unchanged</dt><dd>1</dd>" in again.text

    unreadable = send(browser, "/reviews/import", {"reviews": "{not json"})
    assert unreadable.status_code == 422
    assert "The reviews could not be read" in unreadable.text
    assert "{not json</textarea>" in unreadable.text
    empty = send(browser, "/reviews/import", {"reviews": ""})
    assert empty.status_code == 422


def test_a_form_without_its_csrf_token_is_refused(
    browser: TestClient[Any], hr: TenantUnderTest
) -> None:
    engineer = added(hr, f"RC{uuid.uuid4().hex[:6]}")
    browser.get("/reviews", headers=BROWSER)  # the CSRF cookie is set
    refused = browser.post(
        "/reviews", data=draft_form(engineer), headers=BROWSER, follow_redirects=False
    )
    assert refused.status_code == 403
    assert "The form had expired" in refused.text


def test_an_engineer_gets_the_403_page_on_every_review_page(
    browser: TestClient[Any], services: Services
) -> None:
    tenant = TenantUnderTest(browser, services)
    engineer = added(tenant, f"EN{uuid.uuid4().hex[:6]}")
    review_id, _ = reviewed(tenant, engineer)
    signed_in(browser, services, tenant.tenant_id, engineer)
    home = browser.get("/", headers=BROWSER)
    assert 'href="/reviews"' not in home.text
    for path in ("/reviews", "/reviews/new", f"/reviews/{review_id}", "/reviews/import"):
        refused = browser.get(path, headers=BROWSER)
        assert refused.status_code == 403, path
        assert "Your role does not allow this." in refused.text
    for path in (
        "/reviews",
        f"/reviews/{review_id}",
        f"/reviews/{review_id}/finalise",
        f"/reviews/{review_id}/amend",
        "/reviews/import",
    ):
        refused = send(browser, path, draft_form(engineer, reason="x"), form_page="/")
        assert refused.status_code == 403, path


def test_another_companys_review_is_not_found(
    browser: TestClient[Any], services: Services, hr: TenantUnderTest
) -> None:
    elsewhere = TenantUnderTest(browser, services)
    theirs, _ = reviewed(elsewhere, added(elsewhere, "T1"))
    assert browser.get(f"/reviews/{theirs}", headers=BROWSER).status_code == 404
    finalised = send(browser, f"/reviews/{theirs}/finalise", {})
    assert finalised.status_code == 404
    changed = send(browser, f"/reviews/{theirs}", draft_form(str(uuid.uuid4())))
    assert changed.status_code == 404


def test_a_script_in_strengths_shows_escaped(browser: TestClient[Any], hr: TenantUnderTest) -> None:
    script = '<script>alert("x")</script>'
    engineer = added(hr, f"RS{uuid.uuid4().hex[:6]}")
    review_id, at = reviewed(hr, engineer, strengths=[script])
    page = browser.get(f"/reviews/{review_id}?at={at}", headers=BROWSER)
    assert page.status_code == 200
    assert script not in page.text
    assert "<li>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</li>" in page.text
