"""The web app in a real browser: ``training serve`` with the demo tenant, driven through
Debian's Chromium by Playwright, as a person would use it.

One server and one browser serve the whole run; each test gets pages in browser contexts of
its own (own cookies, own locale), closed after it. Chromium is Debian's ``/usr/bin/chromium``
(``scripts/test`` installs it); Playwright's own browser download is never used. The flags
keep Chromium from calling out to the network, which on a closed machine it would try at
every start and fail.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.conftest import TEST_SECRET_KEY
from tests.e2e.test_serve import Server, demo_credentials, environment, free_port, token_for
from tests.waiting import wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 375, "height": 812},
    "is_mobile": True,
    "has_touch": True,
}
DEFAULT_LOCALE = "en-US"
SCREENSHOTS = Path(__file__).parent / "screenshots"
# axe's impacts are minor, moderate, serious and critical; the last two fail a test.
FAILING_IMPACTS = frozenset({"serious", "critical"})
READY_TIMEOUT = 90.0
# A deadline for a page to show what a test expects, not a measurement: generous, for a
# loaded two-core machine running the rest of the suite.
expect.set_options(timeout=15_000)


@dataclass(frozen=True)
class DemoService:
    """``training serve`` as the quickstart runs it: development, the demo tenant loaded."""

    base_url: str
    data_dir: Path

    def api(self, path: str) -> httpx.Response:
        """``GET path`` of the API as the demo tenant's own client (every scope): what the
        pages show, read the other way."""
        issued = token_for(self.base_url, demo_credentials(self.data_dir))
        assert issued.status_code == 200, issued.text
        token = issued.json()["access_token"]
        return httpx.get(
            f"{self.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


@pytest.fixture(scope="package")
def live_server() -> Iterator[DemoService]:
    """``training serve`` in development with the demo tenant, on a free port of 127.0.0.1,
    its embedded database in a temporary directory; ready once ``/readyz`` says so and every
    view has caught up with the demo's events."""
    data_dir = Path(tempfile.mkdtemp(prefix="training-browser-"))
    env = environment(
        data_dir,
        free_port(),
        TRAINING_ENV="development",
        TRAINING_HOST="127.0.0.1",
        TRAINING_SECRET_KEY=TEST_SECRET_KEY,
        # Every page, stylesheet and form post of a run comes from the one address; the
        # limits have tests of their own.
        TRAINING_RATE_LIMIT="1000000/60",
        TRAINING_RATE_LIMIT_ANONYMOUS="1000000/60",
    )
    server = Server(env)
    try:
        server.wait_ready(timeout=READY_TIMEOUT)
        wait_until(lambda: _caught_up(server), READY_TIMEOUT, f"{server.base}/readyz")
        yield DemoService(server.base, data_dir)
    finally:
        status = server.interrupt()
        shutil.rmtree(data_dir, ignore_errors=True)
    assert status == 0, f"training serve ended with {status}:\n{server.banner}"


def _caught_up(server: Server) -> bool:
    assert server.process.poll() is None, "training serve stopped while starting"
    try:
        answer = httpx.get(f"{server.base}/readyz", timeout=5)
    except httpx.HTTPError:
        return False
    if answer.status_code != 200:
        return False
    readiness = answer.json()
    return readiness["status"] == "ready" and all(
        view["lag"] == 0 for view in readiness["projections"]
    )


# Package-scoped, not session-scoped: Playwright's synchronous driver keeps an event loop
# running in the main thread while it is open, so it must be closed before the suites after
# this package (which start event loops of their own) run.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless. Missing, it fails the run: ``scripts/test`` installs it,
    and a browser test is never skipped."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/test installs Debian's chromium"
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
    )
    yield launched
    launched.close()


class Pages:
    """Opens pages for one test, each in a new browser context, and closes them after it."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []

    def open(self, *, phone: bool = False, locale: str = DEFAULT_LOCALE) -> Page:
        """A page at desktop size (1280x800), or a phone's (375x812, mobile); ``locale``
        (for example ``zh-CN``) is the browser's language, sent as Accept-Language."""
        return self.context(phone=phone, locale=locale).new_page()

    def context(
        self, *, phone: bool = False, locale: str = DEFAULT_LOCALE, **options: Any
    ) -> BrowserContext:
        context = self.browser.new_context(
            base_url=self.base_url, locale=locale, **(PHONE if phone else DESKTOP), **options
        )
        self.contexts.append(context)
        return context

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


@pytest.fixture
def pages(browser: Browser, live_server: DemoService) -> Iterator[Pages]:
    opened = Pages(browser, live_server.base_url)
    yield opened
    opened.close()


@pytest.fixture
def page(pages: Pages) -> Page:
    """A page at desktop size in English, in a browser context of its own; ``page.goto("/")``
    opens the live server's home page."""
    return pages.open()


def check_accessibility(page: Page) -> None:
    """Runs axe on the page as it is now and fails the test with every violation whose impact
    is serious or critical."""
    results = Axe().run(page)
    failing = [v for v in results.response["violations"] if v["impact"] in FAILING_IMPACTS]
    if failing:
        described = "\n".join(_described(violation) for violation in failing)
        pytest.fail(f"accessibility violations on {page.url}:\n{described}", pytrace=False)


def _described(violation: dict[str, Any]) -> str:
    lines = [f"- {violation['id']} ({violation['impact']}): {violation['help']}"]
    for node in violation["nodes"]:
        target = " ".join(str(part) for part in node["target"])
        summary = " ".join(str(node.get("failureSummary", "")).split())
        lines.append(f"    {target}: {summary}")
    return "\n".join(lines)


def screenshot(page: Page, name: str) -> None:
    """Writes ``screenshots/<name>-desktop.png`` and ``<name>-phone.png``, whole pages: the
    page's URL loaded again at each size in a new context with the page's cookies and
    language, so the page the test holds is left as it was."""
    SCREENSHOTS.mkdir(exist_ok=True)
    language = str(page.evaluate("() => navigator.language"))
    cookies = page.context.storage_state()
    browser = page.context.browser
    assert browser is not None
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(locale=language, storage_state=cookies, **size)
        try:
            shot = context.new_page()
            shot.goto(page.url)
            shot.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
        finally:
            context.close()
