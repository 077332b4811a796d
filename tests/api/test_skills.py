"""Skills and role profiles over HTTP."""

from __future__ import annotations

import uuid
from typing import Any

from litestar.testing import TestClient

from tests.helpers import PROBLEM, TenantUnderTest, bearer, member_token
from training.bootstrap import Services

LEVELS = [f"Level {n} descriptor for the test skill." for n in range(1, 8)]


def test_every_tenant_starts_with_the_default_framework(tenant: TenantUnderTest) -> None:
    framework = tenant.client.get("/v1/skill-framework", headers=tenant.headers()).json()
    assert [level["level"] for level in framework["levels"]] == list(range(1, 8))
    assert len(framework["categories"]) >= 8
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 20}
        if cursor:
            params["cursor"] = cursor
        page = tenant.client.get("/v1/skills", params=params, headers=tenant.headers()).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) >= 40
    assert [s["code"] for s in seen] == sorted(s["code"] for s in seen)
    assert all(len(s["levels"]) == 7 and s["source"] == "default" for s in seen)
    kubernetes = tenant.client.get("/v1/skills/kubernetes", headers=tenant.headers()).json()
    assert kubernetes["category"] == "platform"


def test_a_tenant_adds_renames_and_retires_skills(
    tenant: TenantUnderTest, client: TestClient[Any], services: Services
) -> None:
    added = tenant.client.post(
        "/v1/skills",
        json={"code": "cobol", "name": "COBOL", "category": "programming", "levels": LEVELS},
        headers=tenant.headers(),
    )
    assert added.status_code == 201, added.text
    headers = tenant.headers(added.headers["training-position"])
    assert tenant.client.get("/v1/skills/cobol", headers=headers).json()["source"] == "custom"
    assert (
        tenant.client.post(
            "/v1/skills",
            json={"code": "cobol", "name": "x", "category": "programming", "levels": LEVELS},
            headers=tenant.headers(),
        ).status_code
        == 422
    )

    renamed = tenant.client.patch(
        "/v1/skills/kubernetes", json={"name": "Kubernetes (k8s)"}, headers=tenant.headers()
    )
    assert renamed.status_code == 200
    retired = tenant.client.post("/v1/skills/cobol/retire", json={}, headers=tenant.headers())
    assert retired.status_code == 200
    headers = tenant.headers(retired.headers["training-position"])
    assert (
        tenant.client.get("/v1/skills/kubernetes", headers=headers).json()["name"]
        == "Kubernetes (k8s)"
    )
    active = tenant.client.get("/v1/skills", params={"source": "custom"}, headers=headers).json()[
        "items"
    ]
    assert active == []
    everything = tenant.client.get(
        "/v1/skills", params={"source": "custom", "include_retired": "true"}, headers=headers
    ).json()["items"]
    assert [(s["code"], s["retired"]) for s in everything] == [("cobol", True)]
    assert (
        tenant.client.post("/v1/skills/cobol/retire", json={}, headers=tenant.headers()).status_code
        == 409
    )

    # Another tenant is untouched by all of this.
    other = TenantUnderTest(client, services)
    their = other.client.get("/v1/skills/kubernetes", headers=other.headers()).json()
    assert their["name"] == "Kubernetes"
    assert other.client.get("/v1/skills/cobol", headers=other.headers()).status_code == 404


def test_text_with_a_nul_character_is_refused_and_the_view_keeps_up(
    tenant: TenantUnderTest,
) -> None:
    # Such a skill was accepted, then stopped the skills view of every tenant: PostgreSQL
    # refuses NUL in text.
    for body, field in (
        ({"name": "CO\x00BOL"}, "name"),
        ({"description": "\x00"}, "description"),
        ({"levels": [*LEVELS[:6], "L7\x00"]}, "levels"),
    ):
        skill = {"code": "nul", "name": "N", "category": "programming", "levels": LEVELS, **body}
        refused = tenant.client.post("/v1/skills", json=skill, headers=tenant.headers())
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert field in str(refused.json()["errors"]), refused.json()
    for url, body in (
        ("/v1/skills/python", {"name": "Py\x00"}),
        ("/v1/role-profiles", {"key": "k", "name": "\x00", "targets": [{"skill": "python"}]}),
    ):
        method = "PATCH" if url.endswith("python") else "POST"
        refused = tenant.client.request(method, url, json=body, headers=tenant.headers())
        assert refused.status_code == 400, refused.text
    added = tenant.client.post(
        "/v1/skills",
        json={"code": "fortran", "name": "Fortran", "category": "programming", "levels": LEVELS},
        headers=tenant.headers(),
    )
    headers = tenant.headers(added.headers["training-position"])
    assert tenant.client.get("/v1/skills/fortran", headers=headers).status_code == 200


def test_role_profiles_are_versioned_by_revision(tenant: TenantUnderTest) -> None:
    defined = tenant.client.post(
        "/v1/role-profiles",
        json={
            "key": "backend-l3",
            "name": "Backend Engineer L3",
            "targets": [{"skill": "python", "level": 3}, {"skill": "sql", "level": 3}],
        },
        headers=tenant.headers(),
    )
    assert defined.status_code == 201, defined.text
    assert defined.json()["revision"] == 1
    revised = tenant.client.put(
        "/v1/role-profiles/backend-l3",
        json={
            "name": "Backend Engineer L3",
            "targets": [{"skill": "python", "level": 4}, {"skill": "sql", "level": 3}],
        },
        headers={**tenant.headers(), "If-Match": defined.headers["etag"]},
    )
    assert revised.status_code == 200, revised.text
    assert revised.json()["revision"] == 2
    same = tenant.client.put(
        "/v1/role-profiles/backend-l3",
        json={
            "name": "Backend Engineer L3",
            "targets": [{"skill": "sql", "level": 3}, {"skill": "python", "level": 4}],
        },
        headers=tenant.headers(),
    )
    assert same.json()["revision"] == 2  # the same targets in another order are no revision
    stale = tenant.client.put(
        "/v1/role-profiles/backend-l3",
        json={"name": "x", "targets": [{"skill": "python", "level": 5}]},
        headers={**tenant.headers(), "If-Match": defined.headers["etag"]},
    )
    assert stale.status_code == 412
    headers = tenant.headers(revised.headers["training-position"])
    history = tenant.client.get("/v1/role-profiles/backend-l3/revisions", headers=headers).json()[
        "items"
    ]
    assert [(r["revision"], r["targets"][0]["level"]) for r in history] == [(1, 3), (2, 4)]
    listed = tenant.client.get("/v1/role-profiles", headers=headers).json()["items"]
    assert [p["key"] for p in listed] == ["backend-l3"]


def test_role_profile_input_is_checked(tenant: TenantUnderTest) -> None:
    unknown = tenant.client.post(
        "/v1/role-profiles",
        json={"key": "x", "name": "X", "targets": [{"skill": "astrology", "level": 3}]},
        headers=tenant.headers(),
    )
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == PROBLEM
    assert unknown.json()["errors"][0]["field"] == "targets[0].skill"
    for targets, field in (([{"skill": "python", "level": 8}], "level"), ([], "targets")):
        response = tenant.client.post(
            "/v1/role-profiles",
            json={"key": "y", "name": "Y", "targets": targets},
            headers=tenant.headers(),
        )
        assert response.status_code == 400
        assert field in str(response.json()["errors"])
    missing = tenant.client.get("/v1/role-profiles/nope", headers=tenant.headers())
    assert missing.status_code == 404
    # Codes and keys longer than any that can exist are refused at the boundary.
    for url, field in (
        (f"/v1/role-profiles/{'k' * 65}", "key"),
        (f"/v1/skills/{'s' * 65}", "code"),
    ):
        too_long = tenant.client.get(url, headers=tenant.headers())
        assert too_long.status_code == 400, too_long.text
        assert too_long.headers["content-type"] == PROBLEM
        assert too_long.json()["errors"][0]["field"] == field, too_long.json()


def test_engineers_read_skills_but_do_not_change_them(
    tenant: TenantUnderTest, services: Services
) -> None:
    engineer = tenant.add(f"SK{uuid.uuid4().hex[:6]}").json()
    token = member_token(services, tenant.tenant_id, uuid.UUID(engineer["member_id"]))
    assert tenant.client.get("/v1/skills", headers=bearer(token)).status_code == 200
    assert (
        tenant.client.post("/v1/skills/python/retire", json={}, headers=bearer(token)).status_code
        == 403
    )
