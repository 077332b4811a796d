"""The operations of ``contracts/openapi.json``, and a seeded world to call them in.

Tests generated from the OpenAPI document (bad input, pagination) need real ids for path
parameters and lists long enough to page: ``build_world`` seeds a tenant the way the fuzzing
does (``seed_world``) and adds a second of most things.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from litestar.testing import TestClient

from tests.api.test_fuzz import Caller, seed_world
from training.bootstrap import Services
from training.contracts import CONTRACTS_DIR

DOCUMENT: dict[str, Any] = json.loads((CONTRACTS_DIR / "openapi.json").read_text())
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    spec: dict[str, Any]

    def takes(self, location: str, name: str) -> bool:
        return any(
            p.get("in") == location and p.get("name", "").lower() == name.lower()
            for p in self.spec.get("parameters", [])
        )

    @property
    def json_body(self) -> bool:
        content = self.spec.get("requestBody", {}).get("content", {})
        return "application/json" in content

    def __str__(self) -> str:
        return self.operation_id


def operations() -> list[Operation]:
    return [
        Operation(method, path, spec["operationId"], spec)
        for path, item in sorted(DOCUMENT["paths"].items())
        for method, spec in item.items()
        if method in METHODS
    ]


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@dataclass
class World:
    callers: dict[str, Caller]

    def url(self, operation: Operation, caller: Caller) -> str:
        parts = []
        for part in operation.path.split("/"):
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                if name == "key" and "role-profiles" in operation.path:
                    name = "profile_key"
                parts.append((caller.known.get(name) or [str(uuid.uuid4())])[0])
            else:
                parts.append(part)
        return "/".join(parts)


def build_world(client: TestClient[Any], services: Services) -> World:
    seeded = seed_world(client, services)
    headers = seeded.client.headers

    def created(response: Any) -> Any:
        assert response.status_code in (200, 201, 202), response.text
        headers["Training-Position"] = response.headers.get(
            "training-position", headers["Training-Position"]
        )
        return response.json()

    profile = {
        "key": "world-profile",
        "name": "World",
        "targets": [{"skill": "python", "level": 3}],
    }
    created(client.post("/v1/role-profiles", json=profile, headers=headers))
    revised = {"name": "World, revised", "targets": profile["targets"]}
    created(client.put("/v1/role-profiles/world-profile", json=revised, headers=headers))
    second = {**profile, "key": "world-profile-2"}
    created(client.post("/v1/role-profiles", json=second, headers=headers))
    for n in range(2):
        csv = f"external_id,display_name\nWORLD-IMP-{n},Imported {n}\n".encode()
        imported = created(
            client.post(
                "/v1/member-imports", content=csv, headers={**headers, "content-type": "text/csv"}
            )
        )
        wait_for_import(client, imported["status_url"], headers)
    for n in range(3):
        item = {
            "item_id": f"world-py-{n}",
            "skill": "python",
            "kind": "single_choice",
            "stem": f"What does `len({{1, {n}}})` return?",
            "options": [{"id": "a", "text": "2"}, {"id": "b", "text": "1"}],
            "answer": ["a" if n else "b"],
            "time_limit_seconds": 60,
            "difficulty": 0.0,
        }
        created(client.post("/v1/items", json=item, headers=headers))

    # A second published curriculum with a cohort, so that people have two cohorts to page.
    curriculum = created(
        client.post("/v1/curricula", json={"title": "Second course"}, headers=headers)
    )
    curriculum_id = curriculum["curriculum_id"]
    module = {
        "key": "second",
        "title": "Second",
        "format": "reading",
        "duration_minutes": 30,
        "targets": [{"skill": "python", "level": 3}],
    }
    created(client.post(f"/v1/curricula/{curriculum_id}/modules", json=module, headers=headers))
    version = created(
        client.post(f"/v1/curricula/{curriculum_id}/publish", json={}, headers=headers)
    )
    cohort = created(
        client.post(
            "/v1/cohorts",
            json={
                "name": "Second cohort",
                "curriculum_id": curriculum_id,
                "curriculum_version": int(version["version"]),
                "starts_on": "2030-06-01",
                "ends_on": "2030-07-31",
                "timezone": "UTC",
                "capacity": 5,
                "facilitators": [],
            },
            headers=headers,
        )
    )
    enrolled = [*seeded.member.known["member_id"]]
    created(
        client.post(
            f"/v1/cohorts/{cohort['cohort_id']}/enrolments",
            json={"member_ids": enrolled},
            headers=headers,
        )
    )

    headers["Training-Position"] = str(services.app.recorder.max_notification_id())
    tenant_id = tenant_of(headers)
    for caller in (seeded.client, seeded.member):
        caller.known.setdefault("profile_key", ["world-profile"])
        caller.known.setdefault("tenant_id", [tenant_id])
        caller.known.setdefault("item_id", ["world-py-0"])
        caller.known.setdefault("import_id", [])
    seeded.member.headers["Training-Position"] = headers["Training-Position"]
    return World({"member": seeded.member, "client": seeded.client, "operator": seeded.operator})


def wait_for_import(client: TestClient[Any], url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 30
    while client.get(url, headers=headers).json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the import did not finish"
        time.sleep(0.05)


def tenant_of(headers: dict[str, str]) -> str:
    token = headers["Authorization"].split()[1]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["tenant_id"])
