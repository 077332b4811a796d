"""The planning process sets aside an event it cannot plan with; every other tenant is planned.

A fault in the planner (it raises on one tenant's tracks, as a bug on that tenant's data would)
makes the planning process quarantine the tenant's enrolment and park the tenant's next one,
while the other tenant's enrolments are planned and read back with their position. /readyz
says so; after the fix `training projections retry planning` plans the held enrolments in
order, exactly once each, while the process keeps running. A platform event the process
cannot apply (the platform catalogue feeds every tenant's plans) holds every tenant's events
until it is retried, and is retried first.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date
from functools import partial
from typing import Any

import psycopg
import pytest
from eventsourcing.utils import get_topic
from litestar.testing import TestClient
from structlog.testing import capture_logs

from tests import waiting
from tests.helpers import PROBLEM, TenantUnderTest, system_context
from training.bootstrap import Services
from training.cli import main
from training.cohorts.domain.cohorts import Cohort
from training.cohorts.handlers.cohorts import ScheduleCohort
from training.cohorts.handlers.enrolments import Enrol
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.curricula.domain import Curriculum, ModuleFormat, ModuleSpec
from training.curricula.handlers import AddModule, CreateCurriculum, PublishCurriculum
from training.infra.database import Database
from training.planning.domain.tracks import PlanningCatalogue, PublishedModules, TrainingTrack
from training.skills.domain import SkillTarget

ENROLLED = get_topic(Cohort.Enrolled)
PUBLISHED = get_topic(Curriculum.VersionPublished)


wait_until = partial(waiting.wait_until, timeout=60.0)


def publish(bus: CommandBus, context: CommandContext, key: str) -> uuid.UUID:
    curriculum = bus.execute(context, CreateCurriculum(f"Course {key}", "")).result
    module = ModuleSpec(
        key, key.title(), "", ModuleFormat.VIDEO, 30, (SkillTarget("python", 2),), ()
    )
    bus.execute(context, AddModule(curriculum.curriculum_id, module))
    bus.execute(context, PublishCurriculum(curriculum.curriculum_id))
    curriculum_id: uuid.UUID = curriculum.curriculum_id
    return curriculum_id


class Tenant:
    """A tenant with people and an open cohort of a curriculum of its own."""

    def __init__(self, client: TestClient[Any], services: Services, people: int) -> None:
        self.http = TenantUnderTest(client, services)
        self.client = client
        self.bus = services.bus
        self.context = CommandContext(Actor(ActorKind.SYSTEM, "tests"), "q", self.http.tenant_id)
        self.members = []
        for n in range(people):
            added = self.http.add(f"P-{n}-{uuid.uuid4().hex[:6]}")
            assert added.status_code == 201, added.text
            self.members.append(uuid.UUID(added.json()["member_id"]))
        curriculum_id = publish(self.bus, self.context, f"course-{uuid.uuid4().hex[:6]}")
        cohort = self.bus.execute(
            self.context,
            ScheduleCohort(
                "Cohort", curriculum_id, 1, date(2030, 3, 1), date(2030, 5, 31), "UTC", 9
            ),
        ).result
        self.cohort_id: uuid.UUID = cohort.cohort_id

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.http.tenant_id

    def enrol(self, member_id: uuid.UUID) -> int:
        outcome = self.bus.execute(self.context, Enrol(self.cohort_id, (member_id,)))
        assert outcome.position is not None
        return outcome.position

    def track(self, member_id: uuid.UUID, position: int) -> Any:
        return self.client.get(
            f"/v1/members/{member_id}/track", headers=self.http.headers(str(position))
        )


def held(database: Database) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "SELECT status, topic, tenant_id, error_type, resolution "
            "FROM training.projection_quarantine WHERE view_name = 'planning' "
            "ORDER BY notification_id"
        ).fetchall()


def unresolved(database: Database) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "SELECT status, topic, tenant_id FROM training.projection_quarantine "
            "WHERE view_name = 'planning' AND resolved_at IS NULL ORDER BY notification_id"
        ).fetchall()


def replans(database: Database) -> Counter[tuple[str, str]]:
    """(track, trigger) of every Replanned event the planning process stored."""
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT originator_id::text, convert_from(state, 'UTF8')::jsonb ->> 'trigger' "
            "FROM training.planning_events WHERE topic = %s",
            (get_topic(TrainingTrack.Replanned),),
        ).fetchall()
    return Counter((str(track), str(trigger)) for track, trigger in rows)


def triggers_of(database: Database, tenant: Tenant, member_id: uuid.UUID) -> list[str]:
    track = str(TrainingTrack.create_id(tenant.tenant_id, member_id))
    return sorted(trigger for (t, trigger) in replans(database) if t == track)


def planning_ready(client: TestClient[Any]) -> dict[str, Any]:
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body: dict[str, Any] = ready.json()
    [planning] = [p for p in body["projections"] if p["name"] == "planning"]
    return {"overall": body["status"], **planning}


def test_a_tenants_event_the_planner_cannot_handle_waits_and_is_retried_once(
    client: TestClient[Any],
    services: Services,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    victim = Tenant(client, services, people=3)
    other = Tenant(client, services, people=2)
    assert services.supervisor is not None
    restarts = services.supervisor.restarts["planning"]

    plan = TrainingTrack.replan

    def faulty(self: TrainingTrack, *args: Any, **kwargs: Any) -> None:
        if self.tenant_id == victim.tenant_id:
            raise ValueError("the planner cannot plan this track")
        plan(self, *args, **kwargs)

    monkeypatch.setattr(TrainingTrack, "replan", faulty)
    first, second, third = victim.members
    with capture_logs() as logs:
        victim.enrol(first)
        wait_until(lambda: len(held(database)) == 1)
    alerts = [entry for entry in logs if entry["event"] == "projection.event_quarantined"]
    assert [(a["log_level"], a["projection"], a["tenant_id"]) for a in alerts] == [
        ("error", "planning", str(victim.tenant_id))
    ]
    parked_at = victim.enrol(second)

    # The other tenant is planned and reads its own writes meanwhile.
    for member_id in other.members:
        position = other.enrol(member_id)
        track = other.track(member_id, position)
        assert track.status_code == 200, track.text
        assert [c["cohort_id"] for c in track.json()["cohorts"]] == [str(other.cohort_id)]

    # The victim's read of its own write answers as a view behind, not a stale track.
    behind = victim.track(second, parked_at)
    assert behind.status_code == 503
    assert behind.headers["content-type"] == PROBLEM
    assert behind.json()["type"].endswith("view-behind")

    wait_until(lambda: len(held(database)) == 2)
    assert held(database) == [
        ("failed", ENROLLED, victim.tenant_id, "ValueError", None),
        ("parked", ENROLLED, victim.tenant_id, None, None),
    ]
    ready = planning_ready(client)
    assert (ready["overall"], ready["status"]) == ("degraded", "degraded")
    assert (ready["runner"], ready["degraded_tenant_count"]) == ("here", 1)
    [degraded] = ready["degraded_tenants"]
    assert degraded["tenant_id"] == str(victim.tenant_id)
    assert (degraded["quarantined"], degraded["parked"]) == (1, 1)
    assert triggers_of(database, victim, first) == []

    # The fix, then the retry while the process keeps running.
    monkeypatch.undo()
    monkeypatch.setenv("DATABASE_URL", database.admin_url)
    assert main(["projections", "retry", "planning"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("planning: ")]
    assert lines == [
        "planning: re-applied 2 held event(s) in order for 1 tenant(s); "
        "planning is healthy again for every tenant"
    ]
    assert [row[0::4] for row in held(database)] == [("failed", "retried"), ("parked", "retried")]
    # Cohort versions: 1 scheduled, 2 and 3 the two enrolments.
    enrolled = f"{ENROLLED}:{victim.cohort_id}"
    assert triggers_of(database, victim, first) == [f"{enrolled}:2"]
    assert triggers_of(database, victim, second) == [f"{enrolled}:3"]
    track = victim.track(second, parked_at)
    assert track.status_code == 200, track.text
    assert [c["cohort_id"] for c in track.json()["cohorts"]] == [str(victim.cohort_id)]
    ready = planning_ready(client)
    assert (ready["overall"], ready["status"], ready["degraded_tenants"]) == ("ready", "ok", [])

    # The victim's next enrolment is planned directly again. The retry noted the victim's
    # first track on the platform catalogue, which the running process holds in its cache
    # from the other tenant's tracks: the process meets the newer version when it notes the
    # victim again, and plans on a fresh load instead of setting the enrolment aside.
    with capture_logs() as logs:
        position = victim.enrol(third)
        assert victim.track(third, position).status_code == 200
    assert "planning.aggregates_moved_meanwhile" in [entry["event"] for entry in logs]
    assert not unresolved(database)
    # Nothing was planned twice, and the process never had to start again.
    assert max(replans(database).values()) == 1
    assert services.supervisor.restarts["planning"] == restarts


def test_a_platform_event_it_cannot_apply_holds_every_tenant_until_retried(
    client: TestClient[Any],
    services: Services,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant = Tenant(client, services, people=2)
    first, second = tenant.members
    # The tenant has a track before the release.
    assert tenant.track(first, tenant.enrol(first)).status_code == 200
    assert not unresolved(database)

    # A platform curriculum whose release the catalogue cannot take.
    platform = system_context()
    draft = services.bus.execute(platform, CreateCurriculum("Platform course", "")).result
    released: uuid.UUID = draft.curriculum_id
    module = ModuleSpec(
        "platform", "Platform", "", ModuleFormat.VIDEO, 30, (SkillTarget("python", 3),), ()
    )
    services.bus.execute(platform, AddModule(released, module))
    take = PlanningCatalogue.__dict__["publish"]  # the event-recording method, as defined

    def faulty(self: PlanningCatalogue, published: PublishedModules) -> None:
        if published.curriculum_id == released:
            raise ValueError("the catalogue cannot take this release")
        take.__get__(self, PlanningCatalogue)(published)

    monkeypatch.setattr(PlanningCatalogue, "publish", faulty)
    services.bus.execute(platform, PublishCurriculum(released))
    wait_until(lambda: len(unresolved(database)) == 1)
    position = tenant.enrol(second)  # held behind the platform's event
    wait_until(lambda: len(unresolved(database)) == 2)
    assert unresolved(database) == [
        ("failed", PUBLISHED, None),
        ("parked", ENROLLED, tenant.tenant_id),
    ]
    assert tenant.track(second, position).status_code == 503
    ready = planning_ready(client)
    assert (ready["overall"], ready["status"]) == ("degraded", "degraded")
    assert [t["tenant_id"] for t in ready["degraded_tenants"]] == [None, str(tenant.tenant_id)]

    monkeypatch.setenv("DATABASE_URL", database.admin_url)
    # The tenant's events wait behind the platform's: they are not retried before it.
    assert main(["projections", "retry", "planning", "--tenant", str(tenant.tenant_id)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"training projections retry: refused: tenant {tenant.tenant_id} waits behind the "
        "platform's held events: retry them first (`training projections retry planning "
        "--tenant platform`)"
    )
    monkeypatch.setattr(PlanningCatalogue, "publish", take)  # the fix
    code = main(["projections", "retry", "planning", "--tenant", "platform"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [x for x in out.splitlines() if x.startswith("planning: ")]
    assert lines == [
        "planning: re-applied 2 held event(s) in order for 2 tenant(s); "
        "planning is healthy again for every tenant"
    ]
    # The release re-planned the track there was, then the held enrolment planned the next.
    assert any(
        t.startswith(f"{PUBLISHED}:{released}:") for t in triggers_of(database, tenant, first)
    )
    track = tenant.track(second, position)
    assert track.status_code == 200, track.text
    assert max(replans(database).values()) == 1
    assert not unresolved(database)
