"""Single sign-on in Chromium against a real OpenID Connect provider (the test provider on
this machine): the person asks for a page, signs in at the company's provider and lands on
that page, signed in."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from oidc_provider_mock import run_server_in_thread
from playwright.sync_api import Page, expect

from tests.browser.conftest import DemoService, check_accessibility
from tests.e2e.test_serve import demo_credentials, token_for
from training.demo.world import DEMO_SLUG

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def identity_provider() -> Iterator[str]:
    with run_server_in_thread(port=0) as server:
        yield f"http://localhost:{server.server_port}"


def demo_engineer_email(live_server: DemoService) -> str:
    """An engineer of the demo company, as its people list shows them."""
    issued = token_for(live_server.base_url, demo_credentials(live_server.data_dir))
    token = issued.json()["access_token"]
    listed = httpx.get(
        f"{live_server.base_url}/v1/members",
        params={"role": "engineer", "limit": 1},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert listed.status_code == 200, listed.text
    return str(listed.json()["items"][0]["email"])


def configure_single_sign_on(live_server: DemoService, issuer: str) -> None:
    issued = token_for(live_server.base_url, demo_credentials(live_server.data_dir))
    token = issued.json()["access_token"]
    body = {
        "issuer": issuer,
        "client_id": "training-demo",
        "client_secret": "demo-secret",
        "allowed_domains": ["acme.example"],
    }
    answer = httpx.put(
        f"{live_server.base_url}/v1/sso",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def test_a_person_signs_in_with_the_company_provider_and_lands_where_they_were_going(
    page: Page, live_server: DemoService, identity_provider: str
) -> None:
    configure_single_sign_on(live_server, identity_provider)
    email = demo_engineer_email(live_server)
    page.goto("/assessments")
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    page.get_by_label("Your company's sign-in name").fill(DEMO_SLUG)
    page.get_by_role("button", name="Continue with single sign-on").click()
    # The provider's own page: who signs in.
    page.wait_for_url(f"{identity_provider}/**")
    page.locator('input[name="sub"]').first.fill(email)
    page.get_by_role("button", name="Authorize").click()
    # Back on the page asked for, signed in.
    page.wait_for_url(f"{live_server.base_url}/assessments")
    expect(page.get_by_role("heading", level=1, name="Assessments")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    check_accessibility(page)
