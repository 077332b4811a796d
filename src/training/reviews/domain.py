"""Performance reviews: HR records how an engineer performs and where they should grow.

A review is drafted, finalised, and afterwards only amended with a reason, so the record of
what was decided and when stays intact. A finalised review's content (ratings, goals, target
role) travels in its ``Finalised`` (and ``Amended``) event: whoever re-plans the engineer's
training reads it from there without asking anything else.

Its free text (strengths, why an amendment was made) may name the person reviewed or others,
so it is personal data and never enters an event: it is kept beside the events, in the same
transaction (``training.review_texts``), and erasing the person reviewed deletes it. Events
only say which text changed (``texts``), as a member's events say which personal data did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import InvalidTransition, RuleViolated
from training.skills.domain import check_level

CYCLE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$")
MAX_STRENGTHS = 20
MAX_TEXT = 500
MAX_GOALS = 20
STRENGTHS = "strengths"
REASON = "reason"


class ReviewStatus(StrEnum):
    DRAFT = "draft"
    FINALISED = "finalised"


@dataclass(frozen=True, slots=True)
class SkillRating:
    skill: str
    level: int


@dataclass(frozen=True, slots=True)
class Goal:
    goal_id: str  # e.g. "G2": how a plan's reasons name the goal
    skill: str
    target_level: int
    due: date


@dataclass(frozen=True, slots=True)
class ReviewContent:
    """What the review decides (kept in its events); its free text is kept beside them."""

    ratings: tuple[SkillRating, ...]
    overall_rating: int
    goals: tuple[Goal, ...]
    target_role_profile: str | None


def check_strengths(strengths: tuple[str, ...]) -> tuple[str, ...]:
    if len(strengths) > MAX_STRENGTHS or any(len(s) > MAX_TEXT for s in strengths):
        raise RuleViolated("at most 20 strengths of 500 characters", field="strengths")
    if any("\x00" in s for s in strengths):
        raise RuleViolated("strengths may not contain NUL characters", field="strengths")
    return tuple(s.strip() for s in strengths if s.strip())


def check_reason(reason: str) -> str:
    cleaned = reason.strip()[:MAX_TEXT]
    if not cleaned:
        raise RuleViolated("say why the finalised review changes", field="reason")
    if "\x00" in cleaned:
        raise RuleViolated("the reason may not contain NUL characters", field="reason")
    return cleaned


def _without_text(state: dict[str, Any]) -> None:
    """Upcasting: a version 1 event carried the strengths in its content."""
    content = state.get("content")
    if isinstance(content, dict):
        content.pop("strengths", None)


def check_content(content: ReviewContent, usable_skills: frozenset[str]) -> ReviewContent:
    if not 1 <= content.overall_rating <= 5:
        raise RuleViolated("the overall rating is 1 to 5", field="overall_rating")
    seen: set[str] = set()
    for index, rating in enumerate(content.ratings):
        if rating.skill not in usable_skills:
            raise RuleViolated(f"unknown skill {rating.skill!r}", field=f"ratings[{index}].skill")
        if rating.skill in seen:
            raise RuleViolated("a skill is rated once", field=f"ratings[{index}].skill")
        check_level(rating.level, f"ratings[{index}].level")
        seen.add(rating.skill)
    goal_ids: set[str] = set()
    for index, goal in enumerate(content.goals[: MAX_GOALS + 1]):
        if index == MAX_GOALS:
            raise RuleViolated(f"at most {MAX_GOALS} goals", field="goals")
        if goal.skill not in usable_skills:
            raise RuleViolated(f"unknown skill {goal.skill!r}", field=f"goals[{index}].skill")
        if goal.goal_id in goal_ids or not goal.goal_id.strip():
            raise RuleViolated("goal ids are distinct", field=f"goals[{index}].goal_id")
        check_level(goal.target_level, f"goals[{index}].target_level")
        goal_ids.add(goal.goal_id)
    return ReviewContent(
        tuple(sorted(content.ratings, key=lambda r: r.skill)),
        content.overall_rating,
        content.goals,
        content.target_role_profile,
    )


class PerformanceReview(TrainingAggregate):
    TOPIC = "training.reviews:PerformanceReview"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.reviews:PerformanceReview.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.reviews:PerformanceReview.Created"

    class Drafted(Created):
        TOPIC = "training.reviews:PerformanceReview.Drafted"
        class_version = 2
        external_id: str
        cycle: str
        member_id: UUID
        reviewer_id: UUID | None
        content: ReviewContent

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            _without_text(state)

    class Revised(Event):
        """``texts``: the free text fields that changed (their values are kept beside)."""

        TOPIC = "training.reviews:PerformanceReview.Revised"
        class_version = 2
        content: ReviewContent
        texts: tuple[str, ...]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            _without_text(state)
            state["texts"] = ()

    class Finalised(Event):
        TOPIC = "training.reviews:PerformanceReview.Finalised"
        class_version = 2
        member_id: UUID
        cycle: str
        content: ReviewContent

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            _without_text(state)

    class Amended(Event):
        """The reason, and the strengths when ``texts`` names them, are kept beside."""

        TOPIC = "training.reviews:PerformanceReview.Amended"
        class_version = 2
        member_id: UUID
        content: ReviewContent
        texts: tuple[str, ...]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            _without_text(state)
            state.pop("reason", None)
            state["texts"] = (REASON,)

    @staticmethod
    def create_id(tenant_id: UUID, external_id: str) -> UUID:
        """Idempotent by the HRIS's review id: importing the same review twice finds it."""
        return stable_id("tenants", tenant_id, "reviews", external_id)

    @classmethod
    def draft(
        cls,
        *,
        tenant_id: UUID,
        external_id: str,
        cycle: str,
        member_id: UUID,
        reviewer_id: UUID | None,
        content: ReviewContent,
        usable_skills: frozenset[str],
    ) -> PerformanceReview:
        if not CYCLE_PATTERN.match(cycle):
            raise RuleViolated("a cycle is a short name such as 2026-H2", field="cycle")
        if not 1 <= len(external_id) <= 128:
            raise RuleViolated("an external id has 1-128 characters", field="external_id")
        if "@" in external_id:
            # It stays in the review's history and seeds its id: never an email address.
            raise RuleViolated(
                "an external id may not contain '@': it is kept in the review's history, "
                "which erasure cannot change; send the HRIS's review key",
                field="external_id",
            )
        if reviewer_id == member_id:
            raise RuleViolated("nobody reviews themselves", field="reviewer_id")
        return cls(
            external_id=external_id,
            cycle=cycle,
            member_id=member_id,
            reviewer_id=reviewer_id,
            content=check_content(content, usable_skills),
            tenant_id=tenant_id,
        )

    @event(Drafted)
    def __init__(
        self,
        external_id: str,
        cycle: str,
        member_id: UUID,
        reviewer_id: UUID | None,
        content: ReviewContent,
        *,
        tenant_id: UUID | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.external_id = external_id
        self.cycle = cycle
        self.member_id = member_id
        self.reviewer_id = reviewer_id
        self.content = content
        self.status = ReviewStatus.DRAFT
        self.amendments = 0

    def revise(
        self,
        content: ReviewContent,
        usable_skills: frozenset[str],
        *,
        strengths_changed: bool = False,
    ) -> None:
        """``strengths_changed``: the caller keeps new strengths beside the events."""
        if self.status is not ReviewStatus.DRAFT:
            raise InvalidTransition("a finalised review is amended, with a reason")
        content = check_content(content, usable_skills)
        if content != self.content or strengths_changed:
            self._revised(content=content, texts=(STRENGTHS,) if strengths_changed else ())

    @event(Revised)
    def _revised(self, content: ReviewContent, texts: tuple[str, ...]) -> None:
        self.content = content

    def finalise(self) -> None:
        if self.status is ReviewStatus.FINALISED:
            raise InvalidTransition("the review is already finalised")
        self._finalised(member_id=self.member_id, cycle=self.cycle, content=self.content)

    @event(Finalised)
    def _finalised(self, member_id: UUID, cycle: str, content: ReviewContent) -> None:
        self.status = ReviewStatus.FINALISED

    def amend(
        self,
        content: ReviewContent,
        reason: str,
        usable_skills: frozenset[str],
        *,
        strengths_changed: bool = False,
    ) -> str:
        """Answers the reason, for the caller to keep beside the events with any new
        strengths (``strengths_changed``)."""
        if self.status is not ReviewStatus.FINALISED:
            raise InvalidTransition("a draft is revised, not amended")
        reason = check_reason(reason)
        content = check_content(content, usable_skills)
        if content == self.content and not strengths_changed:
            raise InvalidTransition("the amendment changes nothing")
        texts = (REASON, STRENGTHS) if strengths_changed else (REASON,)
        self._amended(member_id=self.member_id, content=content, texts=texts)
        return reason

    @event(Amended)
    def _amended(self, member_id: UUID, content: ReviewContent, texts: tuple[str, ...]) -> None:
        self.content = content
        self.amendments += 1
