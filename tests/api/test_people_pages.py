"""The HR manager's people pages: search, filters and pages of the list, adding a person
(a refused form keeps what was entered), changing roles and team, deactivating and
reactivating, a CSV import followed to its report, and who may open them."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.pages import BROWSER, csrf_token, page_client, signed_in
from tests.helpers import TenantUnderTest
from training.bootstrap import Services

NEXT_PAGE = re.compile(r'<a href="([^"]+)" rel="next">Next page</a>')
PERSON_LINK = re.compile(r'<a href="/people/([0-9a-f-]{36})">')


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


def added(tenant: TenantUnderTest, external_id: str, **fields: Any) -> tuple[str, str]:
    """A person registered through the API: their id and the position to read them at."""
    response = tenant.add(external_id, **fields)
    assert response.status_code == 201, response.text
    return response.json()["member_id"], response.headers["Training-Position"]


def people_ids(page: str) -> list[str]:
    return PERSON_LINK.findall(page)


def send(
    browser: TestClient[Any], path: str, form: dict[str, Any], *, form_page: str = "/people"
) -> Any:
    data = {**form, "_csrf_token": csrf_token(browser, form_page)}
    return browser.post(path, data=data, headers=BROWSER, follow_redirects=False)


def test_the_list_searches_filters_and_pages(browser: TestClient[Any], hr: TenantUnderTest) -> None:
    ids = {}
    for n, team in enumerate(["Core", "Core", "Core", "Edge"]):
        ids[n], at = added(hr, f"P{n}", display_name=f"Pat Number{n}", team=team)
    _, at = added(hr, "Q1", display_name="Quinn Other", team="Core", roles=["manager"])

    everyone = browser.get(f"/people?at={at}", headers=BROWSER)
    assert everyone.status_code == 200
    assert 'aria-current="page">People</a>' in everyone.text  # the HR manager's nav
    assert set(ids.values()) <= set(people_ids(everyone.text))

    searched = browser.get("/people", params={"q": "pat"}, headers=BROWSER)
    assert sorted(people_ids(searched.text)) == sorted(ids.values())
    by_email = browser.get("/people", params={"q": "q1@example"}, headers=BROWSER)
    assert "Quinn Other" in by_email.text
    assert "Pat Number" not in by_email.text

    managers = browser.get("/people", params={"role": "manager", "q": ""}, headers=BROWSER)
    assert "Quinn Other" in managers.text
    assert "Pat Number" not in managers.text

    # Two pages of Core people: the next page keeps the filters.
    first = browser.get("/people", params={"team": "Core", "limit": 2}, headers=BROWSER)
    assert people_ids(first.text) == [ids[0], ids[1]]
    link = NEXT_PAGE.search(first.text)
    assert link, first.text
    target = link.group(1).replace("&amp;", "&")
    assert "team=Core" in target
    assert "limit=2" in target
    second = browser.get(target, headers=BROWSER)
    assert second.status_code == 200
    assert people_ids(second.text)[0] == ids[2]
    assert "Pat Number3" not in second.text  # Edge stays filtered out

    inactive = browser.get("/people", params={"status": "deactivated"}, headers=BROWSER)
    assert people_ids(inactive.text) == []
    assert "No one matches these filters." in inactive.text


def test_an_hr_manager_adds_a_person_and_a_refused_form_keeps_the_values(
    browser: TestClient[Any], hr: TenantUnderTest
) -> None:
    boss, at = added(hr, "BOSS", display_name="Bea Boss", roles=["manager"])
    form = browser.get(f"/people/new?at={at}", headers=BROWSER)
    assert form.status_code == 200
    assert f'<option value="{boss}"' in form.text  # the managers to choose from

    person = {
        "display_name": "Nia New",
        "email": "nia@example.com",
        "external_id": "N1",
        "roles": ["engineer", "manager"],
        "manager_choice": boss,
        "team": "Core",
        "job_title": "Engineer",
    }
    created = send(browser, "/people", person, form_page="/people/new")
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    assert location.startswith("/people/")
    shown = browser.get(location, headers=BROWSER)
    assert shown.status_code == 200
    assert "<h1>Nia New</h1>" in shown.text
    assert "nia@example.com" in shown.text
    assert "Bea Boss" in shown.text

    # The same email again: refused, every value kept, the message beside the email.
    again = {**person, "external_id": "N2", "display_name": "Nia Twin"}
    refused = send(browser, "/people", again, form_page="/people/new")
    assert refused.status_code == 422
    assert "Another person already has this email address." in refused.text
    assert 'value="Nia Twin"' in refused.text
    assert 'value="N2"' in refused.text
    assert 'value="Core"' in refused.text
    assert 'id="f-email-error"' in refused.text

    # A field the API's rules refuse: nothing is sent, the form comes back.
    bad = {**person, "external_id": "N3", "email": "not-an-email", "roles": []}
    refused = send(browser, "/people", bad, form_page="/people/new")
    assert refused.status_code == 422
    assert "Enter an email address such as name@example.com." in refused.text
    assert "Choose at least one role." in refused.text
    assert 'value="not-an-email"' in refused.text


def test_an_hr_manager_changes_roles_and_team_then_deactivates_and_reactivates(
    browser: TestClient[Any], hr: TenantUnderTest
) -> None:
    first_boss, _ = added(hr, "B1", display_name="Bo First", roles=["manager"])
    second_boss, _ = added(hr, "B2", display_name="Bo Second", roles=["manager"])
    member_id, at = added(hr, "C1", display_name="Cai Change", team="Core", manager_id=first_boss)
    page = browser.get(f"/people/{member_id}?at={at}", headers=BROWSER)
    assert page.status_code == 200
    # The list shows the manager; the id field stays empty, so a choice from the list counts.
    assert f'<option value="{first_boss}" selected>' in page.text
    assert 'name="manager_id" value=""' in page.text
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version

    changed = send(
        browser,
        f"/people/{member_id}",
        {
            "roles": ["engineer", "manager"],
            "team": "Platform",
            "manager_choice": second_boss,
            "manager_id": "",
            "version": version.group(1),
        },
    )
    assert changed.status_code == 303, changed.text
    shown = browser.get(changed.headers["location"], headers=BROWSER)
    assert "<dd>Platform</dd>" in shown.text
    assert "<dd>Engineer, Manager</dd>" in shown.text
    assert f'<dd><a href="/people/{second_boss}">Bo Second</a></dd>' in shown.text

    # A form shown before that change is refused, not applied over it.
    stale = send(
        browser, f"/people/{member_id}", {"roles": ["engineer"], "version": version.group(1)}
    )
    assert stale.status_code == 412

    no_reason = send(browser, f"/people/{member_id}/deactivate", {"reason": " "})
    assert no_reason.status_code == 422
    assert "Give a reason of at most 500 characters." in no_reason.text

    gone = send(browser, f"/people/{member_id}/deactivate", {"reason": "Left the company"})
    assert gone.status_code == 303, gone.text
    shown = browser.get(gone.headers["location"], headers=BROWSER)
    assert "<dd>Deactivated</dd>" in shown.text
    assert f'action="/people/{member_id}/reactivate"' in shown.text

    back = send(browser, f"/people/{member_id}/reactivate", {})
    assert back.status_code == 303, back.text
    shown = browser.get(back.headers["location"], headers=BROWSER)
    assert "<dd>Active</dd>" in shown.text


CSV = """external_id,display_name,email,roles,manager_external_id,team,job_title
I1,Ida Import,ida@example.com,engineer,,Core,Engineer
I2,Ivo Import,ivo@example.com,engineer,I1,Core,Engineer
I3,Ian Broken,not-an-email,engineer,,Core,Engineer
"""


def test_a_csv_import_runs_to_its_report(browser: TestClient[Any], hr: TenantUnderTest) -> None:
    form = browser.get("/people/import", headers=BROWSER)
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text
    token = csrf_token(browser, "/people/import")
    sent = browser.post(
        "/people/import",
        data={"_csrf_token": token},
        files={"file": ("people.csv", CSV.encode(), "text/csv")},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    assert re.fullmatch(r"/people/import/[0-9a-f-]{36}", location)

    deadline = time.monotonic() + 30
    while True:
        status = browser.get(location, headers=BROWSER)
        assert status.status_code == 200
        if '<meta http-equiv="refresh" content="2">' not in status.text:
            break
        assert "<progress" in status.text
        assert time.monotonic() < deadline, status.text
        time.sleep(0.1)
    assert "Status: Completed" in status.text
    assert "<progress" in status.text
    assert "<dt>Added</dt><dd>2</dd>" in status.text
    assert "<dt>Rows with an error</dt><dd>1</dd>" in status.text
    assert "<tr><td>4</td><td>email</td>" in status.text

    # An empty file is refused on the form.
    empty = browser.post(
        "/people/import",
        data={"_csrf_token": csrf_token(browser, "/people/import")},
        files={"file": ("people.csv", b"", "text/csv")},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert empty.status_code == 422
    assert "Choose a CSV file to upload." in empty.text


def test_a_long_import_report_is_shown_by_pages(
    browser: TestClient[Any], hr: TenantUnderTest
) -> None:
    rows = "".join(f"R{n},Rae Row{n},bad-email-{n},engineer,,Core,\n" for n in range(60))
    sent = browser.post(
        "/people/import",
        data={"_csrf_token": csrf_token(browser, "/people/import")},
        files={"file": ("people.csv", (CSV.splitlines()[0] + "\n" + rows).encode(), "text/csv")},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    deadline = time.monotonic() + 30
    while "Status: Completed" not in (status := browser.get(location, headers=BROWSER)).text:
        assert time.monotonic() < deadline, status.text
        time.sleep(0.1)
    assert "<dt>Rows with an error</dt><dd>60</dd>" in status.text
    assert status.text.count("<tr><td>") == 50
    assert "<tr><td>51</td>" in status.text
    assert "<tr><td>52</td>" not in status.text
    later = re.search(r'<a href="([^"]+)" rel="next">Next rows</a>', status.text)
    assert later, status.text
    rest = browser.get(later.group(1), headers=BROWSER)
    assert rest.text.count("<tr><td>") == 10
    assert "<tr><td>61</td>" in rest.text
    assert 'rel="prev">Previous rows</a>' in rest.text


def test_a_form_without_its_csrf_token_is_refused(
    browser: TestClient[Any], hr: TenantUnderTest
) -> None:
    browser.get("/people", headers=BROWSER)  # the CSRF cookie is set
    refused = browser.post(
        "/people",
        data={"display_name": "No Token", "external_id": "NT", "roles": ["engineer"]},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert "The form had expired" in refused.text


def test_an_engineer_gets_the_403_page_on_every_people_page(
    browser: TestClient[Any], services: Services
) -> None:
    tenant = TenantUnderTest(browser, services)
    someone, _ = added(tenant, "S1")
    engineer, _ = added(tenant, f"EN{uuid.uuid4().hex[:6]}")
    signed_in(browser, services, tenant.tenant_id, engineer)
    home = browser.get("/", headers=BROWSER)
    assert 'href="/people"' not in home.text
    pages = [
        "/people",
        "/people/new",
        f"/people/{someone}",
        "/people/import",
        f"/people/import/{uuid.uuid4()}",
    ]
    for path in pages:
        refused = browser.get(path, headers=BROWSER)
        assert refused.status_code == 403, path
        assert "Your role does not allow this." in refused.text
    forms = [
        "/people",
        f"/people/{someone}",
        f"/people/{someone}/deactivate",
        f"/people/{someone}/reactivate",
        "/people/import",
    ]
    for path in forms:
        form = {"reason": "x", "roles": ["engineer"], "display_name": "X", "external_id": "X"}
        refused = send(browser, path, form, form_page="/")
        assert refused.status_code == 403, path


def test_another_companys_person_is_not_found(
    browser: TestClient[Any], services: Services, hr: TenantUnderTest
) -> None:
    elsewhere = TenantUnderTest(browser, services)
    theirs, _ = added(elsewhere, "T1")
    assert browser.get(f"/people/{theirs}", headers=BROWSER).status_code == 404
    changed = send(browser, f"/people/{theirs}", {"roles": ["engineer"], "team": "X"})
    assert changed.status_code == 404
    gone = send(browser, f"/people/{theirs}/deactivate", {"reason": "no"})
    assert gone.status_code == 404
    assert browser.get(f"/people/import/{uuid.uuid4()}", headers=BROWSER).status_code == 404


def test_a_script_in_a_name_shows_escaped(browser: TestClient[Any], hr: TenantUnderTest) -> None:
    name = '<script>alert("x")</script>'
    member_id, at = added(hr, "X1", display_name=name)
    for path in (f"/people?at={at}", f"/people/{member_id}"):
        page = browser.get(path, headers=BROWSER)
        assert page.status_code == 200
        assert name not in page.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
