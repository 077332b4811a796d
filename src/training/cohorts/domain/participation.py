"""Who is in which open cohort, across cohorts: the records an enrolment writes beside the
cohort so that nobody is in two open cohorts of one curriculum (``CurriculumEnrolments``) and
no deactivated member is placed (``Participation``, ADR 0025)."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import InvalidTransition


class CurriculumEnrolments(TrainingAggregate):
    """Who is in an open cohort of one curriculum, so nobody is in two at once."""

    TOPIC = "training.cohorts:CurriculumEnrolments"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.cohorts:CurriculumEnrolments.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.cohorts:CurriculumEnrolments.Created"

    class Opened(Created):
        TOPIC = "training.cohorts:CurriculumEnrolments.Opened"
        curriculum_id: UUID

    class Joined(Event):
        TOPIC = "training.cohorts:CurriculumEnrolments.Joined"
        cohort_id: UUID
        member_ids: tuple[UUID, ...]

    class Left(Event):
        TOPIC = "training.cohorts:CurriculumEnrolments.Left"
        member_ids: tuple[UUID, ...]

    @staticmethod
    def create_id(tenant_id: UUID, curriculum_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "curriculum-enrolments", curriculum_id)

    @classmethod
    def open(cls, tenant_id: UUID, curriculum_id: UUID) -> CurriculumEnrolments:
        return cls(curriculum_id=curriculum_id, tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, curriculum_id: UUID, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.curriculum_id = curriculum_id
        self.cohort_of: dict[UUID, UUID] = {}

    def join(self, cohort_id: UUID, member_ids: tuple[UUID, ...]) -> list[UUID]:
        """Records the members in ``cohort_id``; returns those already in another cohort."""
        elsewhere = [m for m in member_ids if self.cohort_of.get(m, cohort_id) != cohort_id]
        joining = tuple(m for m in member_ids if m not in self.cohort_of)
        if joining:
            self._joined(cohort_id=cohort_id, member_ids=joining)
        return elsewhere

    @event(Joined)
    def _joined(self, cohort_id: UUID, member_ids: tuple[UUID, ...]) -> None:
        for member_id in member_ids:
            self.cohort_of[member_id] = cohort_id

    def leave(self, member_ids: tuple[UUID, ...]) -> None:
        leaving = tuple(m for m in member_ids if m in self.cohort_of)
        if leaving:
            self._left(member_ids=leaving)

    @event(Left)
    def _left(self, member_ids: tuple[UUID, ...]) -> None:
        for member_id in member_ids:
            self.cohort_of.pop(member_id, None)


class Participation(TrainingAggregate):
    """One member's open cohorts, and whether they may join more.

    Every enrolment (a transfer's too) writes the record of each person it places, and a
    deactivation writes it too: the two racing conflict on its version and the loser is
    decided again on fresh state, so an inactive member is never enrolled (ADR 0025). A
    deactivation reads from it, in the event store, every cohort to withdraw the member from.

    Completing or cancelling a cohort does not touch the records of its people, so a record
    may still list a cohort that has closed since; whoever reads the list checks each cohort.
    """

    TOPIC = "training.cohorts:Participation"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.cohorts:Participation.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.cohorts:Participation.Created"

    class Opened(Created):
        """``first_cohort``: the cohort the member joined, when a placement opened the record
        (one event, not two, for each of the thousands a bulk enrolment places)."""

        TOPIC = "training.cohorts:Participation.Opened"
        member_id: UUID
        first_cohort: UUID | None

    class Joined(Event):
        TOPIC = "training.cohorts:Participation.Joined"
        cohort_id: UUID

    class Left(Event):
        TOPIC = "training.cohorts:Participation.Left"
        cohort_id: UUID

    class Closed(Event):
        """The member was deactivated: withdrawn from ``withdrawn``, and joins nothing more."""

        TOPIC = "training.cohorts:Participation.Closed"
        withdrawn: tuple[UUID, ...]

    class Reopened(Event):
        """The member was reactivated and may join cohorts again."""

        TOPIC = "training.cohorts:Participation.Reopened"

    @staticmethod
    def create_id(tenant_id: UUID, member_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "participation", member_id)

    @classmethod
    def open(
        cls, tenant_id: UUID, member_id: UUID, first_cohort: UUID | None = None
    ) -> Participation:
        return cls._create(
            cls.Opened,
            id=cls.create_id(tenant_id, member_id),
            member_id=member_id,
            first_cohort=first_cohort,
            tenant_id=tenant_id,
        )

    @event(Opened)
    def __init__(
        self, member_id: UUID, first_cohort: UUID | None, *, tenant_id: UUID | None = None
    ) -> None:
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.cohorts: list[UUID] = [] if first_cohort is None else [first_cohort]
        self.closed = False

    def join(self, cohort_id: UUID) -> None:
        if self.closed:
            raise InvalidTransition("the member is deactivated and joins no cohort")
        if cohort_id not in self.cohorts:
            self._joined(cohort_id=cohort_id)

    @event(Joined)
    def _joined(self, cohort_id: UUID) -> None:
        self.cohorts.append(cohort_id)

    def leave(self, cohort_id: UUID) -> None:
        if cohort_id in self.cohorts:
            self._left(cohort_id=cohort_id)

    @event(Left)
    def _left(self, cohort_id: UUID) -> None:
        self.cohorts.remove(cohort_id)

    def close(self, withdrawn: tuple[UUID, ...]) -> None:
        """Written on every deactivation, even with nothing to withdraw from: that write is
        what makes a concurrent enrolment of the member conflict."""
        self._closed(withdrawn=withdrawn)

    @event(Closed)
    def _closed(self, withdrawn: tuple[UUID, ...]) -> None:
        self.cohorts = []
        self.closed = True

    def reopen(self) -> None:
        if self.closed:
            self._reopened()

    @event(Reopened)
    def _reopened(self) -> None:
        self.closed = False
