"""A review's form on the HR manager's pages: the values as sent (kept to be shown again when
refused), checked by the API's rules into the content the review commands take, and a
refused command's field named as the form names it.

Ratings and goals are rows of the form (``rating_skill_0``, ``rating_level_0``, …; a blank
row is ignored); strengths are one per line.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

import msgspec

from training.core.errors import DomainError
from training.core.web.i18n import N_, gettext
from training.reviews.domain import Goal, ReviewContent, SkillRating
from training.reviews.http import Cycle, GoalIn, RatingIn, Skill

# Rows shown for ratings and goals beyond those already filled.
EMPTY_ROWS = 5
MAX_ROWS = 100
MAX_STRENGTHS = 20
MAX_TEXT = 500

FIELD_ADVICE: dict[str, str] = {
    "cycle": N_(
        "Enter a cycle such as 2026-H2: letters, digits, spaces, dots, dashes or "
        "underscores, at most 40 characters."
    ),
    "member_id": N_("Enter the person's id, as shown on their page under People."),
    "rating": N_("Choose a skill and a level from 1 to 7, or leave both empty."),
    "overall_rating": N_("Choose an overall rating from 1 to 5."),
    "strengths": N_("Write at most 20 strengths, one a line, each of at most 500 characters."),
    "goal": N_(
        "Choose a skill, a target level from 1 to 7 and a due date, or leave the row empty."
    ),
    "target_role_profile": N_("Enter the key of one of your role profiles, or leave it empty."),
    "reason": N_("Say why the finalised review changes, in at most 500 characters."),
}


def advice(kind: str) -> str:
    return gettext(FIELD_ADVICE[kind])


@dataclasses.dataclass
class RatingRow:
    skill: str = ""
    level: str = ""


@dataclasses.dataclass
class GoalRow:
    goal_id: str = ""
    skill: str = ""
    target_level: str = ""
    due: str = ""


def _padded(rows: list[Any], row: type) -> list[Any]:
    filled = [r for r in rows if any(dataclasses.astuple(r)[-3:])]
    return filled + [row() for _ in range(EMPTY_ROWS)]


@dataclasses.dataclass
class ReviewForm:
    """A review's form as sent: every value kept, to be shown again when refused."""

    cycle: str = ""
    member_id: str = ""
    ratings: list[RatingRow] = dataclasses.field(default_factory=list)
    overall_rating: str = ""
    strengths: str = ""
    goals: list[GoalRow] = dataclasses.field(default_factory=list)
    target_role_profile: str = ""
    reason: str = ""

    @classmethod
    def of(cls, form: Any) -> ReviewForm:
        def value(name: str, size: int = 64) -> str:
            return str(form.get(name, "")).strip()[:size]

        ratings = [
            RatingRow(value(f"rating_skill_{i}"), value(f"rating_level_{i}", 8))
            for i in range(MAX_ROWS)
            if f"rating_skill_{i}" in form or f"rating_level_{i}" in form
        ]
        goals = [
            GoalRow(
                value(f"goal_id_{i}", 20),
                value(f"goal_skill_{i}"),
                value(f"goal_level_{i}", 8),
                value(f"goal_due_{i}", 20),
            )
            for i in range(MAX_ROWS)
            if f"goal_skill_{i}" in form or f"goal_due_{i}" in form
        ]
        return cls(
            cycle=value("cycle", 100),
            member_id=value("member_id"),
            ratings=ratings,
            overall_rating=value("overall_rating", 8),
            strengths=str(form.get("strengths", ""))[: MAX_STRENGTHS * (MAX_TEXT + 2)],
            goals=goals,
            target_role_profile=value("target_role_profile"),
            reason=str(form.get("reason", "")).strip()[: MAX_TEXT * 2],
        )

    @classmethod
    def of_review(cls, content: ReviewContent, strengths: tuple[str, ...]) -> ReviewForm:
        return cls(
            ratings=[RatingRow(r.skill, str(r.level)) for r in content.ratings],
            overall_rating=str(content.overall_rating),
            strengths="\n".join(strengths),
            goals=[
                GoalRow(g.goal_id, g.skill, str(g.target_level), g.due.isoformat())
                for g in content.goals
            ],
            target_role_profile=content.target_role_profile or "",
        )

    def shown(self) -> ReviewForm:
        """The form with empty rows to add ratings and goals."""
        return dataclasses.replace(
            self, ratings=_padded(self.ratings, RatingRow), goals=_padded(self.goals, GoalRow)
        )


@dataclasses.dataclass
class Checked:
    """A review's form checked: the content and strengths, or what to say beside each field
    (ratings and goals by their row: ``rating_2``, ``goal_0``)."""

    content: ReviewContent | None
    strengths: tuple[str, ...]
    errors: dict[str, str]
    # The form's row of each rating and goal sent, by its place in the command.
    rating_rows: list[int]
    goal_rows: list[int]

    def refused(self, error: DomainError) -> None:
        """Names the field a command refused as the form names it, with the rule's words."""
        field = error.field or ""
        for prefix, rows, name in (
            ("ratings[", self.rating_rows, "rating"),
            ("goals[", self.goal_rows, "goal"),
        ):
            if field.startswith(prefix):
                index = field[len(prefix) :].split("]", 1)[0]
                if index.isdigit() and int(index) < len(rows):
                    field = f"{name}_{rows[int(index)]}"
                else:
                    field = f"{name}s"
        if field in ("external_id", "reviewer_id", "reviews"):
            field = ""
        self.errors[field] = error.detail


def _next_goal_id(used: set[str]) -> str:
    n = 1
    while f"G{n}" in used:
        n += 1
    used.add(f"G{n}")
    return f"G{n}"


def check(form: ReviewForm) -> Checked:
    """The content of ``form`` by the API's rules for each value (the commands then apply
    the review's own rules: known skills, one rating a skill)."""
    errors: dict[str, str] = {}
    ratings: list[SkillRating] = []
    rating_rows: list[int] = []
    for row, rating in enumerate(form.ratings):
        if not rating.skill and not rating.level:
            continue
        try:
            sent = msgspec.convert(
                {"skill": rating.skill, "level": rating.level}, RatingIn, strict=False
            )
        except msgspec.ValidationError:
            errors[f"rating_{row}"] = advice("rating")
        else:
            ratings.append(SkillRating(sent.skill, sent.level))
            rating_rows.append(row)
    goals: list[Goal] = []
    goal_rows: list[int] = []
    used = {g.goal_id for g in form.goals if g.goal_id}
    for row, goal in enumerate(form.goals):
        if not (goal.skill or goal.target_level or goal.due):
            continue
        try:
            sent_goal = msgspec.convert(
                {
                    "goal_id": goal.goal_id or _next_goal_id(used),
                    "skill": goal.skill,
                    "target_level": goal.target_level,
                    "due": goal.due,
                },
                GoalIn,
                strict=False,
            )
        except msgspec.ValidationError:
            errors[f"goal_{row}"] = advice("goal")
        else:
            goals.append(
                Goal(sent_goal.goal_id, sent_goal.skill, sent_goal.target_level, sent_goal.due)
            )
            goal_rows.append(row)
    overall = form.overall_rating
    if not (overall.isdigit() and 1 <= int(overall) <= 5):
        errors["overall_rating"] = advice("overall_rating")
    profile = form.target_role_profile or None
    if profile is not None:
        try:
            msgspec.convert(profile, Skill)
        except msgspec.ValidationError:
            errors["target_role_profile"] = advice("target_role_profile")
    lines = tuple(line.strip() for line in form.strengths.splitlines() if line.strip())
    if len(lines) > MAX_STRENGTHS or any(len(s) > MAX_TEXT or "\x00" in s for s in lines):
        errors["strengths"] = advice("strengths")
    content = None
    if not errors:
        content = ReviewContent(tuple(ratings), int(overall), tuple(goals), profile)
    return Checked(content, lines, errors, rating_rows, goal_rows)


def checked_cycle(form: ReviewForm, checked: Checked) -> str:
    try:
        return str(msgspec.convert(form.cycle, Cycle))
    except msgspec.ValidationError:
        checked.errors["cycle"] = advice("cycle")
        return ""


def checked_member(form: ReviewForm, checked: Checked) -> UUID | None:
    try:
        return UUID(form.member_id)
    except ValueError:
        checked.errors["member_id"] = advice("member_id")
        return None


def checked_reason(form: ReviewForm, checked: Checked) -> str:
    if not form.reason or len(form.reason) > MAX_TEXT or "\x00" in form.reason:
        checked.errors["reason"] = advice("reason")
    return form.reason
