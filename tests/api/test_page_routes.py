"""Every page route, walked as each kind of visitor: never a 500, never a stack trace, never
JSON; a visitor without a session is sent to sign in; a form without its CSRF token is
refused; a form with its token and nothing in it is a page saying what is wrong.

The routes are read from the app, so a new page is walked without being listed here."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from tests.api.pages import BROWSER, csrf_token, page_client, signed_in
from tests.helpers import TenantUnderTest
from training.bootstrap import Services
from training.core.web.pages import API_PREFIXES

ROLES = {
    "engineer": ["engineer"],
    "manager": ["engineer", "manager"],
    "hr_manager": ["hr_manager"],
    "tenant_admin": ["tenant_admin"],
}
PARAMETER = re.compile(r"\{([a-z_]+):([a-z]+)\}")


def page_routes(app: Litestar, method: str) -> list[str]:
    """The paths of the app's pages answering ``method``, parameters filled with values that
    name nothing (a random id)."""
    paths = set()
    for route in app.routes:
        if route.path.startswith((*API_PREFIXES, "/static")):
            continue
        if method not in getattr(route, "methods", set()):
            continue
        paths.add(
            PARAMETER.sub(lambda m: str(uuid.uuid4()) if m.group(2) == "uuid" else "x", route.path)
        )
    return sorted(paths)


@pytest.fixture(scope="module")
def browser(services: Services) -> Iterator[TestClient[Any]]:
    with page_client(services) as client:
        yield client


@pytest.fixture(scope="module")
def people(browser: TestClient[Any], services: Services) -> tuple[TenantUnderTest, dict[str, str]]:
    tenant = TenantUnderTest(browser, services)
    members = {
        role: tenant.add(f"W{role[:3].upper()}{uuid.uuid4().hex[:6]}", roles=roles).json()[
            "member_id"
        ]
        for role, roles in ROLES.items()
    }
    return tenant, members


def assert_a_page(answer: Any, path: str) -> None:
    assert answer.status_code < 500, f"{path}: {answer.status_code} {answer.text[:300]}"
    if answer.status_code not in (301, 302, 303, 307):
        assert answer.headers["content-type"].startswith("text/html"), f"{path}: {answer.headers}"
        assert "Traceback" not in answer.text


def test_without_a_session_every_page_sends_to_sign_in_or_is_public(
    browser: TestClient[Any],
) -> None:
    browser.cookies.clear()
    for path in page_routes(browser.app, "GET"):
        answer = browser.get(path, headers=BROWSER, follow_redirects=False)
        assert_a_page(answer, path)
        if answer.status_code == 303:
            assert answer.headers["location"].startswith("/sign-in?next="), path
        else:
            # The sign-in pages (422: the single sign-on form sent without a company); the
            # demo's sign-in exists only in development.
            assert answer.status_code in (200, 404, 422), path


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_page_as_each_role_is_a_page(
    browser: TestClient[Any],
    services: Services,
    people: tuple[TenantUnderTest, dict[str, str]],
    role: str,
) -> None:
    tenant, members = people
    signed_in(browser, services, tenant.tenant_id, members[role])
    for path in page_routes(browser.app, "GET"):
        answer = browser.get(path, headers=BROWSER, follow_redirects=False)
        assert_a_page(answer, path)
        assert answer.status_code in (200, 303, 400, 403, 404, 422), f"{path}: {answer.status_code}"


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_form_refuses_a_post_without_its_token_and_an_empty_one_with_it(
    browser: TestClient[Any],
    services: Services,
    people: tuple[TenantUnderTest, dict[str, str]],
    role: str,
) -> None:
    tenant, members = people
    signed_in(browser, services, tenant.tenant_id, members[role])
    token = csrf_token(browser)
    for path in page_routes(browser.app, "POST"):
        if path == "/sign-out":
            continue  # would end the session the walk uses; tested on its own
        refused = browser.post(path, data={"x": "1"}, headers=BROWSER, follow_redirects=False)
        assert refused.status_code == 403, f"{path}: {refused.status_code}"
        assert_a_page(refused, path)
        empty = browser.post(
            path, data={"_csrf_token": token}, headers=BROWSER, follow_redirects=False
        )
        assert_a_page(empty, path)
        # 200: a form with no fields of its own (a new calendar link, shown once).
        assert empty.status_code in (200, 303, 400, 403, 404, 422), (
            f"{path}: {empty.status_code} {empty.text[:300]}"
        )
