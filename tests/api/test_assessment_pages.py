"""Taking an assessment in the browser's pages: one item at a time, never its key, the time
left from the server, a result with its uncertainty, and no item answered twice by going
back."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.pages import BROWSER, csrf_token, page_client, signed_in
from tests.helpers import TenantUnderTest
from training.assessments.queries import starter_bank
from training.bootstrap import Services

ITEM = re.compile(r'name="item_id" value="([^"]+)"')
OPTION = re.compile(r'name="answer" value="([^"]+)"')
ORDER = re.compile(r'name="(order-[^"]+)"[^>]*value="(\d+)"')


@pytest.fixture(scope="module")
def browser(services: Services) -> Iterator[TestClient[Any]]:
    with page_client(services) as client:
        yield client


@pytest.fixture
def engineer(browser: TestClient[Any], services: Services) -> tuple[TenantUnderTest, str]:
    tenant = TenantUnderTest(browser, services)
    person = tenant.add(f"AE{uuid.uuid4().hex[:6]}").json()
    signed_in(browser, services, tenant.tenant_id, person["member_id"])
    return tenant, person["member_id"]


def start(browser: TestClient[Any], skill: str) -> str:
    token = csrf_token(browser, "/assessments")
    started = browser.post(
        "/assessments",
        data={"skill": skill, "_csrf_token": token},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    return str(started.headers["location"])


def answer_form(page: str, token: str) -> dict[str, Any]:
    """The first option (or the order shown) of the item on ``page``."""
    form: dict[str, Any] = {"_csrf_token": token, "item_id": ITEM.findall(page)[0]}
    order = ORDER.findall(page)
    if order:
        form.update(dict(order))
    else:
        form["answer"] = OPTION.findall(page)[0]
    return form


BLOCK = re.compile(r'<div class="option">(.*?)</div>', re.S)


def option_shapes(page: str) -> list[str]:
    """Each option's markup with its own id, value and text taken out."""
    shapes = [
        re.sub(r'(id|for|value|name)="[^"]*"|>[^<]*</label>', "", block).strip()
        for block in BLOCK.findall(page)
    ]
    assert shapes, page
    return shapes


def test_an_engineer_takes_an_assessment_to_its_result(
    browser: TestClient[Any], engineer: tuple[TenantUnderTest, str]
) -> None:
    listed = browser.get("/assessments", headers=BROWSER)
    assert listed.status_code == 200
    for skill in starter_bank().skills:
        assert f'name="skill" value="{skill}"' in listed.text
    attempt = start(browser, "git")
    token = csrf_token(browser, attempt)
    keys = {item.item_id: item.answer for item, _ in starter_bank().items["git"].values()}
    seen: list[str] = []
    page = browser.get(attempt, headers=BROWSER).text
    while ITEM.search(page):
        item_id = ITEM.findall(page)[0]
        seen.append(item_id)
        assert re.search(r"\d+ seconds left to answer", page)
        # Nothing on the page tells the right options from the others: every option is
        # written alike but for its id, text and place.
        assert "correct" not in page.lower()
        assert len(set(option_shapes(page))) == 1
        answered = browser.post(
            f"{attempt}/answers",
            data=answer_form(page, token),
            headers=BROWSER,
            follow_redirects=False,
        )
        assert answered.status_code == 303, answered.text
        page = browser.get(attempt, headers=BROWSER).text
        assert len(seen) <= 25
    assert set(seen) <= set(keys)
    assert 8 <= len(seen) <= 25
    assert re.search(r'<p class="level">Level [1-7]</p>', page)
    assert "Likely between level" in page or "The estimate is precise" in page
    assert f"Based on {len(seen)} questions." in page
    history = browser.get("/assessments", headers=BROWSER).text
    assert attempt.removeprefix("http://training.test") in history or attempt in history


def test_going_back_and_sending_an_answered_item_again_changes_nothing(
    browser: TestClient[Any], engineer: tuple[TenantUnderTest, str]
) -> None:
    attempt = start(browser, "sql")
    token = csrf_token(browser, attempt)
    first = browser.get(attempt, headers=BROWSER).text
    form = answer_form(first, token)
    assert (
        browser.post(
            f"{attempt}/answers", data=form, headers=BROWSER, follow_redirects=False
        ).status_code
        == 303
    )
    second = browser.get(attempt, headers=BROWSER).text
    # The back button's form, sent again: the attempt stays on its next item.
    again = browser.post(f"{attempt}/answers", data=form, headers=BROWSER, follow_redirects=False)
    assert again.status_code == 303
    assert ITEM.findall(browser.get(attempt, headers=BROWSER).text) == ITEM.findall(second)
    assert "Question 2" in second


def test_another_persons_attempt_is_not_found(
    browser: TestClient[Any], services: Services, engineer: tuple[TenantUnderTest, str]
) -> None:
    tenant, _ = engineer
    attempt = start(browser, "python")
    other = tenant.add(f"AO{uuid.uuid4().hex[:6]}").json()
    signed_in(browser, services, tenant.tenant_id, other["member_id"])
    shown = browser.get(attempt, headers=BROWSER)
    assert shown.status_code == 404
    assert shown.headers["content-type"].startswith("text/html")
    token = csrf_token(browser, "/assessments")
    sent = browser.post(
        f"{attempt}/answers",
        data={"_csrf_token": token, "item_id": "python-001", "answer": "a"},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert sent.status_code == 404


def test_an_unknown_skill_is_a_page_that_says_so(
    browser: TestClient[Any], engineer: tuple[TenantUnderTest, str]
) -> None:
    token = csrf_token(browser, "/assessments")
    refused = browser.post(
        "/assessments",
        data={"skill": "cobol", "_csrf_token": token},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert 400 <= refused.status_code < 500
    assert refused.headers["content-type"].startswith("text/html")
    assert "cobol" in refused.text


def test_an_engineer_starts_every_assessment_of_a_role_profile(
    browser: TestClient[Any], engineer: tuple[TenantUnderTest, str]
) -> None:
    tenant, _ = engineer
    profile = {
        "key": f"battery-{uuid.uuid4().hex[:6]}",
        "name": "Data <Engineer>",
        "targets": [
            {"skill": "sql", "level": 3},
            {"skill": "python", "level": 3},
            {"skill": "data-modelling", "level": 2},
        ],
    }
    defined = browser.post("/v1/role-profiles", json=profile, headers=tenant.headers())
    assert defined.status_code == 201, defined.text
    listed = browser.get("/assessments", headers=BROWSER).text
    assert f'value="{profile["key"]}"' in listed
    token = csrf_token(browser, "/assessments")
    started = browser.post(
        "/assessments/battery",
        data={"role_profile_key": profile["key"], "_csrf_token": token},
        headers=BROWSER,
    )
    assert started.status_code == 200, started.text
    assert "Data &lt;Engineer&gt;" in started.text
    assert started.text.count('href="/assessments/') >= 2  # sql and python have items
    assert "Not started" in started.text  # data modelling has none, said with its reason
    unknown = browser.post(
        "/assessments/battery",
        data={"role_profile_key": "nobody", "_csrf_token": token},
        headers=BROWSER,
    )
    assert unknown.status_code == 422
