"""Every read model of the service: its projection class and its view class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.projection import Projection

from training.projections.base import TenantScopedView
from training.projections.curricula import CurriculaProjection, CurriculaView
from training.projections.people import MembersProjection, MembersView
from training.projections.skills import SkillsProjection, SkillsView
from training.projections.store import ViewInfo
from training.projections.tenancy import TenancyProjection, TenancyView


@dataclass(frozen=True)
class ProjectionSpec:
    projection_class: type[Projection[Any]]
    view_class: type[TenantScopedView]

    @property
    def name(self) -> str:
        return str(self.projection_class.name)

    @property
    def info(self) -> ViewInfo:
        return ViewInfo(self.name, tuple(self.projection_class.topics))


TENANCY = ProjectionSpec(TenancyProjection, TenancyView)
MEMBERS = ProjectionSpec(MembersProjection, MembersView)
SKILLS = ProjectionSpec(SkillsProjection, SkillsView)
CURRICULA = ProjectionSpec(CurriculaProjection, CurriculaView)

PROJECTIONS: tuple[ProjectionSpec, ...] = (TENANCY, MEMBERS, SKILLS, CURRICULA)


def by_name(name: str) -> ProjectionSpec:
    for spec in PROJECTIONS:
        if spec.name == name:
            return spec
    known = ", ".join(spec.name for spec in PROJECTIONS)
    msg = f"no projection named {name!r}; known: {known}"
    raise KeyError(msg)
