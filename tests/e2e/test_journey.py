"""A new customer's first journey, over real HTTP against ``training serve``.

The platform operator registers a tenant and its API client; HR registers people and imports
more from a CSV file; a curriculum is drafted and published; a small cohort fills up and
waitlists someone, meets in a live session and has its attendance imported, then someone
leaves and the person waiting takes the seat, the cohort on their track; an engineer signs in
with the tenant's identity provider (a real OpenID Connect provider on 127.0.0.1) and takes an
adaptive assessment to the end; HR, signed in the same way, finalises the engineer's review;
the engineer's track is re-planned and their PDF report rendered; a second tenant cannot see
any of it; finally the engineer's personal data is erased, and their reports with it.

Every read of a command's effects sends the command's ``Training-Position`` back and asserts
the first answer: read-your-writes holds for every view, the tracks and the reports included.

Every answer is checked as it arrives (``checked``): it carries ``X-Request-ID``, it is never a
5xx (but a 503 telling when to retry), and every error is an ``application/problem+json``
naming its status and request id.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import oidc_provider_mock
import pypdf
import pytest
import werkzeug.serving

from tests.conftest import TEST_SECRET_KEY, drop_database, fresh_database
from tests.e2e.test_serve import TRAINING, Server, environment, free_port, operator_token
from tests.helpers import PROBLEM

T = TypeVar("T")

POSITION = re.compile(r"^[0-9]+$")
ETAG = re.compile(r'^"[0-9]+"$')
TENANT_SCOPES = [
    "tenant:read",
    "members:read",
    "members:write",
    "people:personal-data",
    "skills:read",
    "curricula:read",
    "curricula:write",
    "audit:read",
    "sso:admin",
]
# The engineer knows every Python item easier than this (in logits); an adaptive test of
# such an answer pattern ends at level 4 (theta between the cut scores -0.3 and 0.4).
ENGINEER_ABILITY = 0.2
ASSESSED_LEVEL = 4


# -- plumbing -----------------------------------------------------------------------------------


def checked(response: httpx.Response) -> None:
    """What every answer of the service must be, whatever the request."""
    response.read()
    where = f"{response.request.method} {response.request.url.path}"
    request_id = response.headers.get("x-request-id")
    assert request_id, f"{where}: no X-Request-ID"
    # 503 is documented for a read that cannot catch up in time, and says when to retry.
    documented = response.status_code == 503 and "retry-after" in response.headers
    assert response.status_code < 500 or documented, f"{where}: {response.text}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM), (
            f"{where}: {response.status_code} as {response.headers['content-type']}"
        )
        problem = response.json()
        assert problem["status"] == response.status_code, problem
        assert problem["request_id"] == request_id, problem
        assert problem["title"], problem
        assert problem["type"].startswith("https://"), problem
        assert problem["detail"], problem


def api(base: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=base, headers=headers, timeout=30.0, event_hooks={"response": [checked]}
    )


def token_for(base: str, client_id: str, secret: str) -> str:
    with api(base) as http:
        answer = http.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert answer.headers["cache-control"] == "no-store"
    return str(body["access_token"])


def command(answer: httpx.Response, status: int = 200) -> dict[str, Any]:
    """A command's answer: its status, and the position to read its effects at."""
    assert answer.status_code == status, answer.text
    assert POSITION.match(answer.headers["training-position"]), answer.headers
    body: dict[str, Any] = answer.json()
    return body


def created(answer: httpx.Response) -> dict[str, Any]:
    """A command that made something: 201, its version as ``ETag`` and where it is."""
    body = command(answer, 201)
    assert ETAG.match(answer.headers["etag"]), answer.headers
    assert answer.headers["location"].startswith("/v1/"), answer.headers
    return body


def after(answer: httpx.Response) -> dict[str, str]:
    """Read-your-writes: a query that waits for the command's effects."""
    return {"Training-Position": answer.headers["training-position"]}


def read_at(command: httpx.Response, http: httpx.Client, path: str, **params: Any) -> Any:
    """A query at a command's position: its first answer already shows the command's effects
    (a 503, once ``TRAINING_READ_WAIT`` is over, fails the journey too)."""
    answer = http.get(path, params=params, headers=after(command))
    assert answer.status_code == 200, answer.text
    return answer.json()


def refused(answer: httpx.Response, status: int, detail: str = "") -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    problem: dict[str, Any] = answer.json()  # `checked` made sure it is a problem
    assert detail in problem["detail"], problem
    return problem


def poll(read: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {value!r} after {timeout:.0f} s")
        time.sleep(0.25)


# -- the identity provider ----------------------------------------------------------------------


@dataclass
class IdentityProvider:
    """The tenant's OpenID Connect provider: oidc-provider-mock on a loopback port."""

    issuer: str

    def add_person(self, sub: str, email: str, name: str) -> None:
        claims = {"email": email, "email_verified": True, "name": name}
        answer = httpx.put(f"{self.issuer}/users/{sub}", json=claims)
        assert answer.status_code == 204, answer.text

    def sign_in(self, base: str, slug: str, sub: str) -> tuple[httpx.Client, dict[str, Any]]:
        """A browser's sign-in: our login, the IdP's consent, our callback. The client keeps
        the session cookie, which authenticates the person from then on."""
        browser = api(base)
        login = browser.get(f"/auth/{slug}/login", follow_redirects=False)
        assert login.status_code == 302, login.text
        authorize = httpx.URL(login.headers["location"])
        assert str(authorize).startswith(f"{self.issuer}/oauth2/authorize")
        assert authorize.params["code_challenge_method"] == "S256"
        assert authorize.params["redirect_uri"] == f"{base}/auth/{slug}/callback"
        consent = httpx.post(str(authorize), data={"sub": sub}, follow_redirects=False)
        assert consent.status_code == 302, consent.text
        callback = urlsplit(consent.headers["location"])
        assert f"{callback.scheme}://{callback.netloc}" == base
        signed_in = browser.get(f"{callback.path}?{callback.query}", follow_redirects=False)
        assert signed_in.status_code == 200, signed_in.text
        cookie = next(
            value
            for value in signed_in.headers.get_list("set-cookie")
            if value.startswith("training_session=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=lax", "path=/"} <= flags
        assert "secure" not in flags  # development mode on plain http
        body: dict[str, Any] = signed_in.json()
        return browser, body


@pytest.fixture(scope="module")
def identity_provider() -> Iterator[IdentityProvider]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield IdentityProvider(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)


class FreshServer(Server):
    """test_serve's ``Server``, running ``training serve --no-demo`` (and ``options``): a
    database holding no tenant, and no demo reports queued ahead of the journey's."""

    def __init__(self, env: dict[str, str], *options: str) -> None:
        self.env = env
        self.base = f"http://127.0.0.1:{env['TRAINING_PORT']}"
        self.stdout = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read after it exits)
        self.process = subprocess.Popen(
            [TRAINING, "serve", "--no-demo", *options],
            env=env,
            stdout=self.stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner = ""
        self.output = ""


@contextmanager
def running(env: dict[str, str], *options: str) -> Iterator[Server]:
    """``training serve`` with ``env``, stopped with Ctrl-C on leaving."""
    server = FreshServer(env, *options)
    try:
        server.wait_ready()
        yield server
    finally:
        code = server.interrupt()
        assert code == 0, f"Ctrl-C ended the service with {code}: {server.banner}"


@pytest.fixture(scope="module")
def service() -> Iterator[Server]:
    """The service of the journey: the API, its views and its reports in one process, on a
    fresh embedded database of its own."""
    data_dir = Path(tempfile.mkdtemp(prefix="training-e2e-"))
    env = environment(
        data_dir,
        free_port(),
        # Development mode: the identity provider is on loopback over plain http.
        TRAINING_ENV="development",
        TRAINING_LOG_LEVEL="error",
        # Reads at a position wait longer than the default 2 s before a 503, so that the
        # journey's answers do not depend on how busy the machine is.
        TRAINING_READ_WAIT="10",
    )
    try:
        with running(env) as server:
            yield server
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def service_without_tracks_view(admin_server_url: str, template_db: str) -> Iterator[Server]:
    """The API with workers for the members view and the planning policy only (README:
    ``serve --no-projections`` and ``worker --only``): tracks are re-planned, but the tracks
    view that the track queries read is never brought up to date. On a copy of the tests'
    migrated database (like test_serve's DATABASE_URL test): nothing to set up at start."""
    database = fresh_database(admin_server_url, template_db)
    data_dir = Path(tempfile.mkdtemp(prefix="training-e2e-"))
    env = environment(
        data_dir,
        free_port(),
        DATABASE_URL=database.admin_url,
        TRAINING_SECRET_KEY=TEST_SECRET_KEY,
        TRAINING_LOG_LEVEL="error",
    )
    workers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with running(env, "--no-projections") as server:
            for name in ("members", "planning"):
                workers[name] = subprocess.Popen(
                    [TRAINING, "worker", "--only", name],
                    env=server.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )

            def runners() -> dict[str, str]:
                for name, worker in workers.items():
                    assert worker.poll() is None, f"the {name} worker ended: {worker.returncode}"
                ready = httpx.get(f"{server.base}/readyz").json()
                return {view["name"]: view["runner"] for view in ready["projections"]}

            try:
                poll(
                    runners,
                    lambda elected: all(elected[name] == "elsewhere" for name in workers),
                    "the workers' projections",
                    timeout=60,
                )
                yield server
            finally:
                for worker in workers.values():
                    worker.terminate()  # SIGTERM, as a service manager stops it
    finally:  # they stop while the service does
        for worker in workers.values():
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        drop_database(admin_server_url, database)
        shutil.rmtree(data_dir, ignore_errors=True)


# -- the journey --------------------------------------------------------------------------------


@dataclass
class Tenant:
    tenant_id: str
    slug: str
    http: httpx.Client  # the tenant's own API client
    members: dict[str, str] = field(default_factory=dict)  # external id -> member id


@dataclass
class Journey:
    base: str
    env: dict[str, str]
    idp: IdentityProvider
    operator: httpx.Client = field(init=False)
    acme: Tenant = field(init=False)
    curriculum_id: str = ""
    cohort_id: str = ""
    attempt_id: str = ""
    attempt_version: int = 0
    review_id: str = ""
    finalised: httpx.Response | None = None  # the command that re-plans the track
    report_ids: list[str] = field(default_factory=list)  # the engineer's, newest first
    engineer: httpx.Client = field(init=False)  # signed in with single sign-on
    hr: httpx.Client = field(init=False)

    @property
    def ada(self) -> str:
        return self.acme.members["eng-ada"]


def test_the_journey_of_a_new_customer(
    service: Server, identity_provider: IdentityProvider
) -> None:
    journey = Journey(service.base, service.env, identity_provider)
    operator_registers_a_tenant(journey)
    hr_registers_and_imports_people(journey)
    hr_publishes_a_curriculum(journey)
    a_cohort_fills_up_and_meets(journey)
    people_sign_in_with_the_tenants_identity_provider(journey)
    the_engineer_takes_an_adaptive_assessment(journey)
    hr_finalises_a_review(journey)
    the_track_is_replanned(journey)
    the_individual_report_is_rendered(journey)
    another_tenant_sees_nothing(journey)
    the_engineers_personal_data_is_erased(journey)


def test_a_track_read_at_a_commands_position_never_answers_an_older_plan(
    service_without_tracks_view: Server,
) -> None:
    """The journey's read of the re-planned track, with the tracks view held back: at the
    review's position the answer is the new plan, or 503 with ``Retry-After`` once
    ``TRAINING_READ_WAIT`` is over (README, read-your-writes), never what came before."""
    base, env = service_without_tracks_view.base, service_without_tracks_view.env
    umbrella = new_tenant(base, api(base, operator_token(env, base)), "umbrella")
    una = register(umbrella, "eng-una", "Una Ward", "una.ward@umbrella.test", roles=["engineer"])
    due = (date.today() + timedelta(days=90)).isoformat()
    finalised = umbrella.http.post(
        "/v1/reviews",
        json={
            "cycle": "2026-H2",
            "member_id": una,
            "ratings": [{"skill": "git", "level": 1}],
            "overall_rating": 3,
            "goals": [{"goal_id": "G1", "skill": "git", "target_level": 4, "due": due}],
            "finalise": True,
        },
    )
    review_id = created(finalised)["review_id"]
    trigger = f"training.reviews:PerformanceReview.Finalised:{review_id}:2"
    answers = {
        path: umbrella.http.get(path, headers=after(finalised))
        for path in (f"/v1/members/{una}/track", f"/v1/members/{una}/track/history")
    }
    shown = {path: (answer.status_code, answer.text) for path, answer in answers.items()}
    for answer in answers.values():
        if answer.status_code == 200:
            body = answer.json()
            plans = body.get("items", [body])  # the history, or the track itself
            assert plans, shown
            assert plans[0]["trigger"] == trigger, shown
        else:
            assert answer.status_code == 503, shown
            assert answer.headers["retry-after"] == "1", shown


def test_reports_asked_for_together_are_all_rendered(service: Server) -> None:
    """The journey's report step with several reports in the queue at once: a cohort's
    enrolment re-plans each person's track, and each re-plan asks for a report."""
    operator = api(service.base, operator_token(service.env, service.base))
    hooli = new_tenant(service.base, operator, "hooli")
    people = [
        register(hooli, f"eng-{n}", f"Engineer {n}", f"eng-{n}@hooli.test", roles=["engineer"])
        for n in range(6)
    ]
    curriculum_id = publish_one_module(hooli)
    cohort_id = created(schedule_cohort(hooli, curriculum_id, "Git for everyone", len(people)))[
        "cohort_id"
    ]
    enrolled = hooli.http.post(f"/v1/cohorts/{cohort_id}/enrolments", json={"member_ids": people})
    assert command(enrolled)["enrolled"] == people

    def statuses() -> list[str]:
        """Each person's report: listed at the enrolment's position, rendered in turn."""
        listings = [
            read_at(enrolled, hooli.http, f"/v1/members/{member_id}/pdf-reports")
            for member_id in people
        ]
        return [str(listing["items"][0]["status"]) for listing in listings]

    # One worker renders one report at a time, each in seconds: wait while it makes progress.
    seen, changed = statuses(), time.monotonic()
    while any(status != "rendered" for status in seen) and time.monotonic() - changed < 15:
        time.sleep(0.5)
        now = statuses()
        if now != seen:
            seen, changed = now, time.monotonic()
    assert seen == ["rendered"] * len(people), seen


def operator_registers_a_tenant(j: Journey) -> None:
    assert j.base == f"http://127.0.0.1:{j.env['TRAINING_PORT']}"
    j.operator = api(j.base, operator_token(j.env, j.base))
    tenant = j.operator.post(
        "/v1/tenants", json={"slug": "initrode", "name": "Initrode", "seat_limit": 20}
    )
    body = created(tenant)
    assert tenant.headers["location"] == f"/v1/tenants/{body['tenant_id']}"
    assert tenant.headers["etag"] == '"1"'
    assert body == {
        "tenant_id": body["tenant_id"],
        "slug": "initrode",
        "name": "Initrode",
        "seat_limit": 20,
        "status": "active",
        "version": 1,
    }
    read = j.operator.get(tenant.headers["location"], headers=after(tenant))
    assert read.status_code == 200, read.text
    assert read.json()["slug"] == "initrode"
    assert read.headers["etag"] == '"1"'
    duplicate = j.operator.post(
        "/v1/tenants", json={"slug": "initrode", "name": "Again", "seat_limit": 5}
    )
    assert refused(duplicate, 409)["errors"][0]["field"] == "slug"
    refused(j.operator.post("/v1/tenants", json={"slug": "Not A Slug", "name": "x"}), 400)

    issued = j.operator.post(
        f"/v1/tenants/{body['tenant_id']}/clients",
        json={"name": "Initrode HR system", "scopes": TENANT_SCOPES},
    )
    credentials = command(issued, 201)
    assert credentials["tenant_id"] == body["tenant_id"]
    assert sorted(credentials["scopes"]) == sorted(TENANT_SCOPES)
    assert credentials["token_endpoint"] == f"{j.base}/oauth2/token"
    assert credentials["client_secret"]
    # A wrong secret gets no token.
    with api(j.base) as anonymous:
        wrong = anonymous.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(credentials["client_id"], "not-the-secret"),
        )
        refused(wrong, 401)
        refused(anonymous.get("/v1/members"), 401, "Bearer")
    token = token_for(j.base, credentials["client_id"], credentials["client_secret"])
    j.acme = Tenant(body["tenant_id"], "initrode", api(j.base, token))
    # The operator manages tenants, never a tenant's people.
    refused(j.operator.get("/v1/members"), 403)


def register(tenant: Tenant, external_id: str, name: str, email: str, **fields: Any) -> str:
    answer = tenant.http.post(
        "/v1/members",
        json={"external_id": external_id, "display_name": name, "email": email, **fields},
    )
    body = created(answer)
    assert answer.headers["location"] == f"/v1/members/{body['member_id']}"
    assert answer.headers["etag"] == '"1"'
    assert body["external_id"] == external_id
    assert body["status"] == "active"
    assert body["erased"] is False
    read = tenant.http.get(answer.headers["location"], headers=after(answer))
    assert read.status_code == 200, read.text
    assert read.json()["display_name"] == name
    assert read.json()["email"] == email
    tenant.members[external_id] = body["member_id"]
    return str(body["member_id"])


def hr_registers_and_imports_people(j: Journey) -> None:
    acme = j.acme
    register(
        acme,
        "eng-ada",
        "Ada Quill",
        "ada.quill@initrode.test",
        roles=["engineer"],
        team="platform",
        job_title="Software Engineer",
    )
    register(acme, "hr-hana", "Hana Reyes", "hana.reyes@initrode.test", roles=["hr_manager"])
    again = acme.http.post(
        "/v1/members",
        json={"external_id": "eng-ada", "display_name": "Ada Again", "roles": ["engineer"]},
    )
    refused(again, 409)
    bad = acme.http.post(
        "/v1/members",
        json={"external_id": "x", "display_name": "X", "email": "nope", "roles": ["engineer"]},
    )
    assert refused(bad, 400)["errors"][0]["field"] == "email"

    csv = (
        "external_id,display_name,email,roles,manager_external_id,team,job_title\n"
        "imp-ivo,Ivo Brandt,ivo.brandt@initrode.test,engineer,hr-hana,platform,Engineer\n"
        "imp-jun,Jun Sato,jun.sato@initrode.test,engineer;manager,,platform,Team Lead\n"
        "imp-bad,Bad Email,not-an-email,engineer,,platform,\n"
        "imp-kai,Kai Lund,kai.lund@initrode.test,wizard,,platform,\n"
    )
    refused(
        acme.http.post("/v1/member-imports", content=csv, headers={"Content-Type": "text/plain"}),
        415,
    )
    submitted = acme.http.post(
        "/v1/member-imports", content=csv, headers={"Content-Type": "text/csv"}
    )
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["status"] == "queued"
    assert job["status_url"] == f"/v1/member-imports/{job['import_id']}"
    assert submitted.headers["location"] == job["status_url"]
    finished = poll(
        lambda: acme.http.get(job["status_url"]),
        lambda answer: answer.json()["status"] not in ("queued", "running"),
        "the member import",
        timeout=30,
    )
    report = finished.json()
    assert report["status"] == "completed", report
    assert report["format"] == "csv"
    assert (report["total_rows"], report["processed_rows"]) == (4, 4)
    counts = {outcome: report[outcome] for outcome in ("created", "updated", "unchanged", "failed")}
    assert counts == {"created": 2, "updated": 0, "unchanged": 0, "failed": 2}
    # Rows as a spreadsheet numbers them: the header is row 1.
    assert report["first_member_row"] == 2
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(4, "email"), (5, "roles")]
    assert report["finished_at"] is not None
    # The completed job names the position its members can be read at.
    assert finished.headers["training-position"] == str(report["position"])

    imported = read_at(finished, acme.http, "/v1/members", q="imp-")["items"]
    assert len(imported) == 2, imported
    by_external_id = {m["external_id"]: m for m in imported}
    assert by_external_id["imp-ivo"]["display_name"] == "Ivo Brandt"
    assert by_external_id["imp-ivo"]["manager_id"] == acme.members["hr-hana"]
    assert by_external_id["imp-jun"]["roles"] == ["engineer", "manager"]
    assert by_external_id["imp-jun"]["job_title"] == "Team Lead"
    for member in imported:
        acme.members[member["external_id"]] = member["member_id"]
    everyone = read_at(finished, acme.http, "/v1/members")
    assert [m["external_id"] for m in everyone["items"]] == [
        "eng-ada",
        "hr-hana",
        "imp-ivo",
        "imp-jun",
    ]
    assert everyone["next_cursor"] is None
    reports = read_at(finished, acme.http, f"/v1/members/{acme.members['hr-hana']}/reports")
    assert [m["external_id"] for m in reports["items"]] == ["imp-ivo"]


MODULES = [
    ("py-foundations", "Python foundations", "reading", 60, [], [("python", 3)]),
    (
        "py-testing",
        "Testing Python services",
        "lab",
        90,
        ["py-foundations"],
        [("python", 4), ("automated-testing", 3)],
    ),
    ("py-performance", "Python performance", "project", 120, ["py-testing"], [("python", 5)]),
]


def module_body(
    key: str, title: str, kind: str, minutes: int, needs: list[str], targets: Any
) -> Any:
    return {
        "key": key,
        "title": title,
        "format": kind,
        "duration_minutes": minutes,
        "prerequisites": needs,
        "targets": [{"skill": skill, "level": level} for skill, level in targets],
    }


def hr_publishes_a_curriculum(j: Journey) -> None:
    http = j.acme.http
    draft = http.post(
        "/v1/curricula",
        json={"title": "Python in production", "description": "From scripts to services"},
    )
    body = created(draft)
    curriculum_id = body["curriculum_id"]
    assert draft.headers["location"] == f"/v1/curricula/{curriculum_id}"
    assert body["status"] == "active"
    assert body["latest_version"] is None
    etag = draft.headers["etag"]
    for module in MODULES:
        added = http.post(
            f"/v1/curricula/{curriculum_id}/modules",
            json=module_body(*module),
            headers={"If-Match": etag},
        )
        command(added, 201)
        assert int(added.headers["etag"].strip('"')) == int(etag.strip('"')) + 1
        etag = added.headers["etag"]
    # A prerequisite that closes a loop is refused, and the loop is named.
    looped = http.put(
        f"/v1/curricula/{curriculum_id}/modules/py-foundations",
        json={
            key: value
            for key, value in module_body(*MODULES[0]).items()
            if key != "key"  # the path names the module
        }
        | {"prerequisites": ["py-performance"]},
    )
    cycle = refused(looped, 422, "cycle")
    assert "py-foundations → py-performance → py-testing → py-foundations" in cycle["detail"]
    # Publishing what someone else may have changed since is refused.
    refused(
        http.post(f"/v1/curricula/{curriculum_id}/publish", json={}, headers={"If-Match": '"1"'}),
        412,
    )
    published = http.post(
        f"/v1/curricula/{curriculum_id}/publish", json={}, headers={"If-Match": etag}
    )
    version = command(published)
    assert published.headers["location"] == f"/v1/curricula/{curriculum_id}/versions/1"
    assert version["version"] == 1
    # Published in the order the prerequisites ask for.
    assert [(m["position"], m["key"]) for m in version["modules"]] == [
        (1, "py-foundations"),
        (2, "py-testing"),
        (3, "py-performance"),
    ]
    read = http.get(published.headers["location"], headers=after(published))
    assert read.status_code == 200, read.text
    assert read.json() == version
    detail = http.get(f"/v1/curricula/{curriculum_id}", headers=after(published))
    assert detail.json()["latest_version"] == 1
    assert detail.json()["has_unpublished_changes"] is False
    assert detail.headers["etag"] == published.headers["etag"]
    j.curriculum_id = curriculum_id


def a_cohort_fills_up_and_meets(j: Journey) -> None:
    http, members = j.acme.http, j.acme.members
    scheduled = schedule_cohort(
        j.acme,
        j.curriculum_id,
        "Python, first cohort",
        2,
        timezone="Europe/Berlin",
        facilitators=[members["hr-hana"]],
    )
    cohort = created(scheduled)
    cohort_id = cohort["cohort_id"]
    assert scheduled.headers["location"] == f"/v1/cohorts/{cohort_id}"
    assert (cohort["status"], cohort["capacity"], cohort["enrolled"]) == ("planned", 2, 0)
    j.cohort_id = cohort_id

    people = [members["eng-ada"], members["imp-ivo"], members["imp-jun"]]
    enrolled = http.post(f"/v1/cohorts/{cohort_id}/enrolments", json={"member_ids": people})
    outcome = command(enrolled)
    assert outcome["enrolled"] == people[:2]
    assert outcome["waitlisted"] == people[2:]
    assert (outcome["cohort"]["enrolled"], outcome["cohort"]["waitlisted"]) == (2, 1)
    waiting = http.get(
        f"/v1/cohorts/{cohort_id}/enrolments",
        params={"status": "waitlisted"},
        headers=after(enrolled),
    ).json()["items"]
    assert [(w["external_id"], w["waitlist_position"]) for w in waiting] == [("imp-jun", 1)]

    started = http.post(f"/v1/cohorts/{cohort_id}/start", json={})
    assert command(started)["status"] == "running"
    refused(http.post(f"/v1/cohorts/{cohort_id}/start", json={}), 409)

    starts_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    session = http.post(
        f"/v1/cohorts/{cohort_id}/sessions",
        json={
            "title": "Kick-off",
            "starts_at": starts_at.isoformat(),
            "duration_minutes": 60,
            "join_url": "https://meet.example/initrode-python",
        },
    )
    session_id = command(session, 201)["session_id"]
    assert session.headers["location"].startswith(f"/v1/cohorts/{cohort_id}/sessions")
    attendance = http.put(
        f"/v1/cohorts/{cohort_id}/sessions/{session_id}/attendance",
        json={
            "attendance": [
                {
                    "member_id": members["eng-ada"],
                    "joined_at": starts_at.isoformat(),
                    "left_at": (starts_at + timedelta(minutes=55)).isoformat(),
                }
            ],
            "comments": 4,
            "questions": 2,
            "reactions": 6,
        },
    )
    assert command(attendance)["attendance_records"] == 1
    sessions = http.get(f"/v1/cohorts/{cohort_id}/sessions", headers=after(attendance)).json()
    [kick_off] = sessions["items"]
    assert kick_off["session_id"] == session_id
    assert (kick_off["attendees"], kick_off["enrolled"]) == (1, 2)
    assert kick_off["attendance_rate"] == pytest.approx(0.5)
    assert kick_off["interaction_index"] == pytest.approx((4 + 2 + 6) / 60)
    assert kick_off["content_satisfaction"] is None
    summary = http.get(f"/v1/cohorts/{cohort_id}", headers=after(attendance))
    assert summary.headers["etag"] == attendance.headers["etag"]
    assert summary.json()["average_attendance_rate"] == pytest.approx(0.5)
    assert (summary.json()["sessions"], summary.json()["waitlisted"]) == (1, 1)

    # Ivo moves to another team and leaves: Jun, first on the waitlist, takes his seat, and
    # the cohort's curriculum goes on Jun's track and off Ivo's.
    ivo, jun = members["imp-ivo"], members["imp-jun"]
    withdrawn = http.delete(
        f"/v1/cohorts/{cohort_id}/enrolments/{ivo}", params={"reason": "moved to another team"}
    )
    outcome = command(withdrawn)
    assert (outcome["withdrawn"], outcome["promoted"]) == (ivo, jun)
    assert (outcome["cohort"]["enrolled"], outcome["cohort"]["waitlisted"]) == (2, 0)
    seated = read_at(withdrawn, http, f"/v1/cohorts/{cohort_id}/enrolments", status="enrolled")
    assert [e["external_id"] for e in seated["items"]] == ["eng-ada", "imp-jun"]
    promoted = read_at(withdrawn, http, f"/v1/members/{jun}/track")
    assert promoted["trigger"].startswith(f"training.cohorts:Cohort.Promoted:{cohort_id}:")
    assert [
        (c["cohort_id"], c["curriculum_id"], c["curriculum_version"]) for c in promoted["cohorts"]
    ] == [(cohort_id, j.curriculum_id, 1)]
    assert promoted["modules"] == []  # no review, no targets: nothing to plan yet
    left = read_at(withdrawn, http, f"/v1/members/{ivo}/track")
    assert left["trigger"].startswith(f"training.cohorts:Cohort.Withdrawn:{cohort_id}:")
    assert left["cohorts"] == []


def people_sign_in_with_the_tenants_identity_provider(j: Journey) -> None:
    acme = j.acme
    configured = acme.http.put(
        "/v1/sso",
        json={
            "issuer": j.idp.issuer,
            "client_id": "training-initrode",
            "client_secret": "initrode-idp-secret",
            "allowed_domains": ["initrode.test"],
        },
    )
    sso = command(configured)
    assert sso["redirect_uri"] == f"{j.base}/auth/{acme.slug}/callback"
    assert sso["login_url"] == f"{j.base}/auth/{acme.slug}/login"
    assert "client_secret" not in sso
    assert "initrode-idp-secret" not in configured.text

    j.idp.add_person("idp-ada", "ada.quill@initrode.test", "Ada Quill")
    j.idp.add_person("idp-hana", "hana.reyes@initrode.test", "Hana Reyes")
    j.idp.add_person("idp-mallory", "mallory@initrode.test", "Mallory")
    j.engineer, ada = j.idp.sign_in(j.base, acme.slug, "idp-ada")
    assert ada["member_id"] == j.ada
    assert ada["tenant_id"] == acme.tenant_id
    j.hr, hana = j.idp.sign_in(j.base, acme.slug, "idp-hana")
    assert hana["member_id"] == acme.members["hr-hana"]
    # Someone the tenant never registered is turned away (no just-in-time provisioning).
    browser = api(j.base)
    login = browser.get(f"/auth/{acme.slug}/login", follow_redirects=False)
    consent = httpx.post(login.headers["location"], data={"sub": "idp-mallory"})
    callback = urlsplit(consent.headers["location"])
    refused(browser.get(f"{callback.path}?{callback.query}"), 403)

    me = j.engineer.get(f"/v1/members/{j.ada}")
    assert me.status_code == 200, me.text
    assert me.json()["display_name"] == "Ada Quill"
    # An engineer is not HR.
    refused(j.engineer.get("/v1/members"), 403, "members:read")
    refused(j.engineer.get(f"/v1/members/{acme.members['imp-ivo']}"), 403)
    cohorts = j.engineer.get("/v1/me/cohorts").json()["items"]
    assert [(c["cohort_id"], c["placement"]) for c in cohorts] == [(j.cohort_id, "enrolled")]
    [session] = j.engineer.get("/v1/me/sessions").json()["items"]
    feedback = j.engineer.post(
        f"/v1/cohorts/{j.cohort_id}/sessions/{session['session_id']}/feedback",
        json={"content": 5, "delivery": 4, "interaction": 3},
    )
    assert command(feedback)["member_id"] == j.ada
    rated = acme.http.get(f"/v1/cohorts/{j.cohort_id}/sessions", headers=after(feedback))
    [kick_off] = rated.json()["items"]
    assert kick_off["feedback_count"] == 1
    assert kick_off["content_satisfaction"] == pytest.approx(4.0)


def answer_key() -> dict[str, tuple[list[str], float]]:
    """The shipped bank's keys and difficulties: the engineer's knowledge, for the test."""
    bank = json.loads(resources.files("training.data").joinpath("item_bank.json").read_text())
    return {
        item["item_id"]: (item["answer"], item["difficulty"])
        for skill in bank["skills"]
        for item in skill["items"]
    }


def the_engineer_takes_an_adaptive_assessment(j: Journey) -> None:
    key = answer_key()
    started = j.engineer.post("/v1/assessments", json={"skill": "python"})
    attempt = created(started)
    assert started.headers["location"] == f"/v1/assessments/{attempt['attempt_id']}"
    assert (attempt["status"], attempt["answered"], attempt["result"]) == ("in_progress", 0, None)
    refused(j.engineer.post("/v1/assessments", json={"skill": "python"}), 409)
    first = attempt["item"]["item_id"]
    answered = 0
    while attempt["status"] == "in_progress":
        item = attempt["item"]
        assert "answer" not in item  # items never carry their key
        assert item["position"] == answered + 1
        correct, difficulty = key[item["item_id"]]
        wrong = [next(o["id"] for o in item["options"] if [o["id"]] != correct)]
        response = j.engineer.post(
            f"/v1/assessments/{attempt['attempt_id']}/answers",
            json={
                "item_id": item["item_id"],
                "answer": correct if difficulty < ENGINEER_ABILITY else wrong,
            },
        )
        attempt = command(response)
        answered += 1
        assert attempt["answered"] == answered
        if answered == 1 and attempt["status"] == "in_progress":
            # Answering an item again changes nothing; an item that is not current is refused.
            again = j.engineer.post(
                f"/v1/assessments/{attempt['attempt_id']}/answers",
                json={"item_id": first, "answer": ["a"]},
            )
            assert again.status_code == 200, again.text
            assert again.json()["answered"] == 1
            refused(
                j.engineer.post(
                    f"/v1/assessments/{attempt['attempt_id']}/answers",
                    json={"item_id": "python-999", "answer": ["a"]},
                ),
                422,
            )
    assert attempt["status"] == "completed"
    assert attempt["item"] is None
    result = attempt["result"]
    assert 8 <= result["items"] == answered <= 25
    assert result["se"] <= 0.43 or answered == 25
    assert result["level"] == ASSESSED_LEVEL, result
    j.attempt_id = attempt["attempt_id"]
    j.attempt_version = attempt["version"]
    assert response.headers["etag"] == f'"{attempt["version"]}"'

    read = j.engineer.get(f"/v1/assessments/{j.attempt_id}")
    assert read.json()["result"] == result
    mine = j.engineer.get("/v1/me/assessments", headers=after(response)).json()["items"]
    assert [(a["attempt_id"], a["status"], a["level"]) for a in mine] == [
        (j.attempt_id, "completed", ASSESSED_LEVEL)
    ]
    profile = j.engineer.get(f"/v1/members/{j.ada}/skill-profile", headers=after(response))
    [python] = profile.json()["skills"]
    assert (python["skill"], python["level"]) == ("python", ASSESSED_LEVEL)
    assert [(s["kind"], s["id"]) for s in python["sources"]] == [("assessment", j.attempt_id)]


def hr_finalises_a_review(j: Journey) -> None:
    due = (date.today() + timedelta(days=120)).isoformat()
    review = {
        "cycle": "2026-H2",
        "member_id": j.ada,
        "reviewer_id": j.acme.members["hr-hana"],
        "ratings": [{"skill": "python", "level": 3}, {"skill": "automated-testing", "level": 2}],
        "overall_rating": 3,
        "strengths": ["Clear written communication"],
        "goals": [
            {"goal_id": "G1", "skill": "python", "target_level": 5, "due": due},
            {"goal_id": "G2", "skill": "automated-testing", "target_level": 3, "due": due},
        ],
    }
    refused(j.engineer.post("/v1/reviews", json=review), 403)
    drafted = j.hr.post("/v1/reviews", json=review)
    body = created(drafted)
    j.review_id = body["review_id"]
    assert drafted.headers["location"] == f"/v1/reviews/{j.review_id}"
    assert drafted.headers["etag"] == '"1"'
    assert (body["status"], body["member_id"], body["cycle"]) == ("draft", j.ada, "2026-H2")
    stale = j.hr.post(f"/v1/reviews/{j.review_id}/finalise", json={}, headers={"If-Match": '"7"'})
    refused(stale, 412)
    finalised = j.hr.post(
        f"/v1/reviews/{j.review_id}/finalise", json={}, headers={"If-Match": '"1"'}
    )
    assert command(finalised)["status"] == "finalised"
    assert finalised.headers["etag"] == '"2"'
    j.finalised = finalised
    # The person reviewed reads their review.
    mine = j.engineer.get(f"/v1/reviews/{j.review_id}")
    assert mine.status_code == 200, mine.text
    assert mine.json()["goals"] == review["goals"]
    assert mine.json()["status"] == "finalised"


def the_track_is_replanned(j: Journey) -> None:
    assert j.finalised is not None
    review_trigger = f"training.reviews:PerformanceReview.Finalised:{j.review_id}:2"
    # Read at the finalisation's position: the plan that the review caused.
    track = read_at(j.finalised, j.engineer, "/v1/me/track")
    assert (track["member_id"], track["plan_version"]) == (j.ada, 3)
    assert track["trigger"] == review_trigger
    assert [c["cohort_id"] for c in track["cohorts"]] == [j.cohort_id]
    modules = track["modules"]
    assert [(m["position"], m["key"]) for m in modules] == [
        (1, "py-foundations"),
        (2, "py-testing"),
        (3, "py-performance"),
    ]
    assert {(m["curriculum_id"], m["curriculum_version"]) for m in modules} == {
        (j.curriculum_id, 1)
    }
    assert [m["minutes"] for m in modules] == [60, 90, 120]
    assert track["minutes_used"] == 270 <= track["budget_minutes"]
    assert [m["state"] for m in modules] == ["planned"] * 3
    dues = [date.fromisoformat(m["due_on"]) for m in modules]
    assert dues == sorted(dues)
    assert track["remaining_gaps"] == []
    reasons = {m["key"]: m["reason"] for m in modules}
    assert reasons["py-foundations"] == "prerequisite of 'py-testing'"
    assert "closes Automated Testing 2→3" in reasons["py-testing"]
    assert "goal G2" in reasons["py-testing"]
    # The assessment's level, not the review's rating, is where the Python gap starts.
    assert f"closes Python {ASSESSED_LEVEL}→5" in reasons["py-performance"]
    assert "goal G1" in reasons["py-performance"]
    # HR sees the same track.
    assert read_at(j.finalised, j.hr, f"/v1/members/{j.ada}/track") == track

    plans = read_at(j.finalised, j.hr, f"/v1/members/{j.ada}/track/history")["items"]
    assert [p["plan_version"] for p in plans] == [3, 2, 1]
    latest, assessed, enrolled = plans
    assert latest["trigger"] == review_trigger
    assert [(tuple(ref), why) for ref, why in latest["added"]] == [
        ((j.curriculum_id, m["key"]), m["reason"]) for m in modules
    ]
    assert (latest["removed"], latest["reordered"]) == ([], [])
    assert [m["key"] for m in latest["modules"]] == [m["key"] for m in modules]
    assert assessed["trigger"] == (
        f"training.assessments:AssessmentAttempt.Completed:{j.attempt_id}:{j.attempt_version}"
    )
    assert enrolled["trigger"].startswith(f"training.cohorts:Cohort.Enrolled:{j.cohort_id}:")
    # Without targets (no review yet) the earlier plans held nothing.
    assert assessed["modules"] == enrolled["modules"] == []


def pdf_text(content: bytes) -> str:
    """The PDF's text with its line breaks (table cells wrap) folded into single spaces."""
    reader = pypdf.PdfReader(io.BytesIO(content))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


RENDER_WAIT = 60.0  # a render takes about half a second; the queue holds a few reports


def the_individual_report_is_rendered(j: Journey) -> None:
    # Every re-plan asks for a report, listed at the re-plan's position; the review's is the
    # newest.
    assert j.finalised is not None
    review_trigger = f"training.reviews:PerformanceReview.Finalised:{j.review_id}:2"
    listing = read_at(j.finalised, j.hr, f"/v1/members/{j.ada}/pdf-reports")["items"]
    assert [r["trigger"].split(" (")[0] for r in listing] == [
        f"re-plan to version {version}" for version in (3, 2, 1)
    ]
    newest = listing[0]
    assert (newest["kind"], newest["subject_id"]) == ("individual", j.ada)
    assert review_trigger in newest["trigger"]
    assert newest["requested_by"] == "system:planning"
    assert newest["pdf_url"] == f"/v1/reports/{newest['report_id']}/pdf"
    j.report_ids = [r["report_id"] for r in listing]
    # The worker renders the queue's reports one at a time, this one among them.
    report = poll(
        lambda: j.hr.get(f"/v1/reports/{newest['report_id']}").json(),
        lambda report: report["status"] != "queued",
        "the automatic report of plan 3",
        timeout=RENDER_WAIT,
    )
    assert report["status"] == "rendered", report
    assert report["plan_version"] == 3
    assert re.fullmatch(r"[0-9a-f]{64}", report["checksum"])
    assert report["pages"] >= 1
    assert report["rendered_at"] is not None

    # The engineer downloads her own report.
    pdf = j.engineer.get(report["pdf_url"])
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert pdf.headers["etag"] == f'"{report["checksum"]}"'
    assert hashlib.sha256(pdf.content).hexdigest() == report["checksum"]
    assert len(pdf.content) == report["size_bytes"]
    unchanged = j.engineer.get(report["pdf_url"], headers={"If-None-Match": pdf.headers["etag"]})
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    text = pdf_text(pdf.content)
    assert "Skill profile and training plan: Ada Quill" in text
    assert "Initrode" in text
    assert "Plan version 3" in text
    titles = [title for _, title, *_ in MODULES]
    places = [text.find(title) for title in titles]
    assert all(place >= 0 for place in places), (titles, text)
    assert places == sorted(places), "the plan's modules in the order to take them"
    assert "goal G1: python 5" in text
    assert "prerequisite of 'py-testing'" in text


def schedule_cohort(
    tenant: Tenant, curriculum_id: str, name: str, capacity: int, **fields: Any
) -> httpx.Response:
    """A cohort of version 1 of the curriculum, from today for six weeks."""
    today = date.today()
    return tenant.http.post(
        "/v1/cohorts",
        json={
            "name": name,
            "curriculum_id": curriculum_id,
            "curriculum_version": 1,
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(days=42)).isoformat(),
            "timezone": "UTC",
            "capacity": capacity,
            **fields,
        },
    )


def publish_one_module(tenant: Tenant) -> str:
    draft = tenant.http.post("/v1/curricula", json={"title": "Git basics"})
    curriculum_id = str(created(draft)["curriculum_id"])
    module = module_body("git-basics", "Git basics", "video", 30, [], [("git", 2)])
    command(tenant.http.post(f"/v1/curricula/{curriculum_id}/modules", json=module), 201)
    command(tenant.http.post(f"/v1/curricula/{curriculum_id}/publish", json={}))
    return curriculum_id


def new_tenant(base: str, operator: httpx.Client, slug: str) -> Tenant:
    """A tenant and its API client with every tenant scope, as the operator makes them."""
    registered = operator.post(
        "/v1/tenants", json={"slug": slug, "name": slug.title(), "seat_limit": 30}
    )
    tenant_id = created(registered)["tenant_id"]
    issued = operator.post(
        f"/v1/tenants/{tenant_id}/clients",
        json={"name": f"{slug.title()} HR system", "scopes": TENANT_SCOPES},
    )
    credentials = command(issued, 201)
    token = token_for(base, credentials["client_id"], credentials["client_secret"])
    return Tenant(tenant_id, slug, api(base, token))


def another_tenant_sees_nothing(j: Journey) -> None:
    globex = new_tenant(j.base, j.operator, "globex")
    gil = register(globex, "gx-gil", "Gil Xu", "gil.xu@globex.test", roles=["engineer"])
    curriculum_id = publish_one_module(globex)
    scheduled = schedule_cohort(globex, curriculum_id, "Git, first cohort", 5)
    globex_cohort = created(scheduled)["cohort_id"]
    enrolled = globex.http.post(
        f"/v1/cohorts/{globex_cohort}/enrolments", json={"member_ids": [gil]}
    )
    assert command(enrolled)["enrolled"] == [gil]
    gil_track = read_at(enrolled, globex.http, f"/v1/members/{gil}/track")
    assert gil_track["trigger"].startswith(f"training.cohorts:Cohort.Enrolled:{globex_cohort}:")
    assert gil_track["modules"] == []  # no review, no targets: nothing to plan
    [gil_report] = read_at(enrolled, globex.http, f"/v1/members/{gil}/pdf-reports")["items"]

    acme = j.acme
    acme_paths = [
        f"/v1/members/{j.ada}",
        f"/v1/members/{j.ada}/track",
        f"/v1/members/{j.ada}/track/history",
        f"/v1/members/{j.ada}/pdf-reports",
        f"/v1/members/{j.ada}/skill-profile",
        f"/v1/members/{j.ada}/export",
        f"/v1/cohorts/{j.cohort_id}",
        f"/v1/cohorts/{j.cohort_id}/enrolments",
        f"/v1/curricula/{j.curriculum_id}",
        f"/v1/reviews/{j.review_id}",
        f"/v1/reports/{j.report_ids[0]}",
        f"/v1/reports/{j.report_ids[0]}/pdf",
    ]
    for path in acme_paths:
        refused(globex.http.get(path, headers=after(enrolled)), 404)
    globex_paths = [
        f"/v1/members/{gil}",
        f"/v1/members/{gil}/track",
        f"/v1/members/{gil}/pdf-reports",
        f"/v1/cohorts/{globex_cohort}",
        f"/v1/curricula/{curriculum_id}",
        f"/v1/reports/{gil_report['report_id']}",
        f"/v1/reports/{gil_report['report_id']}/pdf",
    ]
    for path in globex_paths:
        refused(acme.http.get(path, headers=after(enrolled)), 404)
    # Acme's engineer, signed in, does not reach Globex's people either.
    for path in (f"/v1/members/{gil}/track", f"/v1/reports/{gil_report['report_id']}"):
        refused(j.engineer.get(path), 404)
    # Nor do writes cross: nothing is enrolled, nothing erased.
    refused(
        globex.http.post(f"/v1/cohorts/{j.cohort_id}/enrolments", json={"member_ids": [gil]}),
        404,
    )
    refused(globex.http.delete(f"/v1/members/{j.ada}/personal-data"), 404)
    refused(
        acme.http.post(f"/v1/cohorts/{globex_cohort}/enrolments", json={"member_ids": [j.ada]}), 404
    )
    assert globex.http.get("/v1/members", params={"q": "Ada"}).json()["items"] == []
    assert [m["external_id"] for m in globex.http.get("/v1/members").json()["items"]] == ["gx-gil"]
    assert "gx-gil" not in acme.http.get("/v1/members").text
    cohort = acme.http.get(f"/v1/cohorts/{j.cohort_id}").json()
    assert (cohort["enrolled"], cohort["waitlisted"]) == (2, 0)


def the_engineers_personal_data_is_erased(j: Journey) -> None:
    http = j.acme.http
    for query in ("Ada", "ada.quill"):
        found = http.get("/v1/members", params={"q": query}).json()["items"]
        assert [m["member_id"] for m in found] == [j.ada]
    refused(j.engineer.delete(f"/v1/members/{j.ada}/personal-data"), 403)

    erased = http.delete(f"/v1/members/{j.ada}/personal-data")
    body = command(erased)
    assert (body["member_id"], body["erased"], body["status"]) == (j.ada, True, "active")
    assert erased.headers["etag"] == f'"{body["version"]}"'
    member = read_at(erased, http, f"/v1/members/{j.ada}")
    assert (member["erased"], member["email"], member["display_name"]) == (True, None, "(erased)")
    everyone = read_at(erased, http, "/v1/members")
    assert j.ada in [m["member_id"] for m in everyone["items"]]
    export = read_at(erased, http, f"/v1/members/{j.ada}/export")
    assert export["personal_data"] is None
    for name in ("Ada Quill", "ada.quill"):
        assert name not in json.dumps(everyone), name
        assert name not in json.dumps(export), name
    for query in ("Ada", "ada.quill"):
        assert read_at(erased, http, "/v1/members", q=query)["items"] == [], query
    refused(http.delete(f"/v1/members/{j.ada}/personal-data"), 409)
    # Her individual reports printed her name: they are deleted, the files with them, and no
    # list names them any more.
    assert read_at(erased, http, f"/v1/members/{j.ada}/pdf-reports")["items"] == []
    for report_id in j.report_ids:
        refused(http.get(f"/v1/reports/{report_id}", headers=after(erased)), 404)
        refused(http.get(f"/v1/reports/{report_id}/pdf", headers=after(erased)), 404)
    # The erasure itself is in the audit log, by the client that asked for it.
    audit = read_at(erased, http, "/v1/audit")["items"]
    assert any(
        e["event_type"].endswith("Member.Erased") and e["subject_id"] == j.ada for e in audit
    )
