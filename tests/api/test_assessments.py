"""Assessments over HTTP: adaptive tests, profiles, evidence, group views, items, calibration."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.helpers import PROBLEM, bearer, member_token
from tests.helpers import TenantUnderTest as Tenant
from training.assessments.domain.attempts import AssessmentAttempt
from training.assessments.domain.items import Item, ItemKind, Option
from training.assessments.domain.profile import EVIDENCE_SE, theta_for_level
from training.assessments.queries import starter_bank
from training.bootstrap import Services

SKILL = "python"


# The tenants' private items the tests add, so that simulated engineers can answer them.
PRIVATE: dict[str, Item] = {}


def key_of(item_id: str) -> Item:
    for bank in starter_bank().items.values():
        if item_id in bank:
            return bank[item_id][0]
    return PRIVATE[item_id]


def wrong_answer(item: Item) -> list[str]:
    ids = [o.id for o in item.options]
    if item.kind is ItemKind.ORDERING:
        reversed_ids = list(reversed(item.answer))
        return reversed_ids if tuple(reversed_ids) != item.answer else ids[1:] + ids[:1]
    return [next(i for i in ids if i not in item.answer)]


@dataclass
class Engineer:
    """A person of the tenant with their own token; records every answer they are given."""

    tenant: Tenant
    member_id: str
    token: str
    position: str
    bodies: list[Any] = field(default_factory=list)
    administered: set[str] = field(default_factory=set)

    def headers(self) -> dict[str, str]:
        return {**bearer(self.token), "Training-Position": self.position}

    def call(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.tenant.client.request(method, url, headers=self.headers(), **kwargs)
        if "training-position" in response.headers:
            self.position = response.headers["training-position"]
        if response.content:
            body = response.json()
            self.bodies.append(body)
            for attempt in body.get("started", [body]) if isinstance(body, dict) else []:
                if isinstance(attempt, dict) and attempt.get("item"):
                    self.administered.add(attempt["item"]["item_id"])
        return response

    def start(self, skill: str = SKILL) -> Any:
        return self.call("POST", "/v1/assessments", json={"skill": skill})

    def answer(self, attempt_id: str, item_id: str, answer: list[str]) -> Any:
        return self.call(
            "POST",
            f"/v1/assessments/{attempt_id}/answers",
            json={"item_id": item_id, "answer": answer},
        )

    def take(self, skill: str = SKILL, *, strong: bool = True) -> dict[str, Any]:
        """An adaptive test to its end, answering every item right (strong) or wrong."""
        started = self.start(skill)
        assert started.status_code == 201, started.text
        return self.finish(started.json(), strong=strong)

    def finish(self, state: dict[str, Any], *, strong: bool = True) -> dict[str, Any]:
        while state["status"] == "in_progress":
            item = key_of(state["item"]["item_id"])
            answer = list(item.answer) if strong else wrong_answer(item)
            answered = self.answer(state["attempt_id"], item.item_id, answer)
            assert answered.status_code == 200, answered.text
            state = answered.json()
        return state


def engineer(tenant: Tenant, external_id: str, **fields: Any) -> Engineer:
    created = tenant.add(external_id, **fields)
    assert created.status_code == 201, created.text
    member_id = created.json()["member_id"]
    token = member_token(tenant.services, tenant.tenant_id, uuid.UUID(member_id))
    return Engineer(tenant, member_id, token, created.headers["training-position"])


def walk(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """Every (path, key or leaf) of a JSON document; keys are reported as ``path.#key``."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield f"{path}.#{key}", key
            yield from walk(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from walk(inner, f"{path}[{index}]")
    else:
        yield path, value


OPTION_TEXT = re.compile(r"\.item\.options\[\d+\]\.text$")


def assert_no_key_revealed(bodies: list[Any], administered: set[str]) -> None:
    """No response names a key: no "answer" (or similar) member anywhere, and the texts of
    the right options appear only as one option among the others of the item shown."""
    assert administered
    key_texts = {
        option.text
        for item_id in administered
        for option in key_of(item_id).options
        if option.id in key_of(item_id).answer
    }
    for body in bodies:
        for path, value in walk(body):
            if "#" in path.rsplit(".", 1)[-1]:
                assert value not in {"answer", "answers", "key", "correct", "responses"}, path
            elif isinstance(value, str) and value in key_texts:
                assert OPTION_TEXT.search(path), (path, value)
        item = body.get("item") if isinstance(body, dict) else None
        if item:
            stored = key_of(item["item_id"])
            assert sorted(o["id"] for o in item["options"]) == sorted(o.id for o in stored.options)


def test_an_engineer_takes_an_adaptive_test_without_seeing_a_key(tenant: Tenant) -> None:
    strong = engineer(tenant, "E1")
    final = strong.take(strong=True)
    assert final["status"] == "completed"
    assert final["item"] is None
    result = final["result"]
    assert 8 <= result["items"] <= 25
    assert final["answered"] == result["items"]
    assert 0 < result["se"] <= 0.6
    assert result["level"] in range(1, 8)
    assert result["level"] >= 5  # every answer right
    assert result["parameter_version"] == 0
    assert final["percentile"] is None  # nobody else has a result yet
    attempt_id = final["attempt_id"]

    read = strong.call("GET", f"/v1/assessments/{attempt_id}")
    assert read.status_code == 200, read.text
    assert read.json()["result"] == result
    assert read.json()["rescored"] == []
    history = strong.call("GET", "/v1/me/assessments")
    assert history.status_code == 200, history.text
    assert [a["attempt_id"] for a in history.json()["items"]] == [attempt_id]
    assert history.json()["items"][0]["level"] == result["level"]
    profile = strong.call("GET", f"/v1/members/{strong.member_id}/skill-profile")
    assert profile.status_code == 200, profile.text
    assert_no_key_revealed(strong.bodies, strong.administered)

    weak = engineer(tenant, "E2")
    low = weak.take(strong=False)
    assert low["result"]["level"] <= 3
    assert low["result"]["theta"] < result["theta"]
    assert low["percentile"] == 0.0
    assert_no_key_revealed(weak.bodies, weak.administered)
    strong.position = weak.position  # reads the views once they hold the other's result
    again = strong.call("GET", f"/v1/assessments/{attempt_id}")
    assert again.json()["percentile"] == 100.0


def test_one_attempt_at_a_time_and_a_cool_down_between_retakes(tenant: Tenant) -> None:
    person = engineer(tenant, "E10")
    first = person.start()
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"/v1/assessments/{first.json()['attempt_id']}"
    second = person.start()
    assert second.status_code == 409
    assert second.headers["content-type"] == PROBLEM
    assert "in progress" in second.json()["detail"]
    other_skill = person.start("sql")
    assert other_skill.status_code == 201  # one attempt per skill at a time

    abandoned = person.call(
        "POST", f"/v1/assessments/{first.json()['attempt_id']}/abandon", json={"reason": "later"}
    )
    assert abandoned.status_code == 200, abandoned.text
    assert abandoned.json()["status"] == "abandoned"
    assert abandoned.json()["item"] is None
    again = person.call("POST", f"/v1/assessments/{first.json()['attempt_id']}/abandon")
    assert again.status_code == 409

    retake = person.start()  # abandoning starts no cool-down
    assert retake.status_code == 201, retake.text
    person.finish(retake.json())
    early = person.start()
    assert early.status_code == 409
    allowed = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    assert allowed in early.json()["detail"]

    changed = tenant.client.put(
        "/v1/training-policy",
        json={"at_risk_threshold": 20, "retake_cooldown_days": 0},
        headers=tenant.headers(),
    )
    assert changed.status_code == 200, changed.text
    later = person.start()
    assert later.status_code == 201, later.text


def test_an_answer_counts_once_and_must_be_for_the_current_item(
    tenant: Tenant, services: Services
) -> None:
    person = engineer(tenant, "E20")
    state = person.start().json()
    attempt_id, item_id = state["attempt_id"], state["item"]["item_id"]
    answer = list(key_of(item_id).answer)
    first = person.answer(attempt_id, item_id, answer)
    assert first.status_code == 200, first.text
    repeated = person.answer(attempt_id, item_id, answer)
    assert repeated.status_code == 200
    assert repeated.json() == first.json()
    changed_mind = person.answer(attempt_id, item_id, wrong_answer(key_of(item_id)))
    assert changed_mind.json() == first.json()
    recorded = [
        e
        for e in services.app.events.get(uuid.UUID(attempt_id))
        if isinstance(e, AssessmentAttempt.ResponseRecorded)
    ]
    assert len(recorded) == 1

    stranger = person.answer(attempt_id, "sql-001", ["a"])
    assert stranger.status_code == 422
    assert stranger.json()["errors"][0]["field"] == "item_id"
    current = first.json()["item"]["item_id"]
    unknown_option = person.answer(attempt_id, current, ["zz"])
    assert unknown_option.status_code == 422
    assert unknown_option.json()["errors"][0]["field"] == "answer"
    missing = person.call("POST", f"/v1/assessments/{uuid.uuid4()}/answers", json=state_body())
    assert missing.status_code == 404


def state_body() -> dict[str, Any]:
    return {"item_id": "python-001", "answer": ["a"]}


def test_malformed_requests_are_refused_naming_the_field(tenant: Tenant) -> None:
    person = engineer(tenant, "E30")
    for body, field_name in (
        ({}, "skill"),
        ({"skill": 5}, "skill"),
        ({"skill": "python", "extra": 1}, "extra"),
        ({"skill": "Not A Code"}, "skill"),
    ):
        refused = person.call("POST", "/v1/assessments", json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert refused.headers["content-type"] == PROBLEM
        assert field_name in refused.json()["detail"], refused.json()
    broken = person.tenant.client.post(
        "/v1/assessments",
        content=b"{not json",
        headers={**person.headers(), "Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    no_bank = person.start("mentoring")
    assert no_bank.status_code == 422
    assert no_bank.json()["errors"][0]["field"] == "skill"
    state = person.start().json()
    for body, field_name in (
        ({"item_id": state["item"]["item_id"]}, "answer"),
        ({"item_id": state["item"]["item_id"], "answer": "a"}, "answer"),
        ({"item_id": "", "answer": ["a"]}, "item_id"),
    ):
        refused = person.call("POST", f"/v1/assessments/{state['attempt_id']}/answers", json=body)
        assert refused.status_code == 400, (body, refused.text)
        assert field_name in refused.json()["detail"]


def test_malformed_path_parameters_are_refused_before_any_lookup(tenant: Tenant) -> None:
    # A version that is not a number once reached int() and answered 500.
    for url in (
        "/v1/item-calibrations/latest/rescore",
        "/v1/item-calibrations/-1/rescore",
        "/v1/item-calibrations/1234567890/rescore",
    ):
        refused = tenant.client.post(url, headers=tenant.headers())
        assert refused.status_code == 400, (url, refused.text)
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["errors"][0]["field"] == "version", refused.json()
    too_long = tenant.client.get(f"/v1/items/{'x' * 129}", headers=tenant.headers())
    assert too_long.status_code == 400, too_long.text
    assert too_long.json()["errors"][0]["field"] == "item_id", too_long.json()


def test_only_a_person_takes_a_test(tenant: Tenant) -> None:
    client = tenant.client
    assert (
        client.post("/v1/assessments", json={"skill": SKILL}, headers=tenant.headers()).status_code
        == 403
    )
    assert (
        client.post(
            "/v1/assessment-batteries", json={"role_profile_key": "x"}, headers=tenant.headers()
        ).status_code
        == 403
    )
    assert client.get("/v1/me/assessments", headers=tenant.headers()).status_code == 403
    assert (
        client.get(f"/v1/assessments/{uuid.uuid4()}", headers=tenant.headers()).status_code == 403
    )


def test_a_battery_starts_each_skill_of_a_role_profile_that_has_items(tenant: Tenant) -> None:
    defined = tenant.client.post(
        "/v1/role-profiles",
        json={
            "key": "backend",
            "name": "Backend",
            "targets": [
                {"skill": "python", "level": 4},
                {"skill": "sql", "level": 3},
                {"skill": "mentoring", "level": 3},
            ],
        },
        headers=tenant.headers(),
    )
    assert defined.status_code == 201, defined.text
    person = engineer(tenant, "E40")
    battery = person.call("POST", "/v1/assessment-batteries", json={"role_profile_key": "backend"})
    assert battery.status_code == 201, battery.text
    body = battery.json()
    assert sorted(a["skill"] for a in body["started"]) == ["python", "sql"]
    assert all(a["item"] is not None for a in body["started"])
    assert [s["skill"] for s in body["skipped"]] == ["mentoring"]
    assert "item bank" in body["skipped"][0]["reason"]
    again = person.call("POST", "/v1/assessment-batteries", json={"role_profile_key": "backend"})
    assert again.status_code == 422  # everything is in progress or has no items
    unknown = person.call("POST", "/v1/assessment-batteries", json={"role_profile_key": "nope"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "role_profile_key"
    assert_no_key_revealed(person.bodies, person.administered)


def profile_of(
    client: TestClient[Any], member_id: str, headers: dict[str, str], **params: str
) -> Any:
    return client.get(f"/v1/members/{member_id}/skill-profile", params=params, headers=headers)


def test_managers_and_hr_see_levels_and_se_never_responses(tenant: Tenant) -> None:
    manager = engineer(tenant, "M50", roles=["manager"])
    person = engineer(tenant, "E50", manager_id=manager.member_id)
    colleague = engineer(tenant, "E51")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    before = profile_of(tenant.client, person.member_id, person.headers())
    assert before.status_code == 200, before.text
    assert before.json()["skills"] == []

    final = person.take()
    manager.position = person.position
    for headers in (manager.headers(), tenant.headers(person.position), person.headers()):
        seen = profile_of(tenant.client, person.member_id, headers)
        assert seen.status_code == 200, seen.text
        body = seen.json()
        assert [s["skill"] for s in body["skills"]] == [SKILL]
        entry = body["skills"][0]
        assert entry["level"] == final["result"]["level"]
        assert entry["se"] == pytest.approx(final["result"]["se"])
        assert [(s["kind"], s["id"]) for s in entry["sources"]] == [
            ("assessment", final["attempt_id"])
        ]
        keys = {value for path, value in walk(body) if "#" in path.rsplit(".", 1)[-1]}
        assert not keys & {"responses", "item", "item_id", "answer", "correct", "options"}
    old = profile_of(tenant.client, person.member_id, manager.headers(), as_of=yesterday)
    assert old.json()["skills"] == []
    today = datetime.now(UTC).date().isoformat()
    now = profile_of(tenant.client, person.member_id, manager.headers(), as_of=today)
    assert [s["skill"] for s in now.json()["skills"]] == [SKILL]
    assert profile_of(tenant.client, person.member_id, colleague.headers()).status_code == 403
    assert (
        profile_of(
            tenant.client, person.member_id, manager.headers(), as_of="1900-01-01"
        ).status_code
        == 422
    )
    assert (
        profile_of(tenant.client, person.member_id, manager.headers(), as_of="soon").status_code
        == 400
    )
    # A manager sees the attempt only through the profile, never the attempt itself.
    peek = tenant.client.get(f"/v1/assessments/{final['attempt_id']}", headers=manager.headers())
    assert peek.status_code == 404


def test_evidence_moves_the_profile_by_its_documented_weight(tenant: Tenant) -> None:
    manager = engineer(tenant, "M60", roles=["manager"])
    person = engineer(tenant, "E60", manager_id=manager.member_id)
    colleague = engineer(tenant, "E61")
    result = person.take(strong=False)["result"]
    manager.position = person.position
    cut_scores = starter_bank().cut_scores

    recorded = manager.call(
        "POST",
        f"/v1/members/{person.member_id}/evidence",
        json={
            "kind": "code_review",
            "skill": SKILL,
            "observed_level": 7,
            "note": "Designed the retry module",
            "link": "https://git.example/pr/1",
        },
    )
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["observed_level"] == 7
    profile = profile_of(tenant.client, person.member_id, manager.headers()).json()
    entry = profile["skills"][0]
    w_a, w_e = 1 / result["se"] ** 2, 1 / EVIDENCE_SE**2
    expected = (w_a * result["theta"] + w_e * theta_for_level(7, cut_scores)) / (w_a + w_e)
    assert entry["theta"] == pytest.approx(expected, abs=1e-3)
    assert entry["theta"] > result["theta"]  # a strong review raises the estimate
    assert entry["se"] == pytest.approx((w_a + w_e) ** -0.5, abs=1e-3)
    assert entry["level"] == cut_scores.level_for(entry["theta"])
    assert [s["kind"] for s in entry["sources"]] == ["assessment", "code_review"]

    by_hr = tenant.client.post(
        f"/v1/members/{person.member_id}/evidence",
        json={"kind": "project_review", "skill": SKILL, "observed_level": 1, "note": "Late"},
        headers=tenant.headers(),
    )
    assert by_hr.status_code == 201, by_hr.text
    reviewed = profile_of(
        tenant.client, person.member_id, tenant.headers(by_hr.headers["training-position"])
    ).json()["skills"][0]
    # Each review counts with the same documented weight, and pulls the estimate towards the
    # middle of its level's band, from whichever side: an engineer who got every item wrong
    # can measure below the middle of level 1, and then a level-1 review raises the estimate.
    w_r, low = 1 / EVIDENCE_SE**2, theta_for_level(1, cut_scores)
    pooled = (w_a * result["theta"] + w_e * theta_for_level(7, cut_scores) + w_r * low) / (
        w_a + w_e + w_r
    )
    assert reviewed["theta"] == pytest.approx(pooled, abs=1e-3)
    assert reviewed["se"] == pytest.approx((w_a + w_e + w_r) ** -0.5, abs=1e-3)
    assert (reviewed["theta"] - entry["theta"]) * (low - entry["theta"]) > 0
    assert [s["kind"] for s in reviewed["sources"]] == [
        "assessment",
        "code_review",
        "project_review",
    ]
    # Evidence alone makes a profile for a skill never assessed.
    alone = manager.call(
        "POST",
        f"/v1/members/{person.member_id}/evidence",
        json={"kind": "code_review", "skill": "sql", "observed_level": 4, "note": "Solid"},
    )
    assert alone.status_code == 201
    sql = profile_of(tenant.client, person.member_id, manager.headers()).json()["skills"][1]
    assert (sql["skill"], sql["level"], sql["se"]) == ("sql", 4, EVIDENCE_SE)

    not_the_manager = colleague.call(
        "POST",
        f"/v1/members/{person.member_id}/evidence",
        json={"kind": "code_review", "skill": SKILL, "observed_level": 3, "note": "x"},
    )
    assert not_the_manager.status_code == 403
    for body, field_name in (
        (
            {"kind": "code_review", "skill": SKILL, "observed_level": 9, "note": "x"},
            "observed_level",
        ),
        ({"kind": "gossip", "skill": SKILL, "observed_level": 3, "note": "x"}, "kind"),
        (
            {
                "kind": "code_review",
                "skill": SKILL,
                "observed_level": 3,
                "note": "x",
                "link": "http://a.b",
            },
            "link",
        ),
        ({"kind": "code_review", "skill": SKILL, "observed_level": 3, "note": "a\u0000b"}, "note"),
    ):
        refused = tenant.client.post(
            f"/v1/members/{person.member_id}/evidence", json=body, headers=tenant.headers()
        )
        assert refused.status_code == 400, (body, refused.text)
        assert field_name in refused.json()["detail"]
    unknown_skill = tenant.client.post(
        f"/v1/members/{person.member_id}/evidence",
        json={"kind": "code_review", "skill": "cobol", "observed_level": 3, "note": "x"},
        headers=tenant.headers(),
    )
    assert unknown_skill.status_code == 422
    assert unknown_skill.json()["errors"][0]["field"] == "skill"


def test_group_views_hide_skills_fewer_than_five_people_have_a_result(tenant: Tenant) -> None:
    people = [engineer(tenant, f"G{n}", team="Guild") for n in range(5)]
    engineer(tenant, "G-other", team="Other").take()
    for person in people[:4]:
        person.take(strong=people.index(person) % 2 == 0)
    people[0].take("sql")

    def summary(**params: str) -> Any:
        position = max((p.position for p in people), key=int)
        return tenant.client.get(
            "/v1/skill-summary", params=params, headers=tenant.headers(position)
        )

    four = summary(team="Guild")
    assert four.status_code == 200, four.text
    assert four.json()["skills"] == [
        {"skill": "python", "suppressed": True, "reason": "fewer than 5 people"},
        {"skill": "sql", "suppressed": True, "reason": "fewer than 5 people"},
    ]
    people[4].take()
    five = summary(team="Guild").json()
    python = five["skills"][0]
    assert python["skill"] == "python"
    assert python["suppressed"] is False
    assert python["people"] == 5
    assert 1 <= python["mean_level"] <= 7
    assert 0 < python["mean_se"] < 1
    assert five["skills"][1]["suppressed"] is True

    assert summary().status_code == 400
    assert summary(team="Guild", cohort_id=str(uuid.uuid4())).status_code == 400
    assert summary(cohort_id=str(uuid.uuid4())).status_code == 404
    assert summary(team="Nobody").json()["skills"] == []
    engineer_view = tenant.client.get(
        "/v1/skill-summary", params={"team": "Guild"}, headers=people[0].headers()
    )
    assert engineer_view.status_code == 403


def private_item(item_id: str, **changes: Any) -> dict[str, Any]:
    body = {
        "item_id": item_id,
        "skill": SKILL,
        "kind": "single_choice",
        "stem": "What does `len({1, 1, 2})` return?",
        "options": [{"id": "a", "text": "2"}, {"id": "b", "text": "3"}],
        "answer": ["a"],
        "time_limit_seconds": 60,
        "difficulty": -1.0,
        "discrimination": 1.2,
    }
    body.update(changes)
    PRIVATE[body["item_id"]] = Item(
        body["item_id"],
        body["skill"],
        ItemKind(body["kind"]),
        body["stem"],
        None,
        tuple(Option(o["id"], o["text"]) for o in body["options"]),
        tuple(body["answer"]),
        body["time_limit_seconds"],
    )
    return body


def test_private_items_calibration_and_rescoring_keep_the_original_result(
    tenant: Tenant, client: TestClient[Any], services: Services
) -> None:
    added = client.post("/v1/items", json=private_item("acme-py-1"), headers=tenant.headers())
    assert added.status_code == 201, added.text
    assert added.json()["version"] == 1
    assert added.json()["answer"] == ["a"]
    duplicate = client.post("/v1/items", json=private_item("acme-py-1"), headers=tenant.headers())
    assert duplicate.status_code == 422
    starter = client.post("/v1/items", json=private_item("python-001"), headers=tenant.headers())
    assert starter.status_code == 422
    bad_key = client.post(
        "/v1/items", json=private_item("acme-py-2", answer=["z"]), headers=tenant.headers()
    )
    assert bad_key.status_code == 422
    assert bad_key.json()["errors"][0]["field"] == "answer"
    revised = client.put(
        "/v1/items/acme-py-1",
        json={
            k: v
            for k, v in private_item("x", stem="What is `len({1, 1, 2})`?").items()
            if k not in ("item_id", "skill", "difficulty", "discrimination")
        },
        headers=tenant.headers(),
    )
    assert revised.status_code == 200, revised.text
    assert revised.json()["version"] == 2
    listed = client.get("/v1/items", params={"skill": SKILL}, headers=tenant.headers())
    assert [(i["item_id"], i["version"]) for i in listed.json()["items"]] == [("acme-py-1", 2)]
    assert client.get("/v1/items", params={"skill": "sql"}, headers=tenant.headers()).json() == {
        "items": [],
        "next_cursor": None,
    }
    missing = client.put("/v1/items/nope", json={"kind": "single_choice"}, headers=tenant.headers())
    assert missing.status_code == 400
    absent = client.put(
        "/v1/items/nope",
        json={
            k: v
            for k, v in private_item("x").items()
            if k not in ("item_id", "skill", "difficulty", "discrimination")
        },
        headers=tenant.headers(),
    )
    assert absent.status_code == 404

    people = [engineer(tenant, f"C{n}") for n in range(3)]
    finals = [p.take(strong=n != 1) for n, p in enumerate(people)]
    assert engineer(tenant, "C9").call("GET", "/v1/items").status_code == 403
    position = max((p.position for p in people), key=int)
    calibrated = client.post(
        "/v1/item-calibrations", params={"min_responses": 1}, headers=tenant.headers(position)
    )
    assert calibrated.status_code == 201, calibrated.text
    body = calibrated.json()
    assert body["version"] == 1
    assert body["responses_used"] == sum(f["result"]["items"] for f in finals)
    assert body["changed"] >= 1
    position = calibrated.headers["training-position"]
    versions = client.get("/v1/item-calibrations", headers=tenant.headers(position))
    assert [v["version"] for v in versions.json()["items"]] == [1]

    rescored = client.post("/v1/item-calibrations/1/rescore", headers=tenant.headers(position))
    assert rescored.status_code == 200, rescored.text
    assert rescored.json() == {"version": 1, "rescored": 3, "skipped": 0}
    position = rescored.headers["training-position"]
    twice = client.post("/v1/item-calibrations/1/rescore", headers=tenant.headers(position))
    assert twice.json()["rescored"] == 0
    assert (
        client.post("/v1/item-calibrations/7/rescore", headers=tenant.headers()).status_code == 404
    )

    person, final = people[0], finals[0]
    person.position = position
    read = person.call("GET", f"/v1/assessments/{final['attempt_id']}").json()
    assert read["result"] == final["result"]  # the original stays
    assert [r["parameter_version"] for r in read["rescored"]] == [1]
    assert read["rescored"][0]["items"] == final["result"]["items"]
    profile = profile_of(client, person.member_id, tenant.headers(position)).json()
    assert profile["skills"][0]["theta"] == pytest.approx(read["rescored"][0]["theta"])
    # New attempts use the new version.
    changed = client.put(
        "/v1/training-policy",
        json={"at_risk_threshold": 20, "retake_cooldown_days": 0},
        headers=tenant.headers(),
    )
    assert changed.status_code == 200
    assert person.start().status_code == 201
    history = person.call("GET", "/v1/me/assessments").json()["items"]
    assert history[0]["parameter_version"] == 1
    assert history[1]["parameter_version"] == 0


def test_another_tenant_sees_nothing(
    tenant: Tenant, client: TestClient[Any], services: Services
) -> None:
    person = engineer(tenant, "X1")
    final = person.take()
    other = Tenant(client, services)
    stranger = engineer(other, "X1")
    attempt = f"/v1/assessments/{final['attempt_id']}"
    assert stranger.call("GET", attempt).status_code == 404
    assert stranger.call("POST", f"{attempt}/answers", json=state_body()).status_code == 404
    assert stranger.call("POST", f"{attempt}/abandon", json={}).status_code == 404
    hr = other.headers()
    assert profile_of(client, person.member_id, hr).status_code == 404
    evidence = client.post(
        f"/v1/members/{person.member_id}/evidence",
        json={"kind": "code_review", "skill": SKILL, "observed_level": 3, "note": "x"},
        headers=hr,
    )
    assert evidence.status_code == 404
    assert client.get("/v1/skill-summary", params={"team": "x"}, headers=hr).json()["skills"] == []
    added = client.post("/v1/items", json=private_item("mine-1"), headers=tenant.headers())
    assert added.status_code == 201
    assert client.get("/v1/items/mine-1", headers=hr).status_code == 404
    revision = {
        k: v
        for k, v in private_item("x").items()
        if k not in ("item_id", "skill", "difficulty", "discrimination")
    }
    assert client.put("/v1/items/mine-1", json=revision, headers=hr).status_code == 404
    calibrated = client.post(
        "/v1/item-calibrations",
        params={"min_responses": 1},
        headers=tenant.headers(person.position),
    )
    assert calibrated.status_code == 201
    assert client.post("/v1/item-calibrations/1/rescore", headers=hr).status_code == 404
    assert stranger.call("GET", "/v1/me/assessments").json()["items"] == []
