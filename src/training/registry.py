"""Every read model of the service: its projection class and its view class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.projection import EventSourcedProjection, Projection

from training.assessments.views import AssessmentsProjection, AssessmentsView
from training.audit.views import AuditProjection, AuditView
from training.cohorts.views import CohortsProjection, CohortsView
from training.core.application import TrainingApplication
from training.core.read_store import ViewInfo
from training.core.views import TenantScopedView, quarantining
from training.curricula.views import CurriculaProjection, CurriculaView
from training.people.views import MembersProjection, MembersView
from training.planning.handlers.process import Planning
from training.planning.views.tracks import TracksProjection, TracksView
from training.skills.views import SkillsProjection, SkillsView
from training.tenancy.views import TenancyProjection, TenancyView


@dataclass(frozen=True)
class ProjectionSpec:
    """A read model (projection and view), or with no view an event-sourced policy that
    owns aggregates of its own; ``upstream`` is the application whose events it follows."""

    projection_class: type[Projection[Any]] | type[EventSourcedProjection[Any]]
    view_class: type[TenantScopedView] | None = None
    upstream: type[Application[Any]] = TrainingApplication

    @property
    def name(self) -> str:
        return str(self.projection_class.name)

    @property
    def is_policy(self) -> bool:
        return self.view_class is None

    @property
    def runnable_class(self) -> type[Projection[Any]] | type[EventSourcedProjection[Any]]:
        """What a runner runs: a read model's projection quarantines the events it cannot
        apply (ADR 0026); a policy runs as it is."""
        if self.view_class is None:
            return self.projection_class
        return quarantining(self.projection_class)

    @property
    def info(self) -> ViewInfo:
        return ViewInfo(self.name, tuple(self.projection_class.topics), str(self.upstream.name))


TENANCY = ProjectionSpec(TenancyProjection, TenancyView)
MEMBERS = ProjectionSpec(MembersProjection, MembersView)
SKILLS = ProjectionSpec(SkillsProjection, SkillsView)
CURRICULA = ProjectionSpec(CurriculaProjection, CurriculaView)
COHORTS = ProjectionSpec(CohortsProjection, CohortsView)

AUDIT = ProjectionSpec(AuditProjection, AuditView)
ASSESSMENTS = ProjectionSpec(AssessmentsProjection, AssessmentsView)

PLANNING = ProjectionSpec(Planning)
TRACKS = ProjectionSpec(TracksProjection, TracksView, upstream=Planning)

PROJECTIONS: tuple[ProjectionSpec, ...] = (
    TENANCY,
    MEMBERS,
    SKILLS,
    CURRICULA,
    COHORTS,
    AUDIT,
    ASSESSMENTS,
    PLANNING,
    TRACKS,
)


class UnknownProjection(LookupError):
    pass


def by_name(name: str, specs: Sequence[ProjectionSpec] = PROJECTIONS) -> ProjectionSpec:
    for spec in specs:
        if spec.name == name:
            return spec
    known = ", ".join(spec.name for spec in specs)
    msg = f"no projection named {name!r}; known: {known}"
    raise UnknownProjection(msg)
