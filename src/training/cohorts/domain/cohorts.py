"""Cohorts: a scheduled run of a pinned curriculum version, its people and live sessions.

Capacity is held by the cohort itself: enrolling into a full cohort puts the engineer on the
waitlist, and a withdrawal promotes the first person waiting. Two requests racing for the
last seat both write the cohort's next version; one wins and the other, run again, finds
the cohort full. "One active cohort per curriculum" spans cohorts: the records of
``participation`` change in the same save.

The video of a live session stays in the tenant's conferencing tool; a session only links
to it and records attendance, interaction counts and feedback imported afterwards.

Why a cohort was cancelled, or a person withdrawn, is free text that may name people (ADR
0020): the events say who left and when; the reasons are kept beside them, by the cohort's
version that recorded each, and erased or redacted with the people they name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate
from training.core.errors import AlreadyExists, InvalidTransition, NotFound, RuleViolated

MAX_CAPACITY = 10_000
MAX_NAME = 120
MAX_REASON = 500
URL_PATTERN = re.compile(r"^https://[^\s]{3,2000}$")


class CohortStatus(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Placement(StrEnum):
    ENROLLED = "enrolled"
    WAITLISTED = "waitlisted"


@dataclass(frozen=True, slots=True)
class Attendance:
    member_id: UUID
    joined_at: datetime
    left_at: datetime

    @property
    def minutes(self) -> float:
        return max((self.left_at - self.joined_at).total_seconds() / 60, 0.0)


@dataclass(frozen=True, slots=True)
class Session:
    session_id: UUID
    title: str
    starts_at: datetime
    duration_minutes: int
    join_url: str


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleViolated(f"{name!r} is not an IANA time zone", field="timezone") from None
    return name


def check_window(starts_on: date, ends_on: date) -> None:
    if ends_on < starts_on:
        raise RuleViolated("a cohort ends on or after the day it starts", field="ends_on")


def check_capacity(capacity: int) -> int:
    if not 1 <= capacity <= MAX_CAPACITY:
        raise RuleViolated(f"capacity is 1-{MAX_CAPACITY}", field="capacity")
    return capacity


def cleaned_reason(reason: str) -> str:
    """A cancellation's or withdrawal's reason as it is kept."""
    return reason.strip()[:MAX_REASON]


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """One person withdrawn: the reason to keep beside the events, the cohort's version that
    recorded it, and who was promoted from the waitlist into the freed seat, if anyone."""

    reason: str
    version: int
    promoted: UUID | None


def check_rating(value: int, field: str) -> int:
    if not 1 <= value <= 5:
        raise RuleViolated("a rating is 1 to 5", field=field)
    return value


class Cohort(TrainingAggregate):
    TOPIC = "training.cohorts:Cohort"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.cohorts:Cohort.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.cohorts:Cohort.Created"

    class Scheduled(Created):
        TOPIC = "training.cohorts:Cohort.Scheduled"
        name: str
        curriculum_id: UUID
        curriculum_version: int
        module_keys: tuple[str, ...]
        starts_on: date
        ends_on: date
        timezone: str
        capacity: int
        facilitators: tuple[UUID, ...]

    class CapacityChanged(Event):
        TOPIC = "training.cohorts:Cohort.CapacityChanged"
        capacity: int

    class Started(Event):
        TOPIC = "training.cohorts:Cohort.Started"

    class Completed(Event):
        TOPIC = "training.cohorts:Cohort.Completed"

    class Cancelled(Event):
        """The reason is kept beside the events, by this event's version."""

        TOPIC = "training.cohorts:Cohort.Cancelled"
        class_version = 2
        withdrawn: tuple[UUID, ...]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.pop("reason", None)

    class Enrolled(Event):
        TOPIC = "training.cohorts:Cohort.Enrolled"
        member_ids: tuple[UUID, ...]

    class Waitlisted(Event):
        TOPIC = "training.cohorts:Cohort.Waitlisted"
        member_ids: tuple[UUID, ...]

    class Withdrawn(Event):
        """The reason is kept beside the events, by this event's version."""

        TOPIC = "training.cohorts:Cohort.Withdrawn"
        class_version = 2
        member_id: UUID

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.pop("reason", None)

    class Promoted(Event):
        """The first person waiting takes a freed seat."""

        TOPIC = "training.cohorts:Cohort.Promoted"
        member_id: UUID

    class SessionScheduled(Event):
        TOPIC = "training.cohorts:Cohort.SessionScheduled"
        session: Session

    class AttendanceRecorded(Event):
        TOPIC = "training.cohorts:Cohort.AttendanceRecorded"
        session_id: UUID
        attendance: tuple[Attendance, ...]
        comments: int
        questions: int
        reactions: int

    class FeedbackGiven(Event):
        TOPIC = "training.cohorts:Cohort.FeedbackGiven"
        session_id: UUID
        member_id: UUID
        content: int
        delivery: int
        interaction: int

    class ModuleCompleted(Event):
        TOPIC = "training.cohorts:Cohort.ModuleCompleted"
        member_id: UUID
        module_key: str
        completed_on: date

    @classmethod
    def schedule(
        cls,
        *,
        tenant_id: UUID,
        name: str,
        curriculum_id: UUID,
        curriculum_version: int,
        module_keys: tuple[str, ...],
        starts_on: date,
        ends_on: date,
        timezone: str,
        capacity: int,
        facilitators: tuple[UUID, ...],
    ) -> Cohort:
        cleaned = name.strip()
        if not cleaned or len(cleaned) > MAX_NAME:
            raise RuleViolated(f"a cohort name has 1-{MAX_NAME} characters", field="name")
        check_window(starts_on, ends_on)
        if not module_keys:
            raise RuleViolated("the curriculum version has no modules", field="curriculum_version")
        return cls(
            name=cleaned,
            curriculum_id=curriculum_id,
            curriculum_version=curriculum_version,
            module_keys=module_keys,
            starts_on=starts_on,
            ends_on=ends_on,
            timezone=check_timezone(timezone),
            capacity=check_capacity(capacity),
            facilitators=tuple(dict.fromkeys(facilitators)),
            tenant_id=tenant_id,
        )

    @event(Scheduled)
    def __init__(
        self,
        name: str,
        curriculum_id: UUID,
        curriculum_version: int,
        module_keys: tuple[str, ...],
        starts_on: date,
        ends_on: date,
        timezone: str,
        capacity: int,
        facilitators: tuple[UUID, ...],
        *,
        tenant_id: UUID | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.curriculum_id = curriculum_id
        self.curriculum_version = curriculum_version
        self.module_keys = module_keys
        self.starts_on = starts_on
        self.ends_on = ends_on
        self.timezone = timezone
        self.capacity = capacity
        self.facilitators = facilitators
        self.status = CohortStatus.PLANNED
        self.enrolled: list[UUID] = []
        self.waitlist: list[UUID] = []
        self.sessions: dict[UUID, Session] = {}
        self.completed: dict[UUID, set[str]] = {}

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Planned or running: people may still join and leave."""
        return self.status in (CohortStatus.PLANNED, CohortStatus.RUNNING)

    def _require_open(self) -> None:
        if not self.is_open:
            raise InvalidTransition(f"the cohort is {self.status}")

    def start(self) -> None:
        if self.status is not CohortStatus.PLANNED:
            raise InvalidTransition(f"only a planned cohort starts; this one is {self.status}")
        self._started()

    @event(Started)
    def _started(self) -> None:
        self.status = CohortStatus.RUNNING

    def complete(self) -> None:
        if self.status is not CohortStatus.RUNNING:
            raise InvalidTransition(f"only a running cohort completes; this one is {self.status}")
        self._completed()

    @event(Completed)
    def _completed(self) -> None:
        self.status = CohortStatus.COMPLETED

    def cancel(self, reason: str) -> tuple[UUID, ...]:
        """Cancels the cohort and withdraws everyone; returns who was withdrawn. The reason
        (``cleaned_reason``) is the caller's to keep, by the cohort's version after this."""
        self._require_open()
        if not cleaned_reason(reason):
            raise RuleViolated("say why the cohort is cancelled", field="reason")
        withdrawn = (*self.enrolled, *self.waitlist)
        self._cancelled(withdrawn=withdrawn)
        return withdrawn

    @event(Cancelled)
    def _cancelled(self, withdrawn: tuple[UUID, ...]) -> None:
        self.status = CohortStatus.CANCELLED
        self.enrolled = []
        self.waitlist = []

    def change_capacity(self, capacity: int) -> None:
        self._require_open()
        check_capacity(capacity)
        if capacity < len(self.enrolled):
            raise RuleViolated(
                f"{len(self.enrolled)} people are enrolled; withdraw some before lowering "
                "the capacity below that",
                field="capacity",
            )
        if capacity != self.capacity:
            self._capacity_changed(capacity=capacity)
            self._promote_while_room()

    @event(CapacityChanged)
    def _capacity_changed(self, capacity: int) -> None:
        self.capacity = capacity

    # -- enrolment ------------------------------------------------------------------------

    def place(self, member_id: UUID) -> Placement | None:
        if member_id in self.enrolled:
            return Placement.ENROLLED
        if member_id in self.waitlist:
            return Placement.WAITLISTED
        return None

    @property
    def free_seats(self) -> int:
        return max(self.capacity - len(self.enrolled), 0)

    def enrol(self, member_ids: tuple[UUID, ...]) -> dict[UUID, Placement]:
        """Seats as many as fit, in order, and waitlists the rest."""
        self._require_open()
        new = tuple(dict.fromkeys(m for m in member_ids if self.place(m) is None))
        already = [m for m in member_ids if self.place(m) is not None]
        if already and not new:
            raise AlreadyExists("already enrolled or waiting in this cohort", field="member_ids")
        seated, waiting = new[: self.free_seats], new[self.free_seats :]
        if seated:
            self._enrolled(member_ids=seated)
        if waiting:
            self._waitlisted(member_ids=waiting)
        return {
            **dict.fromkeys(seated, Placement.ENROLLED),
            **dict.fromkeys(waiting, Placement.WAITLISTED),
        }

    @event(Enrolled)
    def _enrolled(self, member_ids: tuple[UUID, ...]) -> None:
        self.enrolled.extend(member_ids)

    @event(Waitlisted)
    def _waitlisted(self, member_ids: tuple[UUID, ...]) -> None:
        self.waitlist.extend(member_ids)

    def withdraw(self, member_id: UUID, reason: str) -> Withdrawal:
        """Withdraws one person, promoting the first person waiting into a freed seat."""
        self._require_open()
        if self.place(member_id) is None:
            raise NotFound(f"member {member_id} is not in this cohort")
        kept = cleaned_reason(reason)
        if not kept:
            raise RuleViolated("say why the person is withdrawn", field="reason")
        self._withdrawn(member_id=member_id)
        version = self.version
        return Withdrawal(kept, version, self._promote_while_room())

    @event(Withdrawn)
    def _withdrawn(self, member_id: UUID) -> None:
        if member_id in self.enrolled:
            self.enrolled.remove(member_id)
        else:
            self.waitlist.remove(member_id)

    def _promote_while_room(self) -> UUID | None:
        first: UUID | None = None
        while self.waitlist and self.free_seats > 0:
            promoted = self.waitlist[0]
            self._promoted(member_id=promoted)
            first = first or promoted
        return first

    @event(Promoted)
    def _promoted(self, member_id: UUID) -> None:
        self.waitlist.remove(member_id)
        self.enrolled.append(member_id)

    # -- live sessions --------------------------------------------------------------------

    def schedule_session(self, session: Session) -> None:
        self._require_open()
        title = session.title.strip()
        if not title or len(title) > MAX_NAME:
            raise RuleViolated(f"a session title has 1-{MAX_NAME} characters", field="title")
        if session.starts_at.tzinfo is None:
            raise RuleViolated("give the start time with its offset", field="starts_at")
        if not 5 <= session.duration_minutes <= 600:
            raise RuleViolated("a session lasts 5-600 minutes", field="duration_minutes")
        if not URL_PATTERN.match(session.join_url):
            raise RuleViolated("the join link is an https URL", field="join_url")
        if session.session_id in self.sessions:
            raise AlreadyExists("the session exists", field="session_id")
        self._session_scheduled(
            session=Session(
                session.session_id,
                title,
                session.starts_at,
                session.duration_minutes,
                session.join_url,
            )
        )

    @event(SessionScheduled)
    def _session_scheduled(self, session: Session) -> None:
        self.sessions[session.session_id] = session

    def record_attendance(
        self,
        session_id: UUID,
        attendance: tuple[Attendance, ...],
        comments: int,
        questions: int,
        reactions: int,
    ) -> None:
        if session_id not in self.sessions:
            raise NotFound(f"session {session_id} not found")
        for index, record in enumerate(attendance):
            if record.member_id not in self.enrolled:
                raise RuleViolated(
                    "only enrolled people attend", field=f"attendance[{index}].member_id"
                )
            if record.left_at < record.joined_at:
                raise RuleViolated("left before joining", field=f"attendance[{index}].left_at")
        if min(comments, questions, reactions) < 0:
            raise RuleViolated("counts are zero or more", field="interactions")
        self._attendance_recorded(
            session_id=session_id,
            attendance=attendance,
            comments=comments,
            questions=questions,
            reactions=reactions,
        )

    @event(AttendanceRecorded)
    def _attendance_recorded(
        self,
        session_id: UUID,
        attendance: tuple[Attendance, ...],
        comments: int,
        questions: int,
        reactions: int,
    ) -> None:
        pass

    def give_feedback(
        self, session_id: UUID, member_id: UUID, content: int, delivery: int, interaction: int
    ) -> None:
        if session_id not in self.sessions:
            raise NotFound(f"session {session_id} not found")
        if member_id not in self.enrolled:
            raise RuleViolated("only enrolled people give feedback", field="member_id")
        self._feedback_given(
            session_id=session_id,
            member_id=member_id,
            content=check_rating(content, "content"),
            delivery=check_rating(delivery, "delivery"),
            interaction=check_rating(interaction, "interaction"),
        )

    @event(FeedbackGiven)
    def _feedback_given(
        self, session_id: UUID, member_id: UUID, content: int, delivery: int, interaction: int
    ) -> None:
        pass

    # -- progress -------------------------------------------------------------------------

    def complete_module(self, member_id: UUID, module_key: str, completed_on: date) -> None:
        if member_id not in self.enrolled:
            raise RuleViolated("only enrolled people make progress", field="member_id")
        if module_key not in self.module_keys:
            raise RuleViolated(
                f"module {module_key!r} is not in the cohort's curriculum version",
                field="module_key",
            )
        if module_key not in self.completed.get(member_id, set()):
            self._module_completed(
                member_id=member_id, module_key=module_key, completed_on=completed_on
            )

    @event(ModuleCompleted)
    def _module_completed(self, member_id: UUID, module_key: str, completed_on: date) -> None:
        self.completed.setdefault(member_id, set()).add(module_key)
