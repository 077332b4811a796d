"""An engineer of the demo company signs in with the development sign-in and sees their
training track, in English and in Chinese, then signs out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DemoService, Pages, check_accessibility, screenshot
from tests.waiting import wait_until

pytestmark = pytest.mark.browser

SESSION_COOKIE = "training_session"
CSRF_FIELD = "_csrf_token"


@dataclass(frozen=True)
class Language:
    locale: str
    home_heading: str
    sign_out: str


ENGLISH = Language("en-US", "My training track", "Sign out")
CHINESE = Language("zh-CN", "我的培训路线", "退出登录")


@dataclass(frozen=True)
class Person:
    name: str
    member_id: str


def test_an_engineer_signs_in_and_sees_their_track(page: Page, live_server: DemoService) -> None:
    page.goto("/")
    assert_on_sign_in(page)
    check_accessibility(page)
    screenshot(page, "sign-in")

    page.locator('a[href^="/dev/sign-in"]').first.click()
    expect(page.get_by_role("heading", level=1, name="Sign in to the demo")).to_be_visible()
    for role in ("Engineers", "Managers", "HR managers"):
        expect(page.get_by_role("heading", level=2, name=role, exact=True)).to_be_visible()
    check_accessibility(page)
    screenshot(page, "dev-sign-in")

    engineer = first_engineer(page)
    sign_in_as(page, engineer)
    see_track(page, live_server, engineer, ENGLISH)
    check_accessibility(page)
    screenshot(page, "track")

    sign_out(page, ENGLISH)


def test_an_engineer_sees_their_track_in_chinese(pages: Pages, live_server: DemoService) -> None:
    english = pages.open()
    english.goto("/dev/sign-in")
    engineer = first_engineer(english)

    page = pages.open(locale=CHINESE.locale)
    page.goto("/")
    assert_on_sign_in(page)
    check_accessibility(page)
    screenshot(page, "sign-in-zh")

    page.goto("/dev/sign-in")
    check_accessibility(page)
    screenshot(page, "dev-sign-in-zh")
    sign_in_as(page, engineer)
    see_track(page, live_server, engineer, CHINESE)
    assert str(page.locator("html").get_attribute("lang")).startswith("zh")
    check_accessibility(page)
    screenshot(page, "track-zh")

    sign_out(page, CHINESE)


def assert_on_sign_in(page: Page) -> None:
    """Not signed in, ``/`` answered 303 to ``/sign-in?next=/``, whose page offers the
    development sign-in."""
    refused = page.request.get("/", max_redirects=0)
    assert refused.status == 303, refused.status
    assert is_sign_in(refused.headers["location"], next_path="/"), refused.headers["location"]
    assert is_sign_in(page.url, next_path="/"), page.url
    expect(page.locator('a[href^="/dev/sign-in"]')).not_to_have_count(0)


def is_sign_in(url: str, *, next_path: str | None = None) -> bool:
    parts = urlsplit(url)
    if parts.path != "/sign-in":
        return False
    return next_path is None or parse_qs(parts.query).get("next") == [next_path]


def first_engineer(page: Page) -> Person:
    """The first person of the Engineers section of ``/dev/sign-in`` (in English)."""
    each_person_signs_in_by_form(page)
    engineers = page.locator("section").filter(
        has=page.get_by_role("heading", level=2, name="Engineers", exact=True)
    )
    form = engineers.locator("form").first
    member_id = form.locator('input[type="hidden"][name="member_id"]').get_attribute("value")
    name = form.get_by_role("button").inner_text().strip()
    assert member_id, "the form names no member_id"
    assert name, "the button names nobody"
    # The button's accessible name is the person's name: a role locator finds it so.
    expect(form.get_by_role("button", name=name, exact=True)).to_be_visible()
    return Person(name, member_id)


def each_person_signs_in_by_form(page: Page) -> None:
    """Each person of ``/dev/sign-in`` is a form posting to it their member id and a CSRF
    token, sent by one button."""
    forms = page.get_by_role("main").locator("section form")
    expect(forms.first).to_be_visible()
    for index in range(forms.count()):
        form = forms.nth(index)
        expect(form).to_have_attribute("method", re.compile("^post$", re.IGNORECASE))
        expect(form).to_have_attribute("action", "/dev/sign-in")
        for field in ("member_id", CSRF_FIELD):
            hidden = form.locator(f'input[type="hidden"][name="{field}"]')
            expect(hidden).to_have_attribute("value", re.compile("."))
        expect(form.get_by_role("button")).to_have_count(1)


def sign_in_as(page: Page, person: Person) -> None:
    """Clicks the person's button on ``/dev/sign-in``: a 303 to ``/`` and a session cookie
    that scripts cannot read."""
    button = page.get_by_role("button", name=person.name, exact=True).first
    with page.expect_response(
        lambda answer: (
            answer.request.method == "POST" and urlsplit(answer.url).path == "/dev/sign-in"
        )
    ) as posted:
        button.click()
    answer = posted.value
    assert answer.status == 303, answer.status
    assert urlsplit(answer.headers["location"]).path == "/", answer.headers["location"]
    page.wait_for_url(re.compile(r"^[^?#]*://[^/]+/$"))
    session = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert len(session) == 1, page.context.cookies()
    assert session[0]["httpOnly"], session[0]


def see_track(page: Page, live_server: DemoService, person: Person, language: Language) -> None:
    """The home page is the person's track: its heading, and the modules the API plans for
    them, each with the reason it is in the plan."""
    expect(page.get_by_role("heading", level=1, name=language.home_heading)).to_be_visible()
    modules = planned_modules(live_server, person)
    listed = page.get_by_role("main").get_by_role("listitem")
    expect(listed.first).to_be_visible()
    # A module is an item of a list, titled by a heading (other lists, of the plan's changes,
    # name modules too).
    module = listed.filter(has=page.get_by_role("heading", name=modules[0]["title"], exact=True))
    if language is ENGLISH:  # the reason is the planner's text, in English
        module = module.filter(has_text=modules[0]["reason"])
    expect(module.first).to_be_visible()


def planned_modules(live_server: DemoService, person: Person) -> list[dict[str, Any]]:
    def track() -> list[dict[str, Any]] | None:
        answer = live_server.api(f"/v1/members/{person.member_id}/track")
        if answer.status_code == 404:  # not planned yet: the demo's events are still read
            return None
        assert answer.status_code == 200, answer.text
        return list(answer.json()["modules"]) or None

    return wait_until(track, 30, f"a track with modules for {person.name}", poll=0.5)


def sign_out(page: Page, language: Language) -> None:
    page.get_by_role("button", name=language.sign_out, exact=True).click()
    page.wait_for_url(lambda url: is_sign_in(url))
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE and c["value"]]
    page.goto("/")
    assert is_sign_in(page.url, next_path="/"), page.url
