"""An HR manager's morning, in Chromium: import three people from a CSV file, schedule a
cohort of two seats and enrol them (one waits, first in line), draft and finalise a review of
one of them; that engineer then signs in, sees the plan the review made and why, and downloads
their report."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DemoService, Pages, check_accessibility, screenshot
from tests.browser.test_every_page import sign_in_as_first_of

pytestmark = pytest.mark.browser


def import_people(page: Page, run: str) -> list[str]:
    """Three engineers of a new team, imported from a CSV file: their display names."""
    names = [f"Journey {run} {n}" for n in range(1, 4)]
    rows = "\n".join(
        f"J{run}{n},{name},j{run}{n}@acme.example,engineer,,Journey {run},Engineer"
        for n, name in enumerate(names, start=1)
    )
    csv = f"external_id,display_name,email,roles,manager_external_id,team,job_title\n{rows}\n"
    page.goto("/people/import")
    page.locator("#file").set_input_files(
        {"name": "people.csv", "mimeType": "text/csv", "buffer": csv.encode()}
    )
    page.get_by_role("button", name="Import", exact=True).click()
    # The job's page follows it (it reloads itself while the job runs) to its report.
    expect(page.locator("progress")).to_be_visible()
    expect(page.get_by_text(re.compile("completed", re.IGNORECASE)).first).to_be_visible(
        timeout=60_000
    )
    check_accessibility(page)
    return names


def schedule_cohort(page: Page, run: str) -> None:
    page.goto("/cohorts/new")
    page.fill("#f-name", f"Journey cohort {run}")
    page.fill("#f-starts_on", "2030-01-07")
    page.fill("#f-ends_on", "2030-03-29")
    page.fill("#f-timezone", "Europe/Berlin")
    page.fill("#f-capacity", "2")
    page.get_by_role("button", name="Schedule the cohort").click()
    expect(page.get_by_role("heading", level=1, name=f"Journey cohort {run}")).to_be_visible()


def enrol(page: Page, run: str, names: list[str]) -> None:
    page.fill("#team", f"Journey {run}")
    page.get_by_role("button", name="Search", exact=True).click()
    for name in names:
        page.get_by_label(re.compile(re.escape(name))).check()
    page.get_by_role("button", name="Enrol the people ticked").click()
    waitlist = page.locator("section", has=page.get_by_role("heading", level=2, name="Waitlist"))
    expect(waitlist.locator("td.place")).to_have_text(["1"])
    check_accessibility(page)
    screenshot(page, "hr-cohort-enrolled")


def finalise_review(page: Page, run: str, name: str) -> None:
    page.goto("/people?q=" + name.replace(" ", "+"))
    page.get_by_role("link", name=name).first.click()
    page.get_by_role("link", name="Draft a review").click()
    page.fill("#f-cycle", "2026-H2")
    page.select_option("#f-rating_skill_0", "kubernetes")
    page.select_option("#f-rating_level_0", "1")
    page.select_option("#f-overall_rating", "3")
    page.fill("#f-strengths", "Clear writing")
    page.select_option("#f-goal_skill_0", "kubernetes")
    page.select_option("#f-goal_level_0", "3")
    page.fill("#f-goal_due_0", "2027-06-30")
    page.get_by_role("button", name="Save the draft").click()
    page.get_by_role("button", name="Finalise the review").click()
    expect(page.get_by_text(re.compile("finalised", re.IGNORECASE)).first).to_be_visible()


def test_an_hr_manager_imports_enrols_and_reviews_and_the_engineer_sees_the_new_plan(
    pages: Pages, live_server: DemoService
) -> None:
    run = uuid.uuid4().hex[:6]
    hr = pages.open()
    sign_in_as_first_of(hr, "HR managers")
    names = import_people(hr, run)
    schedule_cohort(hr, run)
    enrol(hr, run, names)
    finalise_review(hr, run, names[0])

    engineer = pages.open()
    engineer.goto("/dev/sign-in")
    engineer.get_by_role("button", name=names[0]).first.click()
    expect(engineer.get_by_role("heading", level=1, name="My training track")).to_be_visible()
    # The review's plan, and why the plan changed (the page is read again until it shows).
    for _ in range(60):
        if engineer.get_by_text("A performance review was finalised.").count():
            break
        engineer.wait_for_timeout(500)
        engineer.reload()
    expect(engineer.get_by_text("A performance review was finalised.")).to_be_visible()
    expect(engineer.get_by_text(re.compile("goal G1")).first).to_be_visible()
    check_accessibility(engineer)
    screenshot(engineer, "journey-engineer-track")
    # The report of the new plan, rendered in the background, is a PDF behind its link.
    download = engineer.get_by_role("link", name="Download the PDF").first
    for _ in range(120):
        engineer.goto("/reports/mine")
        if download.count():
            break
        engineer.wait_for_timeout(1000)
    href = download.get_attribute("href")
    assert href is not None
    pdf = engineer.request.get(href)  # with the page's session
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body()[:5] == b"%PDF-"
