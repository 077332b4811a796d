"""Every read model of the service and the policy that plans training tracks, in the order the
runners start them."""

from __future__ import annotations

from collections.abc import Sequence

from training.assessments.views import ASSESSMENTS
from training.audit.views import AUDIT
from training.cohorts.views.projection import COHORTS
from training.core.views import ProjectionSpec
from training.curricula.views import CURRICULA
from training.people.views import MEMBERS
from training.planning.views.tracks import PLANNING, TRACKS
from training.reviews.views import REVIEWS
from training.skills.views import SKILLS
from training.tenancy.views import TENANCY

PROJECTIONS: tuple[ProjectionSpec, ...] = (
    TENANCY,
    MEMBERS,
    SKILLS,
    CURRICULA,
    COHORTS,
    AUDIT,
    ASSESSMENTS,
    REVIEWS,
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
