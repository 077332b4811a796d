"""The tenant administrator's pages: single sign-on (saved with the API's rules, its secret
never shown), the URLs to give the identity provider, SCIM set-up, and the audit log with
its filters and CSV export."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.pages import BROWSER, csrf_token, page_client, signed_in
from tests.conftest import TEST_ISSUER
from tests.helpers import TenantUnderTest
from training.bootstrap import Services
from training.identity.sign_in import runtime_of
from training.infra.outbound import OutboundPolicy


@pytest.fixture(scope="module")
def browser(services: Services) -> Iterator[TestClient[Any]]:
    with page_client(services) as client:
        # Identity providers on this machine, over plain HTTP: what the development policy
        # allows (as in the single sign-on tests).
        runtime_of(client.app.state, services.settings).providers.policy = OutboundPolicy(
            development=True
        )
        yield client


@pytest.fixture(scope="module")
def company(browser: TestClient[Any], services: Services) -> tuple[TenantUnderTest, str, str]:
    tenant = TenantUnderTest(browser, services)
    admin = tenant.add(f"AD{uuid.uuid4().hex[:6]}", roles=["tenant_admin"]).json()["member_id"]
    engineer = tenant.add(f"AE{uuid.uuid4().hex[:6]}").json()["member_id"]
    return tenant, admin, engineer


def sso_form(token: str, **fields: str) -> dict[str, str]:
    return {
        "_csrf_token": token,
        "issuer": "http://localhost:8999",
        "client_id": "training-web",
        "client_secret": "s3cret-value",
        "allowed_domains": "example.com\nexample.org",
        "group_roles": "training-hr: hr_manager\ntraining-admins: tenant_admin, hr_manager",
        **fields,
    }


def test_the_admin_configures_single_sign_on_and_sees_what_to_give_the_provider(
    browser: TestClient[Any], services: Services, company: tuple[TenantUnderTest, str, str]
) -> None:
    tenant, admin, _ = company
    signed_in(browser, services, tenant.tenant_id, admin)
    page = browser.get("/admin/sign-in", headers=BROWSER)
    assert page.status_code == 200, page.text
    assert "Single sign-on is not configured yet." in page.text
    assert f"{TEST_ISSUER}/auth/" in page.text
    assert "/callback" in page.text
    assert f"{TEST_ISSUER}/scim/v2" in page.text
    saved = browser.post(
        "/admin/sign-in",
        data=sso_form(csrf_token(browser, "/admin/sign-in")),
        headers=BROWSER,
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    shown = browser.get(saved.headers["location"], headers=BROWSER).text
    assert "Single sign-on is saved." in shown
    assert "Single sign-on is configured." in shown
    assert "http://localhost:8999" in shown
    assert "training-hr: hr_manager" in shown
    assert "s3cret-value" not in shown
    # The API reads the same connection.
    api = browser.get("/v1/sso", headers=tenant.headers()).json()
    assert api["allowed_domains"] == ["example.com", "example.org"]
    assert sorted(api["group_roles"]["training-admins"]) == ["hr_manager", "tenant_admin"]


def test_a_refused_configuration_keeps_what_was_typed_and_says_why_beside_the_field(
    browser: TestClient[Any], services: Services, company: tuple[TenantUnderTest, str, str]
) -> None:
    tenant, admin, _ = company
    signed_in(browser, services, tenant.tenant_id, admin)
    token = csrf_token(browser, "/admin/sign-in")
    refused = browser.post(
        "/admin/sign-in",
        data=sso_form(token, issuer="ftp://nowhere", client_id="kept-<id>"),
        headers=BROWSER,
        follow_redirects=False,
    )
    assert refused.status_code == 422
    assert 'id="issuer-problem"' in refused.text
    assert 'value="ftp://nowhere"' in refused.text
    assert 'value="kept-&lt;id&gt;"' in refused.text
    unknown_role = browser.post(
        "/admin/sign-in",
        data=sso_form(token, group_roles="g: pope"),
        headers=BROWSER,
        follow_redirects=False,
    )
    assert unknown_role.status_code == 422
    assert "g: pope" in unknown_role.text


def test_the_audit_log_filters_pages_and_exports(
    browser: TestClient[Any], services: Services, company: tuple[TenantUnderTest, str, str]
) -> None:
    tenant, admin, _ = company
    signed_in(browser, services, tenant.tenant_id, admin)
    page = browser.get(
        "/admin/audit", params={"type": "training.people:Member.Registered"}, headers=BROWSER
    )
    assert page.status_code == 200, page.text
    assert page.text.count("training.people:Member.Registered") >= 2
    export = (
        page.text.split('href="/v1/audit/export.csv?', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    )
    csv = browser.get(f"/v1/audit/export.csv?{export}")
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert "training.people:Member.Registered" in csv.text
    assert (
        "training.people:Member.Registered"
        not in browser.get("/admin/audit", params={"type": "nothing"}, headers=BROWSER)
        .text.split("<main", 1)[1]
        .split("</form>", 1)[1]
    )
    bad_day = browser.get("/admin/audit", params={"from": "2026-13-45"}, headers=BROWSER)
    assert bad_day.status_code == 400
    assert bad_day.headers["content-type"].startswith("text/html")


def test_an_engineer_gets_the_refusal_page_on_every_admin_page(
    browser: TestClient[Any], services: Services, company: tuple[TenantUnderTest, str, str]
) -> None:
    tenant, _, engineer = company
    signed_in(browser, services, tenant.tenant_id, engineer)
    for path in ("/admin/sign-in", "/admin/audit"):
        refused = browser.get(path, headers=BROWSER)
        assert refused.status_code == 403, path
        assert refused.headers["content-type"].startswith("text/html")
    token = csrf_token(browser, "/")
    assert browser.post("/admin/sign-in", data=sso_form(token), headers=BROWSER).status_code == 403


def test_the_training_policy_is_changed_within_its_bounds(
    browser: TestClient[Any], services: Services, company: tuple[TenantUnderTest, str, str]
) -> None:
    tenant, admin, _ = company
    signed_in(browser, services, tenant.tenant_id, admin)
    page = browser.get("/admin/policy", headers=BROWSER)
    assert 'name="at_risk_threshold"' in page.text
    token = csrf_token(browser, "/admin/policy")
    refused = browser.post(
        "/admin/policy",
        data={"_csrf_token": token, "at_risk_threshold": "101", "retake_cooldown_days": "7"},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert refused.status_code == 422
    assert 'value="101"' in refused.text
    assert (
        browser.get("/v1/training-policy", headers=tenant.headers()).json()["at_risk_threshold"]
        == 20
    )
    saved = browser.post(
        "/admin/policy",
        data={"_csrf_token": token, "at_risk_threshold": "35", "retake_cooldown_days": "7"},
        headers=BROWSER,
        follow_redirects=False,
    )
    assert saved.status_code == 303
    shown = browser.get(saved.headers["location"], headers=BROWSER).text
    assert 'value="35"' in shown
    assert "The training policy is saved." in shown
