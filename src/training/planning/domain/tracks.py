"""Training tracks and what the planner needs to know, owned by the planning process.

The planning process follows the training application's events and keeps its own
aggregates: a ``PlanningCatalogue`` per tenant (and one for the platform catalogue) with the
published curricula, role profiles and cohorts it has seen, and a ``TrainingTrack`` per
engineer with the inputs of their plan (review goals and ratings, measured levels, cohorts
joined, modules done) and every plan it produced. Because every input arrives as an event,
replaying the same events gives the same tracks.

A deactivated member's track is frozen: it keeps taking in evidence but plans nothing until
the member is reactivated, which plans again from everything it took in meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.curricula.domain import ModuleSpec
from training.planning.domain.planner import (
    CandidateModule,
    Constraints,
    CurrentLevel,
    ModuleRef,
    Offered,
    Plan,
    PlanDiff,
    TargetLevel,
    replan,
)
from training.reviews.domain import Goal, SkillRating
from training.skills.domain import SkillTarget

DEFAULT_WEEKLY_HOURS = 4.0
DEFAULT_HORIZON_DAYS = 90

# Candidates already sorted and checked, by the catalogues' ids and versions and what of a
# track changes them (its cohorts' versions, its skipped modules): kept by the caller for
# the re-plans of one processing event, so a release sorts its catalogue once, not per track.
OfferedMemo = dict[tuple[Any, ...], Offered]


@dataclass(frozen=True, slots=True)
class PublishedModules:
    curriculum_id: UUID
    version: int
    modules: tuple[ModuleSpec, ...]


@dataclass(frozen=True, slots=True)
class ProfileTargets:
    profile_id: UUID
    key: str
    name: str
    targets: tuple[SkillTarget, ...]


class PlanningCatalogue(TrainingAggregate):
    """What a tenant (or, with no tenant, the platform) offers to plan with."""

    TOPIC = "training.planning:PlanningCatalogue"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.planning:PlanningCatalogue.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.planning:PlanningCatalogue.Created"

    class Opened(Created):
        TOPIC = "training.planning:PlanningCatalogue.Opened"

    class CurriculumPublished(Event):
        TOPIC = "training.planning:PlanningCatalogue.CurriculumPublished"
        published: PublishedModules

    class CurriculumRetired(Event):
        TOPIC = "training.planning:PlanningCatalogue.CurriculumRetired"
        curriculum_id: UUID

    class ProfileSet(Event):
        TOPIC = "training.planning:PlanningCatalogue.ProfileSet"
        profile: ProfileTargets

    class CohortScheduled(Event):
        TOPIC = "training.planning:PlanningCatalogue.CohortScheduled"
        cohort_id: UUID
        curriculum_id: UUID
        version: int

    class TrackOpened(Event):
        TOPIC = "training.planning:PlanningCatalogue.TrackOpened"
        member_id: UUID

    class TenantNoted(Event):
        """On the platform catalogue: a tenant with tracks, re-planned when it changes."""

        TOPIC = "training.planning:PlanningCatalogue.TenantNoted"
        tenant: UUID

    @staticmethod
    def create_id(tenant_id: UUID | None) -> UUID:
        return stable_id("planning-catalogue", tenant_id or "platform")

    @classmethod
    def open(cls, tenant_id: UUID | None) -> PlanningCatalogue:
        return cls(tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.curricula: dict[UUID, PublishedModules] = {}
        self.profiles: dict[str, ProfileTargets] = {}
        self.cohorts: dict[UUID, tuple[UUID, int]] = {}
        # The members with a track, in the order their tracks opened (a dict: asking whether
        # one has a track costs the same at any number of tracks).
        self.tracks: dict[UUID, None] = {}
        self.tenants: list[UUID] = []

    @event(CurriculumPublished)
    def publish(self, published: PublishedModules) -> None:
        self.curricula[published.curriculum_id] = published

    @event(CurriculumRetired)
    def retire(self, curriculum_id: UUID) -> None:
        self.curricula.pop(curriculum_id, None)

    @event(ProfileSet)
    def set_profile(self, profile: ProfileTargets) -> None:
        self.profiles[profile.key] = profile

    def profile_key(self, profile_id: UUID) -> str | None:
        return next((p.key for p in self.profiles.values() if p.profile_id == profile_id), None)

    @event(CohortScheduled)
    def schedule_cohort(self, cohort_id: UUID, curriculum_id: UUID, version: int) -> None:
        self.cohorts[cohort_id] = (curriculum_id, version)

    def note_track(self, member_id: UUID) -> None:
        if member_id not in self.tracks:
            self._track_opened(member_id=member_id)

    @event(TrackOpened)
    def _track_opened(self, member_id: UUID) -> None:
        self.tracks[member_id] = None

    def note_tenant(self, tenant: UUID) -> None:
        if tenant not in self.tenants:
            self._tenant_noted(tenant=tenant)

    @event(TenantNoted)
    def _tenant_noted(self, tenant: UUID) -> None:
        self.tenants.append(tenant)


class TrainingTrack(TrainingAggregate):
    TOPIC = "training.planning:TrainingTrack"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.planning:TrainingTrack.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.planning:TrainingTrack.Created"

    class Opened(Created):
        TOPIC = "training.planning:TrainingTrack.Opened"
        member_id: UUID

    class ReviewApplied(Event):
        TOPIC = "training.planning:TrainingTrack.ReviewApplied"
        review_id: UUID
        ratings: tuple[SkillRating, ...]
        goals: tuple[Goal, ...]
        target_role_profile: str | None

    class LevelMeasured(Event):
        TOPIC = "training.planning:TrainingTrack.LevelMeasured"
        skill: str
        level: int
        se: float

    class CohortJoined(Event):
        TOPIC = "training.planning:TrainingTrack.CohortJoined"
        cohort_id: UUID
        curriculum_id: UUID
        version: int

    class CohortLeft(Event):
        """Withdrawn, transferred out, or the cohort was cancelled: its curriculum version is
        no longer preferred."""

        TOPIC = "training.planning:TrainingTrack.CohortLeft"
        cohort_id: UUID

    class Frozen(Event):
        """The member was deactivated: no re-plans until they are reactivated."""

        TOPIC = "training.planning:TrainingTrack.Frozen"
        member_id: UUID

    class Unfrozen(Event):
        TOPIC = "training.planning:TrainingTrack.Unfrozen"
        member_id: UUID

    class ProgressNoted(Event):
        """Why a module was skipped is the engineer's free text: it is kept beside the
        learning record's events (ADR 0020), not copied here."""

        TOPIC = "training.planning:TrainingTrack.ProgressNoted"
        class_version = 2
        member_id: UUID
        curriculum_id: str
        key: str
        state: str  # started, completed or skipped

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.pop("note", None)

    class Replanned(Event):
        TOPIC = "training.planning:TrainingTrack.Replanned"
        member_id: UUID
        plan_version: int
        trigger: str
        starts_on: date
        plan: Plan
        diff: PlanDiff

    @staticmethod
    def create_id(tenant_id: UUID, member_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "training-track", member_id)

    @classmethod
    def open(cls, tenant_id: UUID, member_id: UUID) -> TrainingTrack:
        return cls(member_id=member_id, tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, member_id: UUID, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.ratings: dict[str, int] = {}
        self.measured: dict[str, tuple[int, float]] = {}
        self.goals: tuple[Goal, ...] = ()
        self.target_role_profile: str | None = None
        self.cohorts: dict[UUID, tuple[UUID, int]] = {}
        self.started: set[ModuleRef] = set()
        self.completed: set[ModuleRef] = set()
        self.skipped: set[ModuleRef] = set()
        self.plan: Plan | None = None
        self.plan_version = 0
        self.triggers: list[str] = []
        self.frozen = False

    @event(ReviewApplied)
    def apply_review(
        self,
        review_id: UUID,
        ratings: tuple[SkillRating, ...],
        goals: tuple[Goal, ...],
        target_role_profile: str | None,
    ) -> None:
        self.ratings = {rating.skill: rating.level for rating in ratings}
        self.goals = goals
        self.target_role_profile = target_role_profile

    @event(LevelMeasured)
    def measure(self, skill: str, level: int, se: float) -> None:
        self.measured[skill] = (level, se)

    @event(CohortJoined)
    def join_cohort(self, cohort_id: UUID, curriculum_id: UUID, version: int) -> None:
        self.cohorts[cohort_id] = (curriculum_id, version)

    def leave_cohort(self, cohort_id: UUID) -> bool:
        """Whether the cohort was on the track (someone leaving a waitlist never had it)."""
        if cohort_id not in self.cohorts:
            return False
        self._cohort_left(cohort_id=cohort_id)
        return True

    @event(CohortLeft)
    def _cohort_left(self, cohort_id: UUID) -> None:
        del self.cohorts[cohort_id]

    def freeze(self) -> None:
        if not self.frozen:
            self._frozen(member_id=self.member_id)

    @event(Frozen)
    def _frozen(self, member_id: UUID) -> None:
        self.frozen = True

    def unfreeze(self) -> bool:
        """Whether the track was frozen."""
        if not self.frozen:
            return False
        self._unfrozen(member_id=self.member_id)
        return True

    @event(Unfrozen)
    def _unfrozen(self, member_id: UUID) -> None:
        self.frozen = False

    @property
    def has_inputs(self) -> bool:
        """Whether there is anything to plan from: a track opened only to be frozen has not."""
        return bool(
            self.plan is not None
            or self.ratings
            or self.measured
            or self.goals
            or self.target_role_profile
            or self.cohorts
            or self.completed
            or self.skipped
        )

    def note_progress(self, curriculum_id: str, key: str, state: str) -> None:
        self._progress_noted(
            member_id=self.member_id, curriculum_id=curriculum_id, key=key, state=state
        )

    @event(ProgressNoted)
    def _progress_noted(self, member_id: UUID, curriculum_id: str, key: str, state: str) -> None:
        ref = (curriculum_id, key)
        {"started": self.started, "completed": self.completed, "skipped": self.skipped}[state].add(
            ref
        )
        if state != "started":
            self.started.discard(ref)

    # -- planning -------------------------------------------------------------------------

    def targets(self, catalogue: PlanningCatalogue) -> tuple[TargetLevel, ...]:
        found: list[TargetLevel] = []
        profile = catalogue.profiles.get(self.target_role_profile or "")
        if profile is not None:
            found += [
                TargetLevel(t.skill, t.level, f"role profile {profile.name}")
                for t in profile.targets
            ]
        found += [
            TargetLevel(
                g.skill,
                g.target_level,
                f"goal {g.goal_id}: {g.skill} {g.target_level} by {g.due.isoformat()}",
            )
            for g in self.goals
        ]
        return tuple(found)

    def current_levels(self) -> tuple[CurrentLevel, ...]:
        """A measured level (an assessment, with its SE) wins over a reviewer's rating,
        which counts with the SE of a single observation (1.0 logit, as in the profile)."""
        levels = {skill: CurrentLevel(skill, level, 1.0) for skill, level in self.ratings.items()}
        for skill, (level, se) in self.measured.items():
            levels[skill] = CurrentLevel(skill, level, se)
        return tuple(levels[skill] for skill in sorted(levels))

    def candidates(self, catalogues: tuple[PlanningCatalogue, ...]) -> tuple[CandidateModule, ...]:
        preferred = set(self.cohorts.values())
        found = []
        for catalogue in catalogues:
            for published in catalogue.curricula.values():
                is_preferred = (published.curriculum_id, published.version) in preferred
                for module in published.modules:
                    ref = (str(published.curriculum_id), module.key)
                    if ref in self.skipped:
                        continue
                    found.append(
                        CandidateModule(
                            str(published.curriculum_id), published.version, module, is_preferred
                        )
                    )
        return tuple(found)

    def offered(
        self, catalogues: tuple[PlanningCatalogue, ...], memo: OfferedMemo | None
    ) -> tuple[CandidateModule, ...] | Offered:
        """``candidates``, from ``memo`` when a track with the same ones was planned."""
        if memo is None:
            return self.candidates(catalogues)
        key = (
            tuple((catalogue.id, catalogue.version) for catalogue in catalogues),
            frozenset(self.cohorts.values()),
            frozenset(self.skipped),
        )
        found = memo.get(key)
        if found is None:
            found = memo[key] = Offered.of(self.candidates(catalogues))
        return found

    def constraints(self, today: date) -> Constraints:
        deadline = max(
            (goal.due for goal in self.goals), default=today + timedelta(days=DEFAULT_HORIZON_DAYS)
        )
        if deadline <= today:
            deadline = today + timedelta(days=DEFAULT_HORIZON_DAYS)
        return Constraints(DEFAULT_WEEKLY_HOURS, today, deadline)

    def replan(
        self,
        trigger: str,
        today: date,
        tenant_catalogue: PlanningCatalogue,
        platform_catalogue: PlanningCatalogue,
        skill_names: dict[str, str] | None = None,
        offered: OfferedMemo | None = None,
    ) -> None:
        """Plans again and records the new plan with what changed and why, once per trigger;
        a frozen track does not plan (its inputs are kept for when it is unfrozen). The
        catalogues must not change while ``offered`` is kept."""
        if self.frozen or trigger in self.triggers:
            return
        plan, diff = replan(
            self.plan,
            self.targets(tenant_catalogue),
            self.current_levels(),
            self.offered((tenant_catalogue, platform_catalogue), offered),
            self.constraints(today),
            done=frozenset(self.completed),
            in_progress=frozenset(self.started),
            skill_names=skill_names,
        )
        self._replanned(
            member_id=self.member_id,
            plan_version=self.plan_version + 1,
            trigger=trigger,
            starts_on=today,
            plan=plan,
            diff=diff,
        )

    @event(Replanned)
    def _replanned(
        self,
        member_id: UUID,
        plan_version: int,
        trigger: str,
        starts_on: date,
        plan: Plan,
        diff: PlanDiff,
    ) -> None:
        self.plan = plan
        self.plan_version = plan_version
        self.triggers.append(trigger)
