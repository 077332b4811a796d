"""The HR manager's curriculum and role profile pages: a draft built module by module (a
prerequisite cycle refused and named, nothing written), published, revised into a second
version and compared; a catalogue curriculum forked; a role profile defined and revised with
its revisions; and who may change what (CSRF, 403 for an engineer, 404 for another
company's curriculum)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.pages import BROWSER, csrf_token, page_client, signed_in
from tests.api.test_reviews_tracks import ensure_catalogue
from tests.helpers import TenantUnderTest
from training.bootstrap import Services

CURRICULUM_LINK = re.compile(r'<a href="/curricula/([0-9a-f-]{36})">([^<]*)</a>')


@pytest.fixture(scope="module")
def browser(services: Services) -> Iterator[TestClient[Any]]:
    with page_client(services) as client:
        yield client


def sign_in_as(
    browser: TestClient[Any], services: Services, tenant: TenantUnderTest, role: str
) -> str:
    person = tenant.add(f"{role[:2].upper()}{uuid.uuid4().hex[:6]}", roles=[role])
    assert person.status_code == 201, person.text
    member_id = str(person.json()["member_id"])
    signed_in(browser, services, tenant.tenant_id, member_id)
    return member_id


@pytest.fixture
def hr(browser: TestClient[Any], services: Services) -> TenantUnderTest:
    """A new company with an HR manager signed in."""
    tenant = TenantUnderTest(browser, services)
    sign_in_as(browser, services, tenant, "hr_manager")
    return tenant


def send(
    browser: TestClient[Any], path: str, form: dict[str, Any], form_page: str, language: str = "en"
) -> Any:
    data = {**form, "_csrf_token": csrf_token(browser, form_page)}
    headers = {**BROWSER, "Accept-Language": language}
    return browser.post(path, data=data, headers=headers, follow_redirects=False)


def follow(browser: TestClient[Any], answer: Any) -> Any:
    assert answer.status_code == 303, answer.text[:500]
    shown = browser.get(answer.headers["location"], headers=BROWSER)
    assert shown.status_code == 200, shown.text[:500]
    return shown


def version_of(page: str, action: str) -> str:
    """The version field of the form posting to ``action`` on ``page``."""
    found = re.search(
        rf'action="{re.escape(action)}"[^>]*>\s*<input type="hidden" name="_csrf_token"[^>]*>'
        r'\s*<input type="hidden" name="version" value="(\d+)">',
        page,
    )
    assert found, page
    return found.group(1)


def module(key: str, *prerequisites: str, **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "title": fields.pop("title", key.title()),
        "format": fields.pop("format", "reading"),
        "duration_minutes": str(fields.pop("duration_minutes", 30)),
        "description": fields.pop("description", f"All about {key}."),
        "targets": fields.pop("targets", "python: 2"),
        "prerequisites": list(prerequisites),
    }


def create_curriculum(browser: TestClient[Any], title: str = "Backend basics") -> str:
    created = send(
        browser, "/curricula", {"title": title, "description": "Start"}, "/curricula/new"
    )
    follow(browser, created)  # the page waits until the views hold the new curriculum
    return str(created.headers["location"].split("?")[0].rsplit("/", 1)[1])


def add(browser: TestClient[Any], curriculum_id: str, body: dict[str, Any]) -> Any:
    page = f"/curricula/{curriculum_id}"
    return send(browser, f"{page}/modules", body, page)


def test_a_draft_is_built_a_cycle_is_named_and_versions_are_compared(
    browser: TestClient[Any], hr: TenantUnderTest
) -> None:
    listed = browser.get("/curricula", headers=BROWSER)
    assert listed.status_code == 200
    assert 'aria-current="page">Curricula</a>' in listed.text
    assert 'href="/role-profiles"' in listed.text

    curriculum_id = create_curriculum(browser)
    page = f"/curricula/{curriculum_id}"
    shown = follow(browser, add(browser, curriculum_id, module("intro", targets="python: 1")))
    assert "Intro" in shown.text
    shown = follow(browser, add(browser, curriculum_id, module("apis", "intro")))
    assert "<td>intro</td>" in shown.text  # the prerequisite

    # intro requiring apis closes a cycle: refused, named, and nothing written.
    edit = browser.get(f"{page}/modules/intro", headers=BROWSER)
    assert edit.status_code == 200
    assert 'value="python: 1"' not in edit.text  # a textarea, not an input
    assert "python: 1</textarea>" in edit.text
    refused = send(
        browser,
        f"{page}/modules/intro",
        {**module("intro", "apis", title="Renamed intro"), "version": ""},
        f"{page}/modules/intro",
    )
    assert refused.status_code == 422
    assert "These prerequisites would form a cycle: apis → intro → apis." in refused.text
    assert 'id="f-prerequisites-error"' in refused.text
    assert 'value="Renamed intro"' in refused.text  # what was entered is kept
    unchanged = browser.get(page, headers=BROWSER)
    assert "Renamed intro" not in unchanged.text
    in_chinese = send(
        browser,
        f"{page}/modules/intro",
        module("intro", "apis"),
        f"{page}/modules/intro",
        language="zh-Hans",
    )
    assert "apis → intro → apis。" in in_chinese.text
    assert "这些先修模块会形成循环" in in_chinese.text

    # A field the form refuses before any command: the message beside it.
    bad = add(browser, curriculum_id, module("Bad Key", duration_minutes=2, targets="python"))
    assert bad.status_code == 422
    assert 'id="f-key-error"' in bad.text
    assert 'id="f-duration_minutes-error"' in bad.text
    assert 'id="f-targets-error"' in bad.text
    assert 'value="Bad Key"' in bad.text
    # An unknown skill is refused by the command, beside the skills.
    unknown = add(browser, curriculum_id, module("extra", targets="no-such-skill: 3"))
    assert unknown.status_code == 422
    assert "unknown or retired skill" in unknown.text
    assert 'id="f-targets-error"' in unknown.text

    draft = browser.get(page, headers=BROWSER).text
    published = send(
        browser,
        f"{page}/publish",
        {"version": version_of(draft, f"{page}/publish")},
        page,
    )
    shown = follow(browser, published)
    assert f'href="{page}/versions/1"' in shown.text
    version_1 = browser.get(f"{page}/versions/1", headers=BROWSER)
    assert version_1.status_code == 200
    assert version_1.text.index("Intro") < version_1.text.index("Apis")

    # Version 2: a module revised, one added.
    follow(
        browser,
        send(
            browser,
            f"{page}/modules/apis",
            module("apis", "intro", duration_minutes=45),
            f"{page}/modules/apis",
        ),
    )
    follow(browser, add(browser, curriculum_id, module("testing", "apis")))
    follow(browser, send(browser, f"{page}/publish", {}, page))
    compared = browser.get(f"{page}/diff", params={"from": 1, "to": 2}, headers=BROWSER)
    assert compared.status_code == 200
    text = compared.text
    added_at, removed_at, changed_at = (
        text.index("Added modules"),
        text.index("Removed modules"),
        text.index("Changed modules"),
    )
    assert added_at < text.index("<code>testing</code>") < removed_at
    assert "<code>apis</code>: Minutes" in text[changed_at:]

    # A version that does not exist is the 404 page.
    missing = browser.get(f"{page}/versions/9", headers=BROWSER)
    assert missing.status_code == 404


def test_a_module_title_is_shown_escaped(browser: TestClient[Any], hr: TenantUnderTest) -> None:
    curriculum_id = create_curriculum(browser, "<b>Bold</b> course")
    shown = follow(
        browser, add(browser, curriculum_id, module("xss", title="<script>alert(1)</script>"))
    )
    assert "<script>alert(1)</script>" not in shown.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text
    assert "&lt;b&gt;Bold&lt;/b&gt; course" in shown.text


def test_a_catalogue_curriculum_is_forked(
    browser: TestClient[Any], services: Services, hr: TenantUnderTest
) -> None:
    ensure_catalogue(services)
    listed = browser.get("/curricula", headers=BROWSER)
    catalogue = listed.text[listed.text.index("Platform catalogue") :]
    source_id, title = CURRICULUM_LINK.findall(catalogue)[0]
    source = browser.get(f"/curricula/{source_id}", headers=BROWSER)
    assert f"<h1>{title}</h1>" in source.text
    assert "Fork into your company" in source.text
    assert "Add a module" not in source.text  # the catalogue is not the company's to edit

    forked = send(
        browser,
        f"/curricula/{source_id}/fork",
        {"version": "1", "fork_title": "Our own"},
        f"/curricula/{source_id}",
    )
    shown = follow(browser, forked)
    assert "<h1>Our own</h1>" in shown.text
    assert f'href="/curricula/{source_id}/versions/1"' in shown.text
    assert "Add a module" in shown.text
    own = browser.get("/curricula", headers=BROWSER).text
    assert "Our own" in own[: own.index("Platform catalogue")]

    # Adding a module to the catalogue's curriculum: not found, like any other's.
    refused = add(browser, source_id, module("mine"))
    assert refused.status_code == 404


def test_a_role_profile_is_defined_revised_and_retired(
    browser: TestClient[Any], hr: TenantUnderTest
) -> None:
    empty = browser.get("/role-profiles", headers=BROWSER)
    assert empty.status_code == 200
    assert 'aria-current="page">Role profiles</a>' in empty.text

    profile = {
        "key": "platform-l3",
        "name": "Platform engineer L3",
        "description": "Ships services.",
        "targets": "python: 3\nsql: 2",
    }
    shown = follow(browser, send(browser, "/role-profiles", profile, "/role-profiles/new"))
    assert "<h1>Platform engineer L3</h1>" in shown.text
    assert "<code>python</code></td><td>3</td>" in shown.text

    again = send(browser, "/role-profiles", profile, "/role-profiles/new")
    assert again.status_code == 422
    assert "Another role profile already has this key." in again.text
    bad = send(
        browser,
        "/role-profiles",
        {**profile, "key": "b2", "targets": "python"},
        "/role-profiles/new",
    )
    assert bad.status_code == 422
    assert 'id="f-targets-error"' in bad.text
    assert 'value="b2"' in bad.text

    page = "/role-profiles/platform-l3"
    version = version_of(shown.text, page)
    revised = send(
        browser,
        page,
        {**profile, "targets": "python: 4\nsql: 2", "version": version},
        page,
    )
    shown = follow(browser, revised)
    assert "<code>python</code></td><td>4</td>" in shown.text
    assert "Revision 2: Platform engineer L3" in shown.text
    assert "Revision 1: Platform engineer L3" in shown.text
    assert "python at level 3" in shown.text  # revision 1 as it was

    # The form at the old version: someone changed it since.
    stale = send(browser, page, {**profile, "version": version}, page)
    assert stale.status_code in (409, 412)

    retired = follow(browser, send(browser, f"{page}/retire", {}, page))
    assert "Save a new revision" not in retired.text
    listed = browser.get("/role-profiles", headers=BROWSER)
    assert "Platform engineer L3" not in listed.text
    every = browser.get("/role-profiles?retired=true", headers=BROWSER)
    assert "Platform engineer L3" in every.text


def test_a_form_without_its_token_is_refused(browser: TestClient[Any], hr: TenantUnderTest) -> None:
    refused = browser.post(
        "/curricula", data={"title": "No token"}, headers=BROWSER, follow_redirects=False
    )
    assert refused.status_code == 403
    assert "The form had expired." in refused.text
    refused = browser.post(
        "/role-profiles", data={"key": "k"}, headers=BROWSER, follow_redirects=False
    )
    assert refused.status_code == 403


def test_an_engineer_reads_but_every_change_is_refused(
    browser: TestClient[Any], services: Services
) -> None:
    tenant = TenantUnderTest(browser, services)
    sign_in_as(browser, services, tenant, "hr_manager")
    curriculum_id = create_curriculum(browser)
    page = f"/curricula/{curriculum_id}"
    follow(browser, add(browser, curriculum_id, module("intro")))
    follow(browser, send(browser, f"{page}/publish", {}, page))
    follow(
        browser,
        send(
            browser,
            "/role-profiles",
            {"key": "r1", "name": "R1", "targets": "python: 2"},
            "/role-profiles/new",
        ),
    )

    sign_in_as(browser, services, tenant, "engineer")
    read = browser.get(page, headers=BROWSER)
    assert read.status_code == 200
    assert "Add a module" not in read.text
    assert "Publish the draft" not in read.text
    assert 'href="/curricula"' not in read.text.split("<main")[0]  # not in the engineer's nav
    assert browser.get("/role-profiles/r1", headers=BROWSER).status_code == 200
    for path in ("/curricula/new", f"{page}/modules/intro", "/role-profiles/new"):
        assert browser.get(path, headers=BROWSER).status_code == 403, path
    token = csrf_token(browser, "/curricula")
    changes = {
        "/curricula": {"title": "Mine"},
        f"{page}/modules": module("more"),
        f"{page}/modules/intro": module("intro", title="Changed"),
        f"{page}/modules/intro/remove": {},
        f"{page}/publish": {},
        f"{page}/retire": {"reason": "Old"},
        f"{page}/fork": {"version": "1"},
        "/role-profiles": {"key": "r2", "name": "R2", "targets": "python: 2"},
        "/role-profiles/r1": {"name": "R1", "targets": "python: 3"},
        "/role-profiles/r1/retire": {},
    }
    for path, form in changes.items():
        answer = browser.post(
            path, data={**form, "_csrf_token": token}, headers=BROWSER, follow_redirects=False
        )
        assert answer.status_code == 403, f"{path}: {answer.status_code}"
        assert "Your role does not allow this." in answer.text


def test_another_companys_curriculum_is_not_found(
    browser: TestClient[Any], services: Services
) -> None:
    other = TenantUnderTest(browser, services)
    sign_in_as(browser, services, other, "hr_manager")
    theirs = create_curriculum(browser, "Theirs")

    mine = TenantUnderTest(browser, services)
    sign_in_as(browser, services, mine, "hr_manager")
    page = f"/curricula/{theirs}"
    assert browser.get(page, headers=BROWSER).status_code == 404
    assert browser.get(f"{page}/diff?from=1&to=1", headers=BROWSER).status_code == 404
    refused = send(browser, f"{page}/modules", module("intro"), "/curricula")
    assert refused.status_code == 404
    retired = send(browser, f"{page}/retire", {"reason": "Mine now"}, "/curricula")
    assert retired.status_code == 404
