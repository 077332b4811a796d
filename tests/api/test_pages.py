"""The web app's pages through the real app: sign-in and its redirects, the engineer's home
page, CSRF, security headers, languages, escaping, and the demo's sign-in that exists only in
development on loopback. (The journeys in a real browser are in ``tests/browser``.)"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.pages import BROWSER, browser_for, csrf_token, page_client, signed_in
from tests.api.test_reviews_tracks import ensure_catalogue, review_body, wait_for_track
from tests.helpers import TenantUnderTest, bearer, member_token
from training.bootstrap import Services
from training.identity.handlers.sso import SESSION_COOKIE


@pytest.fixture(scope="module")
def browser(services: Services) -> Iterator[TestClient[Any]]:
    with page_client(services) as client:
        yield client


@pytest.fixture(scope="module")
def engineer(tenant_module: TenantUnderTest, services: Services) -> dict[str, Any]:
    """An engineer whose finalised review planned a track."""
    ensure_catalogue(services)
    person = tenant_module.add(f"PE{uuid.uuid4().hex[:6]}").json()
    drafted = tenant_module.client.post(
        "/v1/reviews",
        json=review_body(person["member_id"], finalise=True),
        headers=tenant_module.headers(),
    )
    assert drafted.status_code == 201, drafted.text
    own = member_token(services, tenant_module.tenant_id, uuid.UUID(person["member_id"]))
    track = wait_for_track(tenant_module.client, "/v1/me/track", bearer(own))
    return {"member_id": person["member_id"], "track": track, "token": own}


@pytest.fixture(scope="module")
def tenant_module(browser: TestClient[Any], services: Services) -> TenantUnderTest:
    # The API calls go through the same app (a bearer token wins over a session cookie).
    return TenantUnderTest(browser, services)


def test_a_page_without_a_session_sends_to_sign_in_and_back(browser: TestClient[Any]) -> None:
    browser.cookies.clear()
    answer = browser.get("/?tab=next", headers=BROWSER, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/%3Ftab%3Dnext"
    sign_in = browser.get("/sign-in", params={"next": "/?tab=next"}, headers=BROWSER)
    assert 'name="next" value="/?tab=next"' in sign_in.text
    # A forged session is no session.
    browser.cookies.set(SESSION_COOKIE, "forged", domain="training.test", path="/")
    assert browser.get("/", headers=BROWSER, follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "unsafe",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"],
)
def test_sign_in_never_sends_a_person_to_another_site(
    browser: TestClient[Any], unsafe: str
) -> None:
    page = browser.get("/sign-in", params={"next": unsafe}, headers=BROWSER)
    assert 'name="next" value="/"' in page.text


def test_pages_carry_the_security_headers(browser: TestClient[Any]) -> None:
    browser.cookies.clear()
    page = browser.get("/sign-in", headers=BROWSER)
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["content-type"].startswith("text/html")
    # The CSRF cookie is not readable by scripts and goes back to this site only.
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_what_a_person_types_comes_back_escaped(browser: TestClient[Any]) -> None:
    hostile = '<script>alert("x")</script>'
    page = browser.get("/sign-in/sso", params={"company": hostile}, headers=BROWSER)
    assert page.status_code == 422
    assert hostile not in page.text
    assert "&lt;script&gt;" in page.text


def test_the_engineer_sees_their_track_with_the_reasons_and_why_it_changed(
    browser: TestClient[Any],
    services: Services,
    tenant_module: TenantUnderTest,
    engineer: dict[str, Any],
) -> None:
    signed_in(browser, services, tenant_module.tenant_id, engineer["member_id"])
    page = browser.get("/", headers=BROWSER)
    assert page.status_code == 200, page.text
    assert "<h1>My training track</h1>" in page.text
    for module in engineer["track"]["modules"]:
        assert module["title"] in page.text
    assert "Why your plan changed" in page.text
    assert "A performance review was finalised." in page.text
    assert "Sign out" in page.text


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    browser: TestClient[Any],
    services: Services,
    tenant_module: TenantUnderTest,
    engineer: dict[str, Any],
) -> None:
    signed_in(browser, services, tenant_module.tenant_id, engineer["member_id"])
    module = engineer["track"]["modules"][0]
    form = {"curriculum_id": module["curriculum_id"], "key": module["key"], "state": "started"}
    refused = browser.post("/track/progress", data=form, headers=BROWSER, follow_redirects=False)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "The form had expired" in refused.text
    forged = browser.post(
        "/track/progress",
        data={**form, "_csrf_token": "0" * 128},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert forged.status_code == 403
    track = tenant_module.client.get("/v1/me/track", headers=bearer(engineer["token"])).json()
    assert track["modules"][0]["state"] == module["state"]


def test_starting_a_module_from_the_home_page(
    browser: TestClient[Any],
    services: Services,
    tenant_module: TenantUnderTest,
    engineer: dict[str, Any],
) -> None:
    signed_in(browser, services, tenant_module.tenant_id, engineer["member_id"])
    module = engineer["track"]["modules"][-1]
    token = csrf_token(browser, "/")
    form = {
        "curriculum_id": module["curriculum_id"],
        "key": module["key"],
        "state": "started",
        "_csrf_token": token,
    }
    answer = browser.post("/track/progress", data=form, headers=BROWSER, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/"
    deadline = time.monotonic() + 30
    while "In progress" not in browser.get("/", headers=BROWSER).text:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # A value the command refuses is a page saying so, not a stack trace.
    bad = {**form, "state": "finished"}
    refused = browser.post("/track/progress", data=bad, headers=BROWSER, follow_redirects=False)
    assert refused.status_code == 400
    assert "Check what you entered" in refused.text


def test_the_home_page_in_simplified_chinese(
    browser: TestClient[Any],
    services: Services,
    tenant_module: TenantUnderTest,
    engineer: dict[str, Any],
) -> None:
    signed_in(browser, services, tenant_module.tenant_id, engineer["member_id"])
    chinese = {**BROWSER, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    page = browser.get("/", headers=chinese)
    assert '<html lang="zh-Hans">' in page.text
    assert "<h1>我的培训路线</h1>" in page.text
    assert "退出登录" in page.text
    # Traditional script is not given Simplified characters.
    assert (
        "<h1>My training track</h1>"
        in browser.get("/", headers={**BROWSER, "Accept-Language": "zh-TW"}).text
    )
    # The visitor's own choice wins over the browser's.
    token = csrf_token(browser, "/")
    chosen = browser.post(
        "/language",
        data={"language": "en", "next": "/", "_csrf_token": token},
        headers=chinese,
        follow_redirects=False,
    )
    assert chosen.status_code == 303
    assert "<h1>My training track</h1>" in browser.get("/", headers=chinese).text


def test_sign_out_ends_the_session(
    browser: TestClient[Any],
    services: Services,
    tenant_module: TenantUnderTest,
    engineer: dict[str, Any],
) -> None:
    signed_in(browser, services, tenant_module.tenant_id, engineer["member_id"])
    token = csrf_token(browser, "/")
    answer = browser.post(
        "/sign-out", data={"_csrf_token": token}, headers=BROWSER, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in"
    assert SESSION_COOKIE not in browser.cookies
    assert browser.get("/", headers=BROWSER, follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("environment", "host", "exists"),
    [
        ("development", "127.0.0.1", True),
        ("development", "::1", True),
        ("development", "0.0.0.0", False),  # noqa: S104 (the case refused)
        ("development", "10.1.2.3", False),
        ("production", "127.0.0.1", False),
        ("test", "127.0.0.1", False),
    ],
)
def test_the_demo_sign_in_exists_only_in_development_on_loopback(
    browser: TestClient[Any], services: Services, environment: str, host: str, exists: bool
) -> None:
    client = browser_for(services, environment=environment, host=host)
    page = client.get("/dev/sign-in", headers=BROWSER)
    assert page.status_code == (200 if exists else 404)
    assert page.headers["content-type"].startswith("text/html")
    if exists:
        assert "<h1>Sign in to the demo</h1>" in page.text
    # Outside development the route is not there at all; in it, someone who is not a person
    # of the demo company signs no one in.
    form = {"member_id": str(uuid.uuid4()), "_csrf_token": csrf_token(client)}
    posted = client.post("/dev/sign-in", data=form, headers=BROWSER, follow_redirects=False)
    assert posted.status_code == 404
    assert SESSION_COOKIE not in client.cookies


def test_a_manager_sees_their_people_direct_and_indirect_and_no_one_else(
    browser: TestClient[Any], services: Services, tenant_module: TenantUnderTest
) -> None:
    boss = tenant_module.add(f"MB{uuid.uuid4().hex[:6]}", roles=["manager"]).json()
    lead_id = f"ML{uuid.uuid4().hex[:6]}"
    lead = tenant_module.add(
        lead_id, roles=["engineer", "manager"], manager_id=boss["member_id"]
    ).json()
    dev = tenant_module.add(
        f"MD{uuid.uuid4().hex[:6]}",
        display_name="Dev <b>Indirect</b>",
        manager_id=lead["member_id"],
    ).json()
    tenant_module.add(f"MO{uuid.uuid4().hex[:6]}", display_name="Not Theirs")
    signed_in(browser, services, tenant_module.tenant_id, boss["member_id"])
    page = browser.get("/team", headers=BROWSER)
    assert page.status_code == 200, page.text
    assert f"Person {lead_id}" in page.text
    assert "Dev &lt;b&gt;Indirect&lt;/b&gt;" in page.text
    assert "through 2 levels" in page.text
    assert "Not Theirs" not in page.text
    assert "percentage points" in page.text
    # An engineer who manages no one is not a manager: the page is refused, as a page.
    signed_in(browser, services, tenant_module.tenant_id, dev["member_id"])
    refused = browser.get("/team", headers=BROWSER)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "My people" not in refused.text.split("<main", 1)[0]
