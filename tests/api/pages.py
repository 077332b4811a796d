"""What the tests of pages share: a browser's headers, a client of an app with other
settings, a signed-in session and a form's CSRF token."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar.testing import TestClient

from tests.conftest import TEST_ISSUER
from training.app import create_app
from training.bootstrap import Services
from training.identity.handlers.sso import SESSION_COOKIE, SESSION_PURPOSE, SESSION_TTL
from training.identity.sign_in import runtime_of

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')


def browser_for(services: Services, **settings: Any) -> TestClient[Any]:
    """A client of an app built with other settings on the module's services, used without
    ``with`` (no lifespan: the services' pools belong to the module's ``browser``, on its
    event loop). Its rate limits are this process's own buckets, as an app built without
    the shared store has: a draw from the shared pool would run on another loop."""
    changed = dataclasses.replace(
        services,
        settings=dataclasses.replace(services.settings, **settings),
        rate_limits=None,  # type: ignore[arg-type]
    )
    return TestClient(app=create_app(changed), base_url=TEST_ISSUER)


@contextmanager
def page_client(services: Services) -> Iterator[TestClient[Any]]:
    """A client of the app with its lifespan: a module's one app on its services."""
    with TestClient(app=create_app(services), base_url=TEST_ISSUER) as client:
        yield client


def signed_in(
    client: TestClient[Any], services: Services, tenant_id: uuid.UUID, member_id: str
) -> None:
    """The session cookie a sign-in gives (single sign-on and the demo's sign-in seal it so)."""
    runtime = runtime_of(client.app.state, services.settings)
    sealed = runtime.cookies.seal(
        SESSION_PURPOSE, {"member_id": member_id, "tenant_id": str(tenant_id)}, SESSION_TTL
    )
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, sealed, domain="training.test", path="/")


def csrf_token(client: TestClient[Any], path: str = "/sign-in") -> str:
    page = client.get(path, headers=BROWSER)
    assert page.status_code == 200, page.text
    found = CSRF_FIELD.search(page.text)
    assert found, page.text
    return found.group(1)
