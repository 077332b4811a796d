"""Every aggregate class of the service, for contracts and tests that must see them all."""

from __future__ import annotations

from training.assessments.domain.attempts import AssessmentAttempt
from training.assessments.domain.evidence import SkillEvidence
from training.assessments.domain.items import ItemBank, ItemCalibration
from training.assessments.domain.slots import AssessmentSlot
from training.cohorts.domain.calendar import CalendarFeed
from training.cohorts.domain.cohorts import Cohort
from training.cohorts.domain.participation import CurriculumEnrolments, Participation
from training.cohorts.domain.policy import TrainingPolicy
from training.core.aggregate import TrainingAggregate
from training.curricula.domain import Curriculum
from training.identity.domain import SsoConnection
from training.people.domain.external_ids import ExternalIdKey, ExternalIds
from training.people.domain.members import Member
from training.people.domain.seats import SeatRoster
from training.people.domain.teams import Teams
from training.planning.domain.learning import LearningRecord
from training.planning.domain.tracks import PlanningCatalogue, TrainingTrack
from training.reports.domain.requests import Report
from training.reviews.domain import PerformanceReview
from training.skills.domain import RoleProfile, SkillFramework
from training.tenancy.domain import ApiClient, Tenant

AGGREGATES: tuple[type[TrainingAggregate], ...] = (
    Tenant,
    ApiClient,
    Member,
    SeatRoster,
    ExternalIds,
    ExternalIdKey,
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
