"""The planning process: new evidence re-plans the affected training tracks.

A finalised or amended review, a completed assessment, a newly published curriculum
version, and every change of the cohorts a person is in (enrolled, promoted from the
waitlist, withdrawn, transferred, the cohort cancelled) each re-plan the tracks they affect:
a cohort's pinned curriculum version is preferred while, and only while, the person is in
it. Deactivating a member freezes their track (no re-plans); reactivating unfreezes it and
plans again. The policy is an ``EventSourcedProjection``: the tracks' new events and the
position of the event that caused them commit in one transaction, so a crash between two
events neither loses a re-plan nor repeats one. Every ``Replanned`` event names its trigger
(the causing event's topic, aggregate and version) and carries the diff from the previous
plan with reasons.

An event the policy cannot apply is quarantined (ADR 0026), as the read models' are: the
tenant's later events are parked behind it and every other tenant is planned as usual. A
platform event (the platform catalogue feeds every tenant's plans) holds every tenant's.
``training projections retry planning`` re-applies them in the order of the log after a fix.
"""

from __future__ import annotations

import dataclasses
from functools import singledispatchmethod
from typing import Any, cast
from uuid import UUID

import psycopg
import structlog
from eventsourcing.application import AggregateNotFoundError, LRUCache, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Mapper, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import EventSourcedProjection
from eventsourcing.utils import EnvType, get_topic

from training.assessments.domain.attempts import AssessmentAttempt
from training.cohorts.domain.cohorts import Cohort
from training.core.mapper import MsgspecMapper, PassThroughTranscoder
from training.core.quarantine import Quarantine, is_transient
from training.curricula.domain import Curriculum
from training.people.domain.members import Member
from training.planning.domain.learning import LearningRecord
from training.planning.domain.tracks import (
    OfferedMemo,
    PlanningCatalogue,
    ProfileTargets,
    PublishedModules,
    TrainingTrack,
)
from training.reviews.domain import PerformanceReview
from training.skills.domain import RoleProfile
from training.skills.queries import default_framework

log = structlog.get_logger(__name__)

TRIGGERS = (
    PerformanceReview.Finalised,
    PerformanceReview.Amended,
    AssessmentAttempt.Completed,
    Curriculum.VersionPublished,
    Cohort.Enrolled,
    Cohort.Promoted,
    Cohort.Withdrawn,
    Cohort.Cancelled,
    Member.Deactivated,
    Member.Reactivated,
)
INPUTS = (
    Curriculum.Retired,
    RoleProfile.Defined,
    RoleProfile.Revised,
    Cohort.Scheduled,
    Cohort.ModuleCompleted,
    LearningRecord.ModuleProgressed,
)


def tenant_of(event: Any) -> UUID:
    """The tenant of an event about a person: people and their tracks belong to one."""
    tenant_id: UUID | None = event.tenant_id
    assert tenant_id is not None, "people and their tracks always belong to a tenant"
    return tenant_id


def trigger_of(event: Any) -> str:
    return f"{get_topic(type(event))}:{event.originator_id}:{event.originator_version}"


class Planning(EventSourcedProjection[UUID]):
    """The planning process: follows the training application and owns the training tracks
    and planning catalogues (events: planning_events); its ``policy`` re-plans them."""

    name = "planning"
    topics = tuple(get_topic(cls) for cls in (*TRIGGERS, *INPUTS))
    # Without a cache every processing event replays the tenant's catalogue, which lists every
    # track, and a release loads every track with a query of its own. The process is the only
    # writer of its aggregates (one leader, by advisory lock), so the cache can skip both the
    # fast-forward query and the defensive deep copy: an event that fails drops the cache (the
    # policy may have changed cached aggregates before it raised), and one that meets a version
    # written meanwhile (by `projections retry`, the only other writer) drops it and runs again.
    env = {
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    }

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        # Made with the first event: the class also reads the process's events for the
        # tracks view and the report trigger, which process none.
        self._quarantine: Quarantine | None = None
        # The candidates sorted once per processing event (a release re-plans every track
        # of the tenant from the same ones); never kept across events, whose catalogues may
        # have been dropped with the aggregate cache.
        self._offered: OfferedMemo = {}
        self._skill_names: dict[str, str] | None = None

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Plans with the event, or sets it aside with the events it holds back (ADR 0026)."""
        if self._quarantine is None:
            recorder = self.recorder
            if not isinstance(recorder, PostgresTrackingRecorder):
                # In memory (the policy's unit tests) there is no table to set events aside in.
                self.reapply(domain_event, tracking)
                return
            self._quarantine = Quarantine(
                self.name, recorder, platform_holds_all=True, transient=self.restarts_on
            )
        self._quarantine.apply(domain_event, tracking, self.reapply)

    def reapply(self, domain_event: Any, tracking: Tracking) -> None:
        """Plans with the event, outside the quarantine (how ``projections retry`` applies a
        held one, while the recorder is ``releasing`` it)."""
        for attempt in (1, 2):
            try:
                self._offered = {}
                super().process_event(domain_event, tracking)
                return
            except Exception as error:
                self._forget_cached_aggregates()
                if attempt == 2 or not self._written_meanwhile(error):
                    raise
                log.info("planning.aggregates_moved_meanwhile", trigger=trigger_of(domain_event))

    def restarts_on(self, error: BaseException) -> bool:
        """Errors after which the runner starts again (the event may well apply then) rather
        than set the event aside: transient ones, and aggregates that keep moving under it."""
        return is_transient(error) or self._written_meanwhile(error)

    def _written_meanwhile(self, error: BaseException) -> bool:
        """A version of one of the process's aggregates was stored since it was loaded."""
        if not isinstance(error, IntegrityError):
            return False
        cause = error.__cause__
        table = str(cast(Any, self.recorder).events_table_name).rpartition(".")[2]
        return isinstance(cause, psycopg.errors.UniqueViolation) and cause.diag.table_name == table

    def _forget_cached_aggregates(self) -> None:
        cache = self.repository.cache
        if isinstance(cache, LRUCache):
            self.repository.cache = LRUCache(maxsize=cache.maxsize)

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(
            transcoder=PassThroughTranscoder(),
            cipher=self.factory.cipher(),
            compressor=self.factory.compressor(),
        )

    # -- loading within one processing event ---------------------------------------------

    def _catalogue(
        self, tenant_id: UUID | None, processing: ProcessingEvent[UUID]
    ) -> PlanningCatalogue:
        catalogue_id = PlanningCatalogue.create_id(tenant_id)
        held = processing.aggregates.get(catalogue_id)
        if isinstance(held, PlanningCatalogue):
            return held
        try:
            found: PlanningCatalogue = self.repository.get(catalogue_id)
        except AggregateNotFoundError:
            found = PlanningCatalogue.open(tenant_id)
        processing.aggregates[catalogue_id] = found
        return found

    def _track(
        self, tenant_id: UUID, member_id: UUID, processing: ProcessingEvent[UUID]
    ) -> TrainingTrack:
        track_id = TrainingTrack.create_id(tenant_id, member_id)
        held = processing.aggregates.get(track_id)
        if isinstance(held, TrainingTrack):
            return held
        try:
            found: TrainingTrack = self.repository.get(track_id)
        except AggregateNotFoundError:
            found = TrainingTrack.open(tenant_id, member_id)
            self._catalogue(tenant_id, processing).note_track(member_id)
            self._catalogue(None, processing).note_tenant(tenant_id)
        processing.aggregates[track_id] = found
        return found

    def _existing_track(
        self, tenant_id: UUID, member_id: UUID, processing: ProcessingEvent[UUID]
    ) -> TrainingTrack | None:
        """The member's track if they have one (leaving a cohort opens none)."""
        track_id = TrainingTrack.create_id(tenant_id, member_id)
        if track_id in processing.aggregates or track_id in self.repository:
            return self._track(tenant_id, member_id, processing)
        return None

    def _replan(self, track: TrainingTrack, event: Any, processing: ProcessingEvent[UUID]) -> None:
        assert track.tenant_id is not None
        if self._skill_names is None:
            self._skill_names = {skill.code: skill.name for skill in default_framework().skills}
        track.replan(
            trigger_of(event),
            event.timestamp.date(),
            self._catalogue(track.tenant_id, processing),
            self._catalogue(None, processing),
            self._skill_names,
            self._offered,
        )

    @staticmethod
    def _collect(cause: Any, processing: ProcessingEvent[UUID]) -> None:
        """Saves what changed with the event's position, stamped like the bus stamps events:
        the planning process as actor, the causing event as request, the aggregate's tenant."""
        for held in list(processing.aggregates.values()):
            aggregate = cast(TrainingTrack | PlanningCatalogue, held)
            for pending in aggregate.collect_events():
                processing.events.append(
                    dataclasses.replace(
                        cast(Any, pending),
                        actor="system:planning",
                        request_id=trigger_of(cause),
                        tenant_id=aggregate.tenant_id,
                    )
                )

    # -- the policy ----------------------------------------------------------------------

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent[UUID]) -> None:
        return None

    @policy.register
    def _(self, e: PerformanceReview.Finalised, processing: ProcessingEvent[UUID]) -> None:
        self._apply_review(e, e.member_id, e.content, processing)

    @policy.register
    def _(self, e: PerformanceReview.Amended, processing: ProcessingEvent[UUID]) -> None:
        self._apply_review(e, e.member_id, e.content, processing)

    def _apply_review(
        self, e: Any, member_id: UUID, content: Any, processing: ProcessingEvent[UUID]
    ) -> None:
        track = self._track(tenant_of(e), member_id, processing)
        track.apply_review(
            e.originator_id, content.ratings, content.goals, content.target_role_profile
        )
        self._replan(track, e, processing)
        self._collect(e, processing)

    @policy.register
    def _(self, e: AssessmentAttempt.Completed, processing: ProcessingEvent[UUID]) -> None:
        track = self._track(tenant_of(e), e.member_id, processing)
        track.measure(e.skill, e.result.level, e.result.se)
        self._replan(track, e, processing)
        self._collect(e, processing)

    @policy.register
    def _(self, e: Curriculum.VersionPublished, processing: ProcessingEvent[UUID]) -> None:
        catalogue = self._catalogue(e.tenant_id, processing)
        catalogue.publish(PublishedModules(e.originator_id, e.version, e.modules))
        tenants = (
            [e.tenant_id] if e.tenant_id is not None else self._catalogue(None, processing).tenants
        )
        for tenant_id in tenants:
            tenant_catalogue = self._catalogue(tenant_id, processing)
            for member_id in tenant_catalogue.tracks:
                self._replan(self._track(tenant_id, member_id, processing), e, processing)
        self._collect(e, processing)

    @policy.register
    def _(self, e: Cohort.Enrolled, processing: ProcessingEvent[UUID]) -> None:
        self._join_cohort(e, e.member_ids, processing)

    @policy.register
    def _(self, e: Cohort.Promoted, processing: ProcessingEvent[UUID]) -> None:
        """A seat freed up: the first person waiting gets the cohort on their track."""
        self._join_cohort(e, (e.member_id,), processing)

    def _join_cohort(
        self, e: Any, member_ids: tuple[UUID, ...], processing: ProcessingEvent[UUID]
    ) -> None:
        catalogue = self._catalogue(e.tenant_id, processing)
        pinned = catalogue.cohorts.get(e.originator_id)
        for member_id in member_ids:
            track = self._track(tenant_of(e), member_id, processing)
            if pinned is not None:
                track.join_cohort(e.originator_id, pinned[0], pinned[1])
            self._replan(track, e, processing)
        self._collect(e, processing)

    @policy.register
    def _(self, e: Cohort.Withdrawn, processing: ProcessingEvent[UUID]) -> None:
        """Withdrawn, transferred out or deactivated: the cohort's curriculum version is no
        longer preferred (a transfer's enrolment in the other cohort follows and re-plans)."""
        self._leave_cohort(e, (e.member_id,), processing)

    @policy.register
    def _(self, e: Cohort.Cancelled, processing: ProcessingEvent[UUID]) -> None:
        self._leave_cohort(e, e.withdrawn, processing)

    def _leave_cohort(
        self, e: Any, member_ids: tuple[UUID, ...], processing: ProcessingEvent[UUID]
    ) -> None:
        for member_id in member_ids:
            track = self._existing_track(tenant_of(e), member_id, processing)
            if track is not None and track.leave_cohort(e.originator_id):
                self._replan(track, e, processing)
        self._collect(e, processing)

    @policy.register
    def _(self, e: Cohort.ModuleCompleted, processing: ProcessingEvent[UUID]) -> None:
        """A facilitator recorded a module done in the cohort: done on the track too, and
        never planned again."""
        pinned = self._catalogue(e.tenant_id, processing).cohorts.get(e.originator_id)
        track = self._existing_track(tenant_of(e), e.member_id, processing)
        if pinned is not None and track is not None:
            track.note_progress(str(pinned[0]), e.module_key, "completed")
        self._collect(e, processing)

    @policy.register
    def _(self, e: Member.Deactivated, processing: ProcessingEvent[UUID]) -> None:
        # A track is opened if need be, so that evidence arriving later plans nothing either.
        self._track(tenant_of(e), e.originator_id, processing).freeze()
        self._collect(e, processing)

    @policy.register
    def _(self, e: Member.Reactivated, processing: ProcessingEvent[UUID]) -> None:
        track = self._existing_track(tenant_of(e), e.originator_id, processing)
        if track is not None and track.unfreeze() and track.has_inputs:
            self._replan(track, e, processing)
        self._collect(e, processing)

    @policy.register
    def _(self, e: Curriculum.Retired, processing: ProcessingEvent[UUID]) -> None:
        self._catalogue(e.tenant_id, processing).retire(e.originator_id)
        self._collect(e, processing)

    @policy.register
    def _(self, e: RoleProfile.Defined, processing: ProcessingEvent[UUID]) -> None:
        profile = ProfileTargets(e.originator_id, e.key, e.name, e.targets)
        self._catalogue(e.tenant_id, processing).set_profile(profile)
        self._collect(e, processing)

    @policy.register
    def _(self, e: RoleProfile.Revised, processing: ProcessingEvent[UUID]) -> None:
        catalogue = self._catalogue(e.tenant_id, processing)
        key = catalogue.profile_key(e.originator_id)
        if key is not None:
            catalogue.set_profile(ProfileTargets(e.originator_id, key, e.name, e.targets))
        self._collect(e, processing)

    @policy.register
    def _(self, e: Cohort.Scheduled, processing: ProcessingEvent[UUID]) -> None:
        self._catalogue(e.tenant_id, processing).schedule_cohort(
            e.originator_id, e.curriculum_id, e.curriculum_version
        )
        self._collect(e, processing)

    @policy.register
    def _(self, e: LearningRecord.ModuleProgressed, processing: ProcessingEvent[UUID]) -> None:
        track = self._track(tenant_of(e), e.member_id, processing)
        track.note_progress(e.curriculum_id, e.key, str(e.state))
        if str(e.state) == "skipped":
            self._replan(track, e, processing)
        self._collect(e, processing)
