"""Every page of each role, in Chromium: axe finds no serious or critical violation, the page
fits a 375 px phone screen without scrolling sideways, and its screenshots are written at
desktop and phone width. Then an engineer takes an assessment to its result, as on a phone.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DemoService, Pages, check_accessibility, screenshot

pytestmark = pytest.mark.browser

# Each role's pages (the ones its navigation links to, and the forms they open), under the
# heading of the demo's sign-in page that lists the people holding it.
ROLE_PAGES: dict[str, tuple[str, ...]] = {
    "Engineers": (
        "/",
        "/assessments",
        "/profile/skills",
        "/cohorts/mine",
        "/reports/mine",
        "/profile",
    ),
    "Managers": ("/team",),
    "HR managers": (
        "/people",
        "/people/new",
        "/people/import",
        "/cohorts",
        "/cohorts/new",
        "/reviews",
        "/reviews/new",
        "/reviews/import",
        "/curricula",
        "/curricula/new",
        "/role-profiles",
        "/role-profiles/new",
        "/reports",
    ),
    "Administrators": ("/admin/sign-in", "/admin/clients", "/admin/audit", "/admin/policy"),
}


def sign_in_as_first_of(page: Page, section: str) -> None:
    page.goto("/dev/sign-in")
    heading = page.get_by_role("heading", level=2, name=section, exact=True)
    expect(heading).to_be_visible()
    page.locator("section", has=heading).get_by_role("button").first.click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def fits_a_phone(pages: Pages, page: Page) -> None:
    """The page at 375 px: nothing wider than the screen (no sideways scrolling)."""
    phone = pages.context(phone=True, storage_state=page.context.storage_state()).new_page()
    phone.goto(page.url)
    overflow = phone.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{page.url} is {overflow} px wider than a 375 px screen"
    check_accessibility(phone)


@pytest.mark.parametrize("section", sorted(ROLE_PAGES))
def test_every_page_of_a_role_is_accessible_and_fits_a_phone(
    pages: Pages, live_server: DemoService, section: str
) -> None:
    page = pages.open()
    sign_in_as_first_of(page, section)
    for path in ROLE_PAGES[section]:
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 200, f"{path}: {answer.status}"
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        check_accessibility(page)
        fits_a_phone(pages, page)
        name = path.strip("/").replace("/", "-") or "home"
        screenshot(page, f"{section.lower().replace(' ', '-')}-{name}")


def test_an_engineer_takes_an_assessment_to_its_result_on_a_phone(
    pages: Pages, live_server: DemoService
) -> None:
    page = pages.open(phone=True)
    sign_in_as_first_of(page, "Engineers")
    page.goto("/assessments")
    # The first skill the engineer may start (the demo's engineers took some lately).
    for button in page.get_by_role("button", name=re.compile("^Start an assessment of")).all():
        button.click()
        if page.locator('input[name="item_id"]').count():
            break
        page.goto("/assessments")
    else:
        pytest.fail("the engineer may start no assessment")
    first = True
    while page.locator('input[name="item_id"]').count():
        expect(page.get_by_text(re.compile(r"\d+ seconds left to answer"))).to_be_visible()
        # Every item: some kinds (code, ordering) have markup of their own.
        check_accessibility(page)
        if first:
            screenshot(page, "assessment-item")
            first = False
        orders = page.locator('input[type="number"]')
        if not orders.count():
            page.locator('input[name="answer"]').first.check()
        page.get_by_role("button", name="Answer", exact=True).click()
        # Back and the form again: the item was answered, nothing changes.
    expect(page.get_by_text(re.compile(r"^Level [1-7]$"))).to_be_visible()
    check_accessibility(page)
    screenshot(page, "assessment-result")
    page.get_by_role("link", name=re.compile("See your training track")).click()
    expect(page.get_by_role("heading", level=1, name="My training track")).to_be_visible()
