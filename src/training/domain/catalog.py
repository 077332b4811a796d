"""Every aggregate class of the service, for contracts and tests that must see them all."""

from __future__ import annotations

from training.domain.assessments import (
    AssessmentAttempt,
    AssessmentSlot,
    ItemBank,
    ItemCalibration,
    SkillEvidence,
)
from training.domain.base import TrainingAggregate
from training.domain.cohorts import CalendarFeed, Cohort, CurriculumEnrolments, Participation
from training.domain.curricula import Curriculum
from training.domain.learning import LearningRecord
from training.domain.people import ExternalIds, Member, SeatRoster
from training.domain.policy import TrainingPolicy
from training.domain.report_requests import Report
from training.domain.reviews import PerformanceReview
from training.domain.skills import RoleProfile, SkillFramework
from training.domain.sso import SsoConnection
from training.domain.teams import Teams
from training.domain.tenancy import ApiClient, Tenant
from training.domain.tracks import PlanningCatalogue, TrainingTrack

AGGREGATES: tuple[type[TrainingAggregate], ...] = (
    Tenant,
    ApiClient,
    Member,
    SeatRoster,
    ExternalIds,
    Teams,
    SkillFramework,
    RoleProfile,
    Curriculum,
    Cohort,
    CurriculumEnrolments,
    Participation,
    CalendarFeed,
    TrainingPolicy,
    AssessmentAttempt,
    AssessmentSlot,
    ItemBank,
    ItemCalibration,
    SkillEvidence,
    PerformanceReview,
    LearningRecord,
    SsoConnection,
    Report,
)

# The planning process's own aggregates (stored in planning_events).
PLANNING_AGGREGATES: tuple[type[TrainingAggregate], ...] = (TrainingTrack, PlanningCatalogue)


def event_classes(aggregate: type[TrainingAggregate]) -> list[type[TrainingAggregate.Event]]:
    """The concrete event classes declared on ``aggregate`` (its own base classes excluded)."""
    found = []
    for name, value in vars(aggregate).items():
        if (
            isinstance(value, type)
            and issubclass(value, TrainingAggregate.Event)
            and name not in ("Event", "Created")
        ):
            found.append(value)
    return sorted(found, key=lambda cls: cls.__name__)
