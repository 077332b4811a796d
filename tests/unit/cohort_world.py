"""A tenant with people, two curricula and cohorts, on the in-memory event store.

The two curricula teach the same skill to the same level in the same time, so a plan's
choice between them comes down to the preferred one (the version of a cohort the person is
in): the cohort curriculum is the one the planner would not pick otherwise.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Tracking

from training.bootstrap import HANDLERS
from training.cohorts.handlers.cohorts import ScheduleCohort
from training.core.access import Role
from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.curricula.handlers import AddModule, CreateCurriculum, PublishCurriculum
from training.people.handlers.members import RegisterMember
from training.planning.domain.tracks import TrainingTrack
from training.planning.process import Planning
from training.reviews.domain import Goal, ReviewContent, SkillRating
from training.reviews.handlers import DraftReview
from training.skills.domain import SkillTarget
from training.tenancy.handlers import RegisterTenant

IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def in_memory_bus() -> CommandBus:
    return CommandBus(TrainingApplication(env=IN_MEMORY), HANDLERS)


@dataclass
class World:
    bus: CommandBus
    tenant_id: uuid.UUID
    context: CommandContext
    cohort_curriculum: uuid.UUID  # the one a cohort pins: preferred only while in the cohort
    cohort_module: str
    other_curriculum: uuid.UUID
    other_module: str
    planning: Planning = field(default_factory=lambda: Planning(env=IN_MEMORY))
    followed: int = 0

    def run(self, command: Any) -> Any:
        return self.bus.execute(self.context, command).result

    def member(self, name: str) -> uuid.UUID:
        registered = self.run(RegisterMember(name, name.title(), None, (Role.ENGINEER,)))
        return uuid.UUID(str(registered.member_id))

    def review(self, member_id: uuid.UUID) -> None:
        content = ReviewContent(
            ratings=(SkillRating("python", 2),),
            overall_rating=3,
            goals=(Goal("G1", "python", 3, dt.date(2027, 6, 30)),),
            target_role_profile=None,
        )
        self.run(DraftReview("2026-H2", member_id, None, content, finalise=True))

    def cohort(self, capacity: int, curriculum: uuid.UUID | None = None) -> uuid.UUID:
        scheduled = self.run(
            ScheduleCohort(
                "Spring",
                curriculum or self.cohort_curriculum,
                1,
                dt.date(2030, 3, 1),
                dt.date(2030, 5, 31),
                "Europe/Berlin",
                capacity,
            )
        )
        return uuid.UUID(str(scheduled.cohort_id))

    def follow(self) -> None:
        """The planning policy takes in every new event it follows, in order."""
        app = self.bus.app
        topics = list(self.planning.topics)
        while True:
            batch = app.recorder.select_notifications(
                self.followed + 1, 100, topics=topics, inclusive_of_start=True
            )
            if not batch:
                return
            for notification in batch:
                event = app.mapper.to_domain_event(notification)
                self.planning.process_event(event, Tracking(app.name, notification.id))
                self.followed = notification.id

    def track(self, member_id: uuid.UUID) -> TrainingTrack:
        self.follow()
        track: TrainingTrack = self.planning.repository.get(
            TrainingTrack.create_id(self.tenant_id, member_id)
        )
        return track

    def replans(self, member_id: uuid.UUID) -> list[TrainingTrack.Replanned]:
        self.follow()
        track_id = TrainingTrack.create_id(self.tenant_id, member_id)
        return [
            e for e in self.planning.events.get(track_id) if isinstance(e, TrainingTrack.Replanned)
        ]


def planned_keys(replanned: TrainingTrack.Replanned) -> list[str]:
    return [m.key for m in replanned.plan.modules]


def published(bus: CommandBus, context: CommandContext, key: str) -> uuid.UUID:
    created = bus.execute(context, CreateCurriculum(f"Course {key}", "")).result
    curriculum_id = uuid.UUID(str(created.curriculum_id))
    spec = ModuleSpec(key, key.title(), "", ModuleFormat.LAB, 60, (SkillTarget("python", 3),), ())
    bus.execute(context, AddModule(curriculum_id, spec))
    bus.execute(context, PublishCurriculum(curriculum_id))
    return curriculum_id


def world(seats: int = 50) -> World:
    bus = in_memory_bus()
    system = CommandContext.system("tests", request_id="setup")
    tenant = bus.execute(system, RegisterTenant(f"t-{uuid.uuid4().hex[:8]}", "T", seats)).result
    context = CommandContext(Actor(ActorKind.CLIENT, "tc_hr"), "r", tenant.tenant_id)
    modules = {published(bus, context, key): key for key in ("alpha", "beta")}
    # The planner breaks the tie by curriculum id: the larger one is picked only if preferred.
    low, high = sorted(modules, key=str)
    return World(bus, tenant.tenant_id, context, high, modules[high], low, modules[low])
