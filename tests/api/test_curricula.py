"""The curricula endpoints: the catalogue, forks, versions, diffs, module search, isolation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.helpers import PROBLEM, bearer, fetch_token, register_tenant_with_client
from training.bootstrap import Services

CURRICULA_SCOPES = ("curricula:read", "curricula:write")


@dataclass
class Caller:
    """One caller's token. Reads send the position of the caller's last command, so each
    read sees the caller's own writes (``after`` adds another caller's command)."""

    client: TestClient[Any]
    token: str
    position: int = 0

    def headers(self, **extra: str) -> dict[str, str]:
        return {**bearer(self.token), **extra}

    def call(self, method: str, url: str, *, if_match: str | None = None, **kwargs: Any) -> Any:
        extra = {"If-Match": if_match} if if_match else {}
        response = self.client.request(method, url, headers=self.headers(**extra), **kwargs)
        if "training-position" in response.headers:
            self.position = max(self.position, int(response.headers["training-position"]))
        return response

    def read(self, url: str, after: Any = None, **kwargs: Any) -> Any:
        position = self.position
        if after is not None:
            position = max(position, int(after.headers["training-position"]))
        extra = {"Training-Position": str(position)} if position else {}
        return self.client.get(url, headers=self.headers(**extra), **kwargs)


def tenant(services: Services, client: TestClient[Any], scopes: tuple[str, ...]) -> Caller:
    _, credentials = register_tenant_with_client(services, f"c-{uuid.uuid4().hex[:8]}", scopes)
    return Caller(client, fetch_token(client, credentials))


@pytest.fixture(scope="module")
def operator(client: TestClient[Any], operator_token: str) -> Caller:
    return Caller(client, operator_token)


@pytest.fixture(scope="module")
def acme(services: Services, client: TestClient[Any]) -> Caller:
    return tenant(services, client, CURRICULA_SCOPES)


@pytest.fixture(scope="module")
def globex(services: Services, client: TestClient[Any]) -> Caller:
    return tenant(services, client, CURRICULA_SCOPES)


def module(
    key: str,
    *prerequisites: str,
    title: str | None = None,
    format: str = "reading",
    duration_minutes: int = 30,
    targets: tuple[tuple[str, int], ...] = (("python", 2),),
) -> dict[str, Any]:
    return {
        "key": key,
        "title": title or key.title(),
        "description": f"All about {key}.",
        "format": format,
        "duration_minutes": duration_minutes,
        "targets": [{"skill": skill, "level": level} for skill, level in targets],
        "prerequisites": list(prerequisites),
    }


def without_key(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != "key"}


def create(caller: Caller, title: str = "Backend basics", *modules: dict[str, Any]) -> str:
    created = caller.call("POST", "/v1/curricula", json={"title": title, "description": "Start"})
    assert created.status_code == 201, created.text
    curriculum_id = str(created.json()["curriculum_id"])
    for body in modules:
        added = caller.call("POST", f"/v1/curricula/{curriculum_id}/modules", json=body)
        assert added.status_code == 201, added.text
    return curriculum_id


def publish(caller: Caller, curriculum_id: str) -> Any:
    published = caller.call("POST", f"/v1/curricula/{curriculum_id}/publish", json={})
    assert published.status_code == 200, published.text
    return published


def keys(modules: list[dict[str, Any]]) -> list[str]:
    return [m["key"] for m in modules]


def error_fields(response: Any) -> list[str]:
    assert response.headers["content-type"] == PROBLEM, response.text
    return [error.get("field") for error in response.json().get("errors") or []]


def test_the_operator_publishes_to_the_catalogue_and_a_tenant_forks_and_edits(
    operator: Caller, acme: Caller
) -> None:
    created = operator.call("POST", "/v1/curricula", json={"title": "Web", "description": "HTTP"})
    assert created.status_code == 201
    assert created.headers["etag"] == '"1"'
    assert created.json()["catalogue"] is True
    catalogue_id = created.json()["curriculum_id"]
    assert created.headers["location"] == f"/v1/curricula/{catalogue_id}"
    for body in (module("http", targets=(("http-apis", 2),)), module("rest", "http")):
        assert operator.call("POST", f"{created.headers['location']}/modules", json=body).is_success
    published = publish(operator, catalogue_id)
    assert published.json()["version"] == 1
    assert keys(published.json()["modules"]) == ["http", "rest"]

    listed = acme.read("/v1/curricula?scope=catalogue", after=published)
    assert listed.status_code == 200
    [mine] = [c for c in listed.json()["items"] if c["curriculum_id"] == catalogue_id]
    assert (mine["latest_version"], mine["catalogue"], mine["module_count"]) == (1, True, 2)
    own = acme.read("/v1/curricula?scope=tenant").json()["items"]
    assert catalogue_id not in [c["curriculum_id"] for c in own]

    fork = acme.call(
        "POST", f"/v1/curricula/{catalogue_id}/fork", json={"version": 1, "title": "Our web"}
    )
    assert fork.status_code == 201, fork.text
    forked = fork.json()
    fork_url = fork.headers["location"]
    assert (forked["title"], forked["catalogue"]) == ("Our web", False)
    assert (forked["forked_from"], forked["forked_version"]) == (catalogue_id, 1)
    assert keys(forked["modules"]) == ["http", "rest"]
    assert forked["has_unpublished_changes"] is True

    read = acme.read(fork_url, after=fork)
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    assert keys(read.json()["modules"]) == ["http", "rest"]
    own = acme.read("/v1/curricula?scope=tenant").json()["items"]
    assert [c["curriculum_id"] for c in own] == [forked["curriculum_id"]]

    first = publish(acme, forked["curriculum_id"])
    assert first.json()["version"] == 1
    added = acme.call("POST", f"{fork_url}/modules", json=module("graphql", "http"))
    assert added.status_code == 201
    revised_body = without_key(module("rest", "http", duration_minutes=90))
    revised = acme.call("PUT", f"{fork_url}/modules/rest", json=revised_body)
    assert revised.status_code == 200, revised.text
    removed = acme.call("DELETE", f"{fork_url}/modules/graphql")
    assert removed.status_code == 200, removed.text
    assert keys(removed.json()["modules"]) == ["http", "rest"]
    assert acme.call("POST", f"{fork_url}/modules", json=module("grpc", "http")).is_success
    second = publish(acme, forked["curriculum_id"])
    assert second.json()["version"] == 2

    diff = acme.read(f"{fork_url}/diff", params={"from": 1, "to": 2})
    assert diff.status_code == 200, diff.text
    assert diff.json() == {
        "from_version": 1,
        "to_version": 2,
        "added": ["grpc"],
        "removed": [],
        "changed": [{"key": "rest", "fields": ["duration_minutes"]}],
    }
    current = acme.read(fork_url, after=second).json()
    assert (current["latest_version"], current["has_unpublished_changes"]) == (2, False)
    # The catalogue curriculum is untouched by the fork's edits.
    source = acme.read(f"/v1/curricula/{catalogue_id}").json()
    assert (source["latest_version"], source["version"]) == (1, 4)


def test_a_published_version_never_changes(acme: Caller) -> None:
    curriculum_id = create(acme, "Python", module("basics"), module("typing", "basics"))
    url = f"/v1/curricula/{curriculum_id}"
    published = publish(acme, curriculum_id)
    version_one = acme.read(f"{url}/versions/1", after=published)
    assert version_one.status_code == 200
    assert keys(version_one.json()["modules"]) == ["basics", "typing"]
    assert [m["position"] for m in version_one.json()["modules"]] == [1, 2]

    edited = acme.call(
        "PUT", f"{url}/modules/basics", json=without_key(module("basics", title="Renamed"))
    )
    assert edited.status_code == 200
    acme.call("POST", f"{url}/modules", json=module("async", "typing"))
    draft = acme.read(url, after=edited).json()
    assert draft["has_unpublished_changes"] is True
    assert {m["key"]: m["title"] for m in draft["modules"]}["basics"] == "Renamed"
    assert acme.read(f"{url}/versions/1").json() == version_one.json()
    assert acme.read(f"{url}/versions/2").status_code == 404

    publish(acme, curriculum_id)
    nothing_new = acme.call("POST", f"{url}/publish", json={})
    assert nothing_new.status_code == 409
    assert acme.read(f"{url}/versions/1").json() == version_one.json()


def test_the_published_order_puts_prerequisites_first(acme: Caller) -> None:
    curriculum_id = create(
        acme, "Ordering", module("zeta"), module("alpha", "zeta"), module("mid", "alpha")
    )
    published = publish(acme, curriculum_id)
    assert keys(published.json()["modules"]) == ["zeta", "alpha", "mid"]
    version = acme.read(f"/v1/curricula/{curriculum_id}/versions/1", after=published).json()
    assert keys(version["modules"]) == ["zeta", "alpha", "mid"]
    draft = acme.read(f"/v1/curricula/{curriculum_id}").json()
    assert keys(draft["modules"]) == ["alpha", "mid", "zeta"]


def test_a_prerequisite_cycle_is_refused_and_nothing_is_written(
    acme: Caller, services: Services
) -> None:
    curriculum_id = create(acme, "Cycles", module("a"), module("b", "a"))
    url = f"/v1/curricula/{curriculum_id}"
    before = acme.read(url)
    events = services.app.recorder.max_notification_id()

    cycle = acme.call("PUT", f"{url}/modules/a", json=without_key(module("a", "b")))
    assert cycle.status_code == 422
    assert "a → b → a" in cycle.json()["detail"]
    assert error_fields(cycle) == ["prerequisites"]
    unknown = acme.call("POST", f"{url}/modules", json=module("c", "nowhere"))
    assert unknown.status_code == 422
    assert "nowhere" in unknown.json()["detail"]

    assert services.app.recorder.max_notification_id() == events
    after = acme.read(url)
    assert after.headers["etag"] == before.headers["etag"]
    assert after.json()["modules"] == before.json()["modules"]


def test_a_module_required_by_another_cannot_be_removed(acme: Caller) -> None:
    curriculum_id = create(acme, "Removal", module("a"), module("b", "a"))
    refused = acme.call("DELETE", f"/v1/curricula/{curriculum_id}/modules/a")
    assert refused.status_code == 422
    assert error_fields(refused) == ["key"]
    missing = acme.call("DELETE", f"/v1/curricula/{curriculum_id}/modules/nope")
    assert missing.status_code == 404


def test_retiring_keeps_the_history_and_stops_edits(acme: Caller, operator: Caller) -> None:
    curriculum_id = create(acme, "Legacy", module("old", targets=(("java", 4),)))
    url = f"/v1/curricula/{curriculum_id}"
    publish(acme, curriculum_id)
    retired = acme.call("POST", f"{url}/retire", json={"reason": "replaced"})
    assert retired.status_code == 200, retired.text
    assert retired.json()["status"] == "retired"

    assert acme.read(url, after=retired).json()["status"] == "retired"
    assert keys(acme.read(f"{url}/versions/1").json()["modules"]) == ["old"]
    assert acme.read(f"{url}/diff", params={"from": 1, "to": 1}).status_code == 200
    for method, path, body in (
        ("POST", "/modules", module("new")),
        ("PUT", "/modules/old", without_key(module("old", title="Again"))),
        ("DELETE", "/modules/old", None),
        ("PATCH", "", {"title": "Revived"}),
        ("POST", "/publish", {}),
        ("POST", "/retire", {"reason": "twice"}),
        ("POST", "/fork", {"version": 1}),
    ):
        refused = acme.call(method, f"{url}{path}", json=body)
        assert refused.status_code == 409, (method, path, refused.text)
        assert refused.headers["content-type"] == PROBLEM

    retired_list = acme.read("/v1/curricula", params={"scope": "tenant", "status": "retired"})
    assert curriculum_id in [c["curriculum_id"] for c in retired_list.json()["items"]]
    active_list = acme.read("/v1/curricula", params={"scope": "tenant", "status": "active"})
    assert curriculum_id not in [c["curriculum_id"] for c in active_list.json()["items"]]
    modules = acme.read("/v1/modules", params={"curriculum_id": curriculum_id})
    assert modules.json()["items"] == []


def test_modules_are_searched_by_skill_level_and_format(
    services: Services, client: TestClient[Any], operator: Caller
) -> None:
    caller = tenant(services, client, CURRICULA_SCOPES)
    curriculum_id = create(
        caller,
        "Search",
        module("intro", targets=(("python", 2), ("git", 1))),
        module("lab", "intro", format="lab", targets=(("python", 3),)),
        module("review", "lab", format="live_session", targets=(("code-review", 3),)),
        module("project", "review", format="project", targets=(("python", 4), ("git", 3))),
    )
    draft_only = create(caller, "Unpublished", module("secret", targets=(("python", 2),)))
    published = publish(caller, curriculum_id)
    # The draft after publishing is not what the search shows.
    caller.call("POST", f"/v1/curricula/{curriculum_id}/modules", json=module("extra", "intro"))

    def search(**params: Any) -> list[str]:
        response = caller.read("/v1/modules", after=published, params=params)
        assert response.status_code == 200, response.text
        return [item["key"] for item in response.json()["items"]]

    mine = {"curriculum_id": curriculum_id}
    assert search(**mine) == ["intro", "lab", "review", "project"]
    assert search(**mine, skill="python") == ["intro", "lab", "project"]
    assert search(**mine, skill="python", level=3) == ["lab"]
    assert search(**mine, skill="git", level=3) == ["project"]
    assert search(**mine, level=3) == ["lab", "review", "project"]
    assert search(**mine, format="lab") == ["lab"]
    assert search(**mine, format="lab", skill="git") == []
    assert search(curriculum_id=draft_only) == []
    everything = caller.read("/v1/modules", params={"skill": "python"}).json()["items"]
    assert {item["curriculum_id"] for item in everything} >= {curriculum_id}
    assert draft_only not in {item["curriculum_id"] for item in everything}

    # Pages of one never skip nor repeat, whatever else is visible.
    seen: list[tuple[str, str]] = []
    cursor = None
    for _ in range(50):
        params: dict[str, Any] = {"limit": 1, "level": 3}
        if cursor:
            params["cursor"] = cursor
        page = caller.read("/v1/modules", params=params).json()
        seen.extend((item["curriculum_id"], item["key"]) for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    whole = caller.read("/v1/modules", params={"level": 3, "limit": 200}).json()["items"]
    assert seen == [(item["curriculum_id"], item["key"]) for item in whole]
    assert [key for cid, key in seen if cid == curriculum_id] == ["lab", "review", "project"]

    bad = caller.read("/v1/modules", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert error_fields(bad) == ["cursor"]
    for params in ({"level": 8}, {"format": "podcast"}, {"skill": "Not A Code"}):
        refused = caller.read("/v1/modules", params=params)
        assert refused.status_code == 400, params
        assert error_fields(refused) == list(params)


def test_curricula_list_pages_in_creation_order(
    services: Services, client: TestClient[Any]
) -> None:
    caller = tenant(services, client, CURRICULA_SCOPES)
    made = [create(caller, f"Course {n}") for n in range(5)]
    last = caller.call("PATCH", f"/v1/curricula/{made[-1]}", json={"description": "Last"})
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "scope": "tenant"}
        if cursor:
            params["cursor"] = cursor
        page = caller.read("/v1/curricula", after=last, params=params).json()
        seen.extend(item["curriculum_id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made


def test_another_tenants_curriculum_is_not_found(
    acme: Caller, globex: Caller, operator: Caller
) -> None:
    theirs = create(globex, "Private", module("inside"))
    published = publish(globex, theirs)
    url = f"/v1/curricula/{theirs}"
    assert globex.read(url, after=published).status_code == 200
    for caller in (acme, operator):
        for method, path, body in (
            ("GET", "", None),
            ("PATCH", "", {"title": "Mine now"}),
            ("POST", "/modules", module("extra")),
            ("PUT", "/modules/inside", without_key(module("inside"))),
            ("DELETE", "/modules/inside", None),
            ("POST", "/publish", {}),
            ("POST", "/retire", {"reason": "no"}),
            ("GET", "/versions/1", None),
            ("GET", "/diff?from=1&to=1", None),
        ):
            response = caller.call(method, f"{url}{path}", json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert response.headers["content-type"] == PROBLEM
    assert acme.call("POST", f"{url}/fork", json={"version": 1}).status_code == 404
    # A stale If-Match does not reveal the curriculum either.
    stale = acme.call("PATCH", url, json={"title": "x"}, if_match='"99"')
    assert stale.status_code == 404
    listed = acme.read("/v1/curricula").json()["items"]
    assert theirs not in [c["curriculum_id"] for c in listed]
    searched = acme.read("/v1/modules", params={"curriculum_id": theirs}).json()["items"]
    assert searched == []


def test_a_tenant_reads_but_cannot_change_the_catalogue(operator: Caller, acme: Caller) -> None:
    catalogue_id = create(operator, "Catalogue only", module("core"))
    published = publish(operator, catalogue_id)
    url = f"/v1/curricula/{catalogue_id}"
    assert acme.read(url, after=published).status_code == 200
    assert acme.read(f"{url}/versions/1").status_code == 200
    for method, path, body in (
        ("PATCH", "", {"title": "Ours"}),
        ("POST", "/modules", module("extra")),
        ("PUT", "/modules/core", without_key(module("core"))),
        ("DELETE", "/modules/core", None),
        ("POST", "/publish", {}),
        ("POST", "/retire", {"reason": "mine"}),
    ):
        response = acme.call(method, f"{url}{path}", json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert acme.read(url).json()["version"] == 3


def test_only_a_tenant_forks(operator: Caller, acme: Caller) -> None:
    catalogue_id = create(operator, "Forkable", module("one"))
    publish(operator, catalogue_id)
    refused = operator.call("POST", f"/v1/curricula/{catalogue_id}/fork", json={"version": 1})
    assert refused.status_code == 403
    missing = acme.call("POST", f"/v1/curricula/{catalogue_id}/fork", json={"version": 2})
    assert missing.status_code == 404
    # A tenant may also fork one of its own curricula.
    own = create(acme, "Own", module("one"))
    publish(acme, own)
    again = acme.call("POST", f"/v1/curricula/{own}/fork", json={"version": 1})
    assert again.status_code == 201
    assert again.json()["forked_from"] == own


def test_the_operator_sees_only_the_catalogue(operator: Caller, acme: Caller) -> None:
    own = create(acme, "Tenant course")
    catalogue_id = create(operator, "Platform course")
    last = operator.call("PATCH", f"/v1/curricula/{catalogue_id}", json={"title": "Renamed"})
    assert last.status_code == 200
    listed = operator.read("/v1/curricula", after=last, params={"limit": 200}).json()["items"]
    assert catalogue_id in [c["curriculum_id"] for c in listed]
    assert all(c["catalogue"] for c in listed)
    assert own not in [c["curriculum_id"] for c in listed]
    assert operator.read("/v1/curricula", params={"scope": "tenant"}).json()["items"] == []


def test_target_skills_must_be_usable(operator: Caller, acme: Caller) -> None:
    catalogue_id = create(operator, "Skills")
    unknown = operator.call(
        "POST",
        f"/v1/curricula/{catalogue_id}/modules",
        json=module("x", targets=(("python", 2), ("basket-weaving", 3))),
    )
    assert unknown.status_code == 422
    assert error_fields(unknown) == ["modules.x.targets[1].skill"]
    assert "basket-weaving" in unknown.json()["detail"]

    own = create(acme, "Skills too", module("known", targets=(("go", 3),)))
    revised = acme.call(
        "PUT",
        f"/v1/curricula/{own}/modules/known",
        json=without_key(module("known", targets=(("go", 3), ("underwater-rugby", 1)))),
    )
    assert revised.status_code == 422
    assert error_fields(revised) == ["modules.known.targets[1].skill"]
    draft = acme.read(f"/v1/curricula/{own}").json()
    assert draft["modules"][0]["targets"] == [{"skill": "go", "level": 3}]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("", {}, "title"),
        ("", {"title": ""}, "title"),
        ("", {"title": "x", "colour": "red"}, "colour"),
        ("", {"title": "x" * 201}, "title"),
        ("", {"title": "nul\x00"}, "title"),
        ("/modules", {**module("a"), "format": "podcast"}, "format"),
        ("/modules", {**module("a"), "duration_minutes": 1}, "duration_minutes"),
        ("/modules", {**module("a"), "key": "Not A Key"}, "key"),
        ("/modules", {**module("a"), "targets": [{"skill": "python", "level": 9}]}, "level"),
        ("/modules", {**module("a"), "targets": [{"skill": "python"}]}, "targets[0]"),
        ("/modules", without_key(module("a")), "key"),
        ("/fork", {"version": 0}, "version"),
        ("/retire", {"reason": ""}, "reason"),
        ("/publish", {"now": True}, "now"),
    ],
)
def test_malformed_bodies_are_400_naming_the_field(
    acme: Caller, path: str, body: dict[str, Any], field: str
) -> None:
    target = "/v1/curricula" if path == "" else f"/v1/curricula/{uuid.uuid4()}{path}"
    response = acme.call("POST", target, json=body)
    assert response.status_code == 400, response.text
    fields = error_fields(response)
    assert any(name == field or str(name).endswith(f".{field}") for name in fields), fields


def test_malformed_paths_and_queries_are_400(acme: Caller) -> None:
    own = create(acme, "Queries")
    for url, field in (
        (f"/v1/curricula/{own}/versions/first", "version"),
        (f"/v1/curricula/{own}/diff?from=0&to=1", "from"),
        ("/v1/curricula?scope=everything", "scope"),
        ("/v1/curricula?status=asleep", "status"),
    ):
        response = acme.read(url)
        assert response.status_code == 400, (url, response.text)
        assert error_fields(response) == [field]
    missing = acme.read(f"/v1/curricula/{own}/diff?from=1")
    assert missing.status_code == 400
    assert "'to'" in missing.json()["detail"]
    assert acme.read(f"/v1/curricula/{own}/diff?from=1&to=2").status_code == 404


def test_if_match_guards_against_lost_updates(acme: Caller) -> None:
    own = create(acme, "Versions")
    url = f"/v1/curricula/{own}"
    renamed = acme.call("PATCH", url, json={"title": "Renamed"}, if_match='"1"')
    assert renamed.status_code == 200
    assert renamed.headers["etag"] == '"2"'
    assert renamed.json()["description"] == "Start"
    stale = acme.call("PATCH", url, json={"title": "Lost"}, if_match='"1"')
    assert stale.status_code == 412
    assert stale.headers["content-type"] == PROBLEM
    for method, path, body in (
        ("POST", "/modules", module("a")),
        ("POST", "/publish", {}),
        ("POST", "/retire", {"reason": "stale"}),
    ):
        assert acme.call(method, f"{url}{path}", json=body, if_match='"1"').status_code == 412
    added = acme.call("POST", f"{url}/modules", json=module("a"), if_match='"2"')
    assert added.status_code == 201
    assert added.headers["etag"] == '"3"'
    read = acme.read(url, after=added)
    assert read.headers["etag"] == '"3"'
    assert read.json()["title"] == "Renamed"


def test_reading_needs_the_scope(services: Services, client: TestClient[Any]) -> None:
    reader = tenant(services, client, ("curricula:read",))
    nobody = tenant(services, client, ("tenant:read",))
    assert reader.read("/v1/curricula").status_code == 200
    assert reader.read("/v1/modules").status_code == 200
    created = reader.call("POST", "/v1/curricula", json={"title": "No"})
    assert created.status_code == 403
    assert nobody.read("/v1/curricula").status_code == 403
    assert nobody.read("/v1/modules").status_code == 403
