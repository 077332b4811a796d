"""Markup stored in every free-text field a page can show, then every page walked as each
role: the markup comes back escaped everywhere, never as markup.

The free text is set through the API (names, team, title, a curriculum's and its modules'
titles, a cohort's name and its session's title, a review's strengths, an amendment's
reason, a skipped module's reason); the page routes are read from the app, and a route's
path parameters are filled with the ids of what was stored, so a new page is walked too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.api.pages import BROWSER, page_client, signed_in
from tests.api.test_page_routes import PARAMETER
from tests.api.test_reviews_tracks import ensure_catalogue, review_body, wait_for_track
from tests.helpers import TenantUnderTest, bearer, member_token
from training.bootstrap import Services
from training.core.web.pages import API_PREFIXES

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;"


@pytest.fixture(scope="module")
def browser(services: Services) -> Iterator[TestClient[Any]]:
    with page_client(services) as client:
        yield client


class Stored:
    """A tenant whose every free-text field holds markup, and the ids to walk its pages."""

    def __init__(self, browser: TestClient[Any], services: Services) -> None:
        ensure_catalogue(services)
        self.tenant = TenantUnderTest(browser, services)
        self.http = browser
        headers = self.tenant.headers()

        def person(label: str, roles: list[str], **fields: Any) -> str:
            answer = self.tenant.add(
                f"X{label}{uuid.uuid4().hex[:6]}",
                roles=roles,
                display_name=f"{HOSTILE} {label}",
                team=f"{HOSTILE} team",
                job_title=f"{HOSTILE} title",
                **fields,
            )
            assert answer.status_code == 201, answer.text
            return str(answer.json()["member_id"])

        self.manager = person("manager", ["engineer", "manager"])
        self.engineer = person("engineer", ["engineer"], manager_id=self.manager)
        self.hr = person("hr", ["hr_manager"])
        self.admin = person("admin", ["tenant_admin"])
        # A curriculum and a cohort of it, both named with markup, the engineer enrolled.
        curriculum = self._ok(
            browser.post("/v1/curricula", json={"title": HOSTILE}, headers=headers)
        )
        curriculum_id = curriculum["curriculum_id"]
        module = {
            "key": "m1",
            "title": f"{HOSTILE} module",
            "format": "lab",
            "duration_minutes": 60,
        }
        self._ok(
            browser.post(f"/v1/curricula/{curriculum_id}/modules", json=module, headers=headers)
        )
        version = self._ok(
            browser.post(f"/v1/curricula/{curriculum_id}/publish", json={}, headers=headers)
        )["version"]
        cohort = {
            "name": HOSTILE,
            "curriculum_id": curriculum_id,
            "curriculum_version": version,
            "starts_on": "2030-01-07",
            "ends_on": "2030-03-29",
            "timezone": "Europe/Berlin",
            "capacity": 5,
        }
        self.cohort = self._ok(browser.post("/v1/cohorts", json=cohort, headers=headers))[
            "cohort_id"
        ]
        enrolled = browser.post(
            f"/v1/cohorts/{self.cohort}/enrolments",
            json={"member_ids": [self.engineer]},
            headers=headers,
        )
        assert enrolled.status_code == 200, enrolled.text
        session = {
            "title": HOSTILE,
            "starts_at": "2030-03-04T09:00:00+01:00",
            "duration_minutes": 60,
            "join_url": "https://meet.example/kick-off",
        }
        self._ok(browser.post(f"/v1/cohorts/{self.cohort}/sessions", json=session, headers=headers))
        # A finalised review with markup in its strengths, amended with a reason in markup.
        body = review_body(self.engineer, strengths=[HOSTILE], finalise=True)
        self.review = self._ok(browser.post("/v1/reviews", json=body, headers=headers))["review_id"]
        own = bearer(member_token(services, self.tenant.tenant_id, uuid.UUID(self.engineer)))
        # The enrolment and the review each re-plan: the review's plan has modules.
        plan = 1
        while not (track := wait_for_track(browser, "/v1/me/track", own, plan))["modules"]:
            plan = track["plan_version"] + 1
        first = track["modules"][0]
        skipped = browser.post(
            "/v1/me/track/progress",
            json={
                "curriculum_id": first["curriculum_id"],
                "key": first["key"],
                "state": "skipped",
                "reason": HOSTILE,
            },
            headers=own,
        )
        assert skipped.status_code == 200, skipped.text
        amendment = {"ratings": [], "overall_rating": 4, "reason": HOSTILE}
        self._ok(
            browser.post(f"/v1/reviews/{self.review}/amendments", json=amendment, headers=headers)
        )
        attempt = browser.post("/v1/assessments", json={"skill": "git"}, headers=own)
        assert attempt.status_code == 201, attempt.text
        self.attempt = attempt.json()["attempt_id"]
        self.ids = {
            "member_id": self.engineer,
            "cohort_id": self.cohort,
            "review_id": self.review,
            "attempt_id": self.attempt,
            "curriculum_id": curriculum_id,
        }

    @staticmethod
    def _ok(answer: Any) -> dict[str, Any]:
        assert answer.status_code in (200, 201), answer.text
        return dict(answer.json())

    def paths(self) -> list[str]:
        """Every page answering GET, its parameters filled with stored ids (or a random id:
        the page then says it found nothing, which must not show markup either)."""
        found = set()
        for route in self.http.app.routes:
            if route.path.startswith((*API_PREFIXES, "/static")) or "GET" not in route.methods:
                continue
            found.add(
                PARAMETER.sub(
                    lambda m: (
                        self.ids.get(m.group(1), str(uuid.uuid4())) if m.group(2) == "uuid" else "x"
                    ),
                    route.path,
                )
            )
        return sorted(found)


@pytest.fixture(scope="module")
def stored(browser: TestClient[Any], services: Services) -> Stored:
    return Stored(browser, services)


@pytest.mark.parametrize("role", ["engineer", "manager", "hr", "admin"])
def test_markup_in_every_field_is_shown_escaped_on_every_page(
    browser: TestClient[Any], services: Services, stored: Stored, role: str
) -> None:
    signed_in(browser, services, stored.tenant.tenant_id, getattr(stored, role))
    shown = []
    for path in stored.paths():
        answer = browser.get(path, headers=BROWSER, follow_redirects=False)
        assert answer.status_code < 500, f"{path}: {answer.status_code}"
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        assert "<script>alert" not in answer.text, f"{path} shows the stored markup"
        assert "<img src=x onerror" not in answer.text, f"{path} shows the stored markup"
        if ESCAPED in answer.text:
            shown.append(path)
    # The walk reached the stored text: pages showed it, escaped.
    assert len(shown) >= 2, f"{role}: the markup was shown (escaped) on {shown} only"
