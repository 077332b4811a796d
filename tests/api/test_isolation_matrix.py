"""Every operation of the OpenAPI, tried with the wrong credentials: nothing of another tenant leaks.

Two matrices over ``contracts/openapi.json``:

- with a token of **another tenant** (a client holding every tenant scope), on tenant A's real
  resource ids: no 2xx on an operation naming one of A's resources, and no body of any
  operation mentions any of A's ids, names or external ids. A write whose body is refused
  before anything is looked up answers 400 (nothing is revealed or written);
- with an **engineer's** token of tenant A on the operations reserved to HR, tenant admins
  and the operator (every operation not in ``ENGINEER_MAY``), using another person's ids:
  401, 403 or 404.

Missing and expired tokens are covered by ``test_authentication_matrix.py``.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.helpers import OPERATOR_ONLY, TenantUnderTest, bearer, member_token
from training.bootstrap import Services
from training.cohorts.handlers.cohorts import ScheduleCohort, ScheduleSession
from training.contracts import openapi_document
from training.core.context import Actor, ActorKind, CommandContext
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.curricula.handlers import AddModule, CreateCurriculum, PublishCurriculum
from training.reviews.domain import ReviewContent
from training.reviews.handlers import DraftReview
from training.skills.domain import SkillTarget
from training.skills.handlers import DefineRoleProfile

PUBLIC = {
    "/healthz",
    "/readyz",
    "/oauth2/token",
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
}
# What an engineer may do (on their own things, or reading the shared catalogue).
ENGINEER_MAY = {
    "startBattery",
    "startAssessment",
    "getAssessment",
    "abandonAssessment",
    "answerItem",
    "listCurricula",
    "getCurriculum",
    "diffCurriculumVersions",
    "getCurriculumVersion",
    "listModules",
    "listMyAssessments",
    "rotateMyCalendar",
    "listMyCohorts",
    "listMySessions",
    "getMyTrack",
    "recordTrackProgress",
    "giveFeedback",
    "getSkillFramework",
    "listSkills",
    "getSkill",
    "listRoleProfiles",
    "getRoleProfile",
    "listRoleProfileRevisions",
    "getTenant",
    "getTrainingPolicy",
    "chooseMyLanguage",
}
DENIED = {401, 403, 404}
# Operations that decide who may call them inside the handler, after reading the body: an
# empty body is refused (400) before that, which also writes and reveals nothing.
CHECKED_AFTER_THE_BODY = {"recordSkillEvidence"}


def operations() -> list[tuple[str, str, str]]:
    found = []
    for path, item in openapi_document()["paths"].items():
        if path in PUBLIC:
            continue
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append((method, path, str(operation["operationId"])))
    return sorted(found)


class World:
    """Tenant A with one of each resource, and the credentials that must not reach them."""

    def __init__(self, client: TestClient[Any], services: Services) -> None:
        self.a = TenantUnderTest(client, services, seat_limit=100)
        self.b = TenantUnderTest(client, services)
        hr = self.a.add(
            f"ISO-HR-{uuid.uuid4().hex[:6]}", roles=["hr_manager"], display_name="Harriet Isolated"
        ).json()
        engineer = self.a.add(f"ISO-EN-{uuid.uuid4().hex[:6]}", display_name="Enzo Isolated").json()
        self.hr_id = hr["member_id"]
        context = CommandContext(Actor(ActorKind.SYSTEM, "tests"), "iso", self.a.tenant_id)
        bus = services.bus
        curriculum = bus.execute(context, CreateCurriculum("Isolated curriculum", "")).result
        module = ModuleSpec(
            "iso-module", "Iso module", "", ModuleFormat.VIDEO, 30, (SkillTarget("python", 2),), ()
        )
        bus.execute(context, AddModule(curriculum.curriculum_id, module))
        bus.execute(context, PublishCurriculum(curriculum.curriculum_id))
        cohort = bus.execute(
            context,
            ScheduleCohort(
                "Iso cohort",
                curriculum.curriculum_id,
                1,
                date(2026, 12, 1),
                date(2027, 1, 31),
                "UTC",
                10,
            ),
        ).result
        session_id = bus.execute(
            context,
            ScheduleSession(
                cohort.cohort_id,
                "Iso session",
                __import__("datetime").datetime(2026, 12, 2, 9, tzinfo=__import__("datetime").UTC),
                60,
                "https://meet.example/iso",
            ),
        ).result
        review = bus.execute(
            context,
            DraftReview(
                "2026-H2",
                uuid.UUID(hr["member_id"]),
                None,
                ReviewContent((), 3, (), None),
            ),
        ).result
        bus.execute(
            context,
            DefineRoleProfile("iso-a-profile", "Iso profile", "", (SkillTarget("python", 3),)),
        )
        imported = self.a.client.post(
            "/v1/member-imports",
            content=b"external_id,display_name\nISO-IMP,Imre Isolated\n",
            headers={**self.a.headers(), "content-type": "text/csv"},
        ).json()
        self.engineer_token = member_token(
            services, self.a.tenant_id, uuid.UUID(engineer["member_id"])
        )
        attempt = self.a.client.post(
            "/v1/assessments", json={"skill": "python"}, headers=bearer(self.engineer_token)
        )
        self.values = {
            "tenant_id": str(self.a.tenant_id),
            "member_id": self.hr_id,
            "cohort_id": str(cohort.cohort_id),
            "session_id": str(session_id),
            "curriculum_id": str(curriculum.curriculum_id),
            "key": "iso-module",
            "version": "1",
            "review_id": str(review.review_id),
            "import_id": str(imported["import_id"]),
            "attempt_id": str(attempt.json().get("attempt_id", uuid.uuid4())),
            "code": "iso-a-skill",
            "item_id": "iso-a-item",
            "client_id": "tc_iso",
        }
        self.markers = {
            str(self.a.tenant_id),
            self.hr_id,
            engineer["member_id"],
            hr["external_id"],
            engineer["external_id"],
            "Harriet Isolated",
            "Enzo Isolated",
            "Imre Isolated",
            str(curriculum.curriculum_id),
            str(cohort.cohort_id),
            str(session_id),
            str(review.review_id),
            str(imported["import_id"]),
            "Isolated curriculum",
            "Iso cohort",
        }

    def url(self, path: str, operation: str) -> str:
        parts = []
        for part in path.split("/"):
            if part.startswith("{") and part.endswith("}"):
                name = part[1:-1].split(":")[0]
                if name == "key" and "role-profiles" in path:
                    parts.append("iso-a-profile")
                else:
                    parts.append(self.values.get(name, str(uuid.uuid4())))
            else:
                parts.append(part)
        return "/".join(parts)


@pytest.fixture(scope="module")
def world(client: TestClient[Any], services: Services) -> World:
    return World(client, services)


def call(client: TestClient[Any], method: str, url: str, headers: dict[str, str]) -> Any:
    body = {} if method in ("post", "put", "patch") else None
    return client.request(method.upper(), url, headers=headers, json=body)


@pytest.mark.parametrize(("method", "path", "operation"), operations())
def test_another_tenant_sees_nothing(world: World, method: str, path: str, operation: str) -> None:
    url = world.url(path, operation)
    response = call(world.b.client, method, url, world.b.headers())
    # An id the caller sent may be echoed back ("cohort X not found"); anything else may not.
    leaked = [marker for marker in world.markers if marker in response.text and marker not in url]
    assert leaked == [], f"{operation} answered {response.status_code} with tenant A's {leaked}"
    if "{" in path and operation not in OPERATOR_ONLY:
        assert response.status_code in DENIED | {400, 405, 422}, (
            operation,
            response.status_code,
            response.text,
        )
    if operation in OPERATOR_ONLY:
        assert response.status_code in DENIED, operation


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [op for op in operations() if op[2] not in ENGINEER_MAY],
)
def test_an_engineer_cannot_use_hr_operations(
    world: World, method: str, path: str, operation: str
) -> None:
    response = call(
        world.a.client, method, world.url(path, operation), bearer(world.engineer_token)
    )
    allowed = DENIED | ({400} if operation in CHECKED_AFTER_THE_BODY else set())
    assert response.status_code in allowed, (operation, response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
