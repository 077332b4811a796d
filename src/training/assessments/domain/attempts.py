"""Assessments: item banks, adaptive attempts, calibrated parameters and other evidence.

An attempt administers one item at a time, chosen adaptively (maximum information with
randomesque exposure control), scores every answer with EAP under the 2PL model and stops
when the standard error is small enough (see ``scoring``). Its events record each item
administered, each response and the result (θ, SE, level and the item-parameter version
used), so an attempt can be scored again later under newer parameters by replay; the
original result is kept beside the new one.

Answer keys live with the items, never in an attempt's events: a response records only
whether it was right.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from training.assessments.domain.scoring import (
    CutScores,
    Estimate,
    ItemParameters,
    Response,
    StopRule,
    estimate,
    select_item,
)
from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import InvalidTransition, LimitReached, RuleViolated
from training.skills.domain import check_level

# An attempt left alone this long after its item's deadline is closed as timed out.
ABANDON_GRACE = timedelta(minutes=10)
RANDOMESQUE = 5


class ItemKind(StrEnum):
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    CODE_OUTPUT = "code_output"
    ORDERING = "ordering"


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class Item:
    """An item's content and key. ``version`` grows with every revision of the content."""

    item_id: str
    skill: str
    kind: ItemKind
    stem: str
    code: str | None
    options: tuple[Option, ...]
    answer: tuple[str, ...]
    time_limit_seconds: int
    version: int = 1

    def is_correct(self, answer: tuple[str, ...]) -> bool:
        """Ordering items compare the sequence; choice items compare the set."""
        if self.kind is ItemKind.ORDERING:
            return answer == self.answer
        return sorted(answer) == sorted(self.answer)


def check_item(item: Item) -> Item:
    option_ids = [o.id for o in item.options]
    if len(set(option_ids)) != len(option_ids) or len(option_ids) < 2:
        raise RuleViolated("an item has two or more options with distinct ids", field="options")
    if not item.stem.strip():
        raise RuleViolated("an item has a question", field="stem")
    if not set(item.answer) <= set(option_ids) or not item.answer:
        raise RuleViolated("the answer names the item's options", field="answer")
    expected = {
        ItemKind.SINGLE_CHOICE: len(item.answer) == 1,
        ItemKind.CODE_OUTPUT: len(item.answer) == 1,
        ItemKind.MULTIPLE_CHOICE: 1 <= len(item.answer) < len(option_ids),
        ItemKind.ORDERING: sorted(item.answer) == sorted(option_ids),
    }[item.kind]
    if not expected:
        raise RuleViolated(f"the answer does not fit a {item.kind} item", field="answer")
    if not 15 <= item.time_limit_seconds <= 900:
        raise RuleViolated("a time limit is 15-900 seconds", field="time_limit_seconds")
    return item


class AttemptStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True, slots=True)
class Result:
    theta: float
    se: float
    level: int
    items: int
    parameter_version: int


class AssessmentAttempt(TrainingAggregate):
    TOPIC = "training.assessments:AssessmentAttempt"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.assessments:AssessmentAttempt.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.assessments:AssessmentAttempt.Created"

    class Started(Created):
        TOPIC = "training.assessments:AssessmentAttempt.Started"
        member_id: UUID
        skill: str
        parameter_version: int
        seed: int
        prior_mean: float
        prior_sd: float

    class ItemAdministered(Event):
        TOPIC = "training.assessments:AssessmentAttempt.ItemAdministered"
        item_id: str
        item_version: int
        position: int
        deadline: datetime

    class ResponseRecorded(Event):
        TOPIC = "training.assessments:AssessmentAttempt.ResponseRecorded"
        item_id: str
        position: int
        correct: bool
        late: bool

    class Completed(Event):
        """Carries who and which skill, so a follower needs no other event to use it."""

        TOPIC = "training.assessments:AssessmentAttempt.Completed"
        member_id: UUID
        skill: str
        result: Result
        stop_reason: str

    class Abandoned(Event):
        TOPIC = "training.assessments:AssessmentAttempt.Abandoned"
        reason: str

    class TimedOut(Event):
        TOPIC = "training.assessments:AssessmentAttempt.TimedOut"

    class Rescored(Event):
        """The same responses scored under another parameter version; the first result stays."""

        TOPIC = "training.assessments:AssessmentAttempt.Rescored"
        result: Result

    @classmethod
    def start(
        cls,
        *,
        tenant_id: UUID,
        member_id: UUID,
        skill: str,
        parameter_version: int,
        seed: int,
        prior_mean: float = 0.0,
        prior_sd: float = 1.0,
    ) -> AssessmentAttempt:
        return cls(
            member_id=member_id,
            skill=skill,
            parameter_version=parameter_version,
            seed=seed,
            prior_mean=prior_mean,
            prior_sd=prior_sd,
            tenant_id=tenant_id,
        )

    @event(Started)
    def __init__(
        self,
        member_id: UUID,
        skill: str,
        parameter_version: int,
        seed: int,
        prior_mean: float,
        prior_sd: float,
        *,
        tenant_id: UUID | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.skill = skill
        self.parameter_version = parameter_version
        self.seed = seed
        self.prior_mean = prior_mean
        self.prior_sd = prior_sd
        self.status = AttemptStatus.IN_PROGRESS
        self.administered: list[tuple[str, int, datetime]] = []  # item, version, deadline
        self.responses: list[tuple[str, bool]] = []
        self.result: Result | None = None
        self.rescored: list[Result] = []

    # -- what is asked now ----------------------------------------------------------------

    @property
    def current_item(self) -> str | None:
        if self.status is not AttemptStatus.IN_PROGRESS:
            return None
        if len(self.administered) > len(self.responses):
            return self.administered[-1][0]
        return None

    @property
    def current_deadline(self) -> datetime | None:
        return self.administered[-1][2] if self.current_item else None

    def has_answered(self, item_id: str) -> bool:
        return any(answered == item_id for answered, _ in self.responses)

    def is_expired(self, now: datetime) -> bool:
        deadline = self.current_deadline
        return deadline is not None and now > deadline + ABANDON_GRACE

    def estimate_with(self, parameters: dict[str, ItemParameters]) -> Estimate:
        answers = [Response(parameters[item], correct) for item, correct in self.responses]
        return estimate(answers, self.prior_mean, self.prior_sd)

    # -- commands -------------------------------------------------------------------------

    def _require_in_progress(self) -> None:
        if self.status is not AttemptStatus.IN_PROGRESS:
            raise InvalidTransition(f"the attempt is {self.status}")

    def administer_next(
        self, bank: dict[str, tuple[Item, ItemParameters]], now: datetime
    ) -> str | None:
        """Chooses and administers the next item; None when the bank has no item left."""
        self._require_in_progress()
        if self.current_item is not None:
            raise InvalidTransition("the current item is not answered yet")
        parameters = {item_id: params for item_id, (_, params) in bank.items()}
        position = len(self.administered) + 1
        # One generator per position, seeded from the attempt: a replay picks the same items.
        rng = random.Random(self.seed * 1_000 + position)
        chosen = select_item(
            self.estimate_with(parameters),
            sorted(parameters.values(), key=lambda p: p.item_id),
            {item for item, _, _ in self.administered},
            rng,
            RANDOMESQUE,
        )
        if chosen is None:
            return None
        item = bank[chosen.item_id][0]
        self._item_administered(
            item_id=item.item_id,
            item_version=item.version,
            position=position,
            deadline=now + timedelta(seconds=item.time_limit_seconds),
        )
        return item.item_id

    @event(ItemAdministered)
    def _item_administered(
        self, item_id: str, item_version: int, position: int, deadline: datetime
    ) -> None:
        self.administered.append((item_id, item_version, deadline))

    def answer(self, item_id: str, correct: bool, now: datetime) -> bool:
        """Records the answer to the current item; False if that item was answered before
        (a retried request), so answering twice changes nothing."""
        if self.has_answered(item_id):
            return False
        self._require_in_progress()
        if item_id != self.current_item:
            raise RuleViolated("answer the item you were given", field="item_id")
        deadline = self.current_deadline
        late = deadline is not None and now > deadline
        # An answer after the item's time limit counts as wrong: the limit is part of the item.
        self._response_recorded(
            item_id=item_id,
            position=len(self.responses) + 1,
            correct=correct and not late,
            late=late,
        )
        return True

    @event(ResponseRecorded)
    def _response_recorded(self, item_id: str, position: int, correct: bool, late: bool) -> None:
        self.responses.append((item_id, correct))

    def should_stop(self, parameters: dict[str, ItemParameters], rule: StopRule) -> bool:
        return rule.should_stop(self.estimate_with(parameters))

    def complete(
        self,
        parameters: dict[str, ItemParameters],
        rule: StopRule,
        cut_scores: CutScores,
        reason: str | None = None,
    ) -> Result:
        self._require_in_progress()
        if not self.responses:
            raise InvalidTransition("an attempt with no answer cannot be scored")
        result = self._score(parameters, cut_scores, self.parameter_version)
        self._completed(
            member_id=self.member_id,
            skill=self.skill,
            result=result,
            stop_reason=reason or rule.reason(self.estimate_with(parameters)),
        )
        return result

    def _score(
        self, parameters: dict[str, ItemParameters], cut_scores: CutScores, version: int
    ) -> Result:
        found = self.estimate_with(parameters)
        level = check_level(cut_scores.level_for(found.theta))
        return Result(round(found.theta, 4), round(found.se, 4), level, found.items, version)

    @event(Completed)
    def _completed(self, member_id: UUID, skill: str, result: Result, stop_reason: str) -> None:
        self.status = AttemptStatus.COMPLETED
        self.result = result

    def abandon(self, reason: str) -> None:
        self._require_in_progress()
        self._abandoned(reason=reason.strip()[:200] or "abandoned by the engineer")

    @event(Abandoned)
    def _abandoned(self, reason: str) -> None:
        self.status = AttemptStatus.ABANDONED

    def time_out(self) -> None:
        self._require_in_progress()
        self._timed_out()

    @event(TimedOut)
    def _timed_out(self) -> None:
        self.status = AttemptStatus.TIMED_OUT

    def rescore(
        self, parameters: dict[str, ItemParameters], cut_scores: CutScores, version: int
    ) -> Result:
        if self.status is not AttemptStatus.COMPLETED:
            raise InvalidTransition("only a completed attempt is scored again")
        if version == self.parameter_version or any(
            r.parameter_version == version for r in self.rescored
        ):
            raise InvalidTransition(f"the attempt is already scored under version {version}")
        result = self._score(parameters, cut_scores, version)
        self._rescored(result=result)
        return result

    @event(Rescored)
    def _rescored(self, result: Result) -> None:
        self.rescored.append(result)


class AssessmentSlot(TrainingAggregate):
    """One per engineer and skill: at most one attempt at a time, and the retake cool-down."""

    TOPIC = "training.assessments:AssessmentSlot"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.assessments:AssessmentSlot.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.assessments:AssessmentSlot.Created"

    class Opened(Created):
        TOPIC = "training.assessments:AssessmentSlot.Opened"
        member_id: UUID
        skill: str

    class AttemptStarted(Event):
        TOPIC = "training.assessments:AssessmentSlot.AttemptStarted"
        attempt_id: UUID

    class AttemptEnded(Event):
        TOPIC = "training.assessments:AssessmentSlot.AttemptEnded"
        attempt_id: UUID
        completed: bool
        ended_at: datetime

    @staticmethod
    def create_id(tenant_id: UUID, member_id: UUID, skill: str) -> UUID:
        return stable_id("tenants", tenant_id, "assessment-slot", member_id, skill)

    @classmethod
    def open(cls, tenant_id: UUID, member_id: UUID, skill: str) -> AssessmentSlot:
        return cls(member_id=member_id, skill=skill, tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, member_id: UUID, skill: str, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.skill = skill
        self.open_attempt: UUID | None = None
        self.last_completed_at: datetime | None = None

    def begin(self, attempt_id: UUID, now: datetime, cooldown_days: int) -> None:
        if self.open_attempt is not None:
            raise InvalidTransition(
                f"an attempt on {self.skill} is in progress ({self.open_attempt}); finish or "
                "abandon it first"
            )
        if self.last_completed_at is not None and cooldown_days > 0:
            allowed = self.last_completed_at + timedelta(days=cooldown_days)
            if now < allowed:
                raise LimitReached(
                    f"a retake of {self.skill} is possible from {allowed.date().isoformat()} "
                    f"({cooldown_days}-day cool-down)"
                )
        self._attempt_started(attempt_id=attempt_id)

    @event(AttemptStarted)
    def _attempt_started(self, attempt_id: UUID) -> None:
        self.open_attempt = attempt_id

    def end(self, attempt_id: UUID, *, completed: bool, now: datetime) -> None:
        if self.open_attempt == attempt_id:
            self._attempt_ended(attempt_id=attempt_id, completed=completed, ended_at=now)

    @event(AttemptEnded)
    def _attempt_ended(self, attempt_id: UUID, completed: bool, ended_at: datetime) -> None:
        self.open_attempt = None
        if completed:
            self.last_completed_at = ended_at


class ItemBank(TrainingAggregate):
    """A tenant's private items, on top of the starter bank every tenant shares."""

    TOPIC = "training.assessments:ItemBank"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.assessments:ItemBank.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.assessments:ItemBank.Created"

    class Opened(Created):
        TOPIC = "training.assessments:ItemBank.Opened"

    class ItemAdded(Event):
        TOPIC = "training.assessments:ItemBank.ItemAdded"
        item: Item
        difficulty: float
        discrimination: float

    class ItemRevised(Event):
        TOPIC = "training.assessments:ItemBank.ItemRevised"
        item: Item

    @staticmethod
    def create_id(tenant_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "item-bank")

    @classmethod
    def open(cls, tenant_id: UUID) -> ItemBank:
        return cls(tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.items: dict[str, Item] = {}
        self.initial: dict[str, ItemParameters] = {}

    def add(self, item: Item, difficulty: float, discrimination: float, taken: set[str]) -> None:
        item = check_item(item)
        if item.item_id in self.items or item.item_id in taken:
            raise RuleViolated(f"the item {item.item_id!r} exists", field="item_id")
        ItemParameters(item.item_id, difficulty, discrimination)  # validates the numbers
        self._item_added(
            item=replace(item, version=1),
            difficulty=difficulty,
            discrimination=discrimination,
        )

    @event(ItemAdded)
    def _item_added(self, item: Item, difficulty: float, discrimination: float) -> None:
        self.items[item.item_id] = item
        self.initial[item.item_id] = ItemParameters(item.item_id, difficulty, discrimination)

    def revise(self, item: Item) -> Item:
        current = self.items.get(item.item_id)
        if current is None:
            raise RuleViolated(f"no private item {item.item_id!r}", field="item_id")
        revised = replace(check_item(item), version=current.version + 1)
        if replace(revised, version=0) != replace(current, version=0):
            self._item_revised(item=revised)
        return self.items[item.item_id]

    @event(ItemRevised)
    def _item_revised(self, item: Item) -> None:
        self.items[item.item_id] = item


class ItemCalibration(TrainingAggregate):
    """A tenant's published item-parameter versions. Version 0 is the shipped parameters."""

    TOPIC = "training.assessments:ItemCalibration"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.assessments:ItemCalibration.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.assessments:ItemCalibration.Created"

    class Opened(Created):
        TOPIC = "training.assessments:ItemCalibration.Opened"

    class ParametersPublished(Event):
        TOPIC = "training.assessments:ItemCalibration.ParametersPublished"
        version: int
        parameters: tuple[ItemParameters, ...]
        responses_used: int

    @staticmethod
    def create_id(tenant_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "item-calibration")

    @classmethod
    def open(cls, tenant_id: UUID) -> ItemCalibration:
        return cls(tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.versions: dict[int, dict[str, ItemParameters]] = {}

    @property
    def current_version(self) -> int:
        return max(self.versions, default=0)

    def publish(self, parameters: tuple[ItemParameters, ...], responses_used: int) -> int:
        version = self.current_version + 1
        self._parameters_published(
            version=version, parameters=parameters, responses_used=responses_used
        )
        return version

    @event(ParametersPublished)
    def _parameters_published(
        self, version: int, parameters: tuple[ItemParameters, ...], responses_used: int
    ) -> None:
        self.versions[version] = {p.item_id: p for p in parameters}


class EvidenceKind(StrEnum):
    CODE_REVIEW = "code_review"
    PROJECT_REVIEW = "project_review"


class SkillEvidence(TrainingAggregate):
    """Rubric-based observations by HR or a manager (code and project reviews)."""

    TOPIC = "training.assessments:SkillEvidence"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.assessments:SkillEvidence.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.assessments:SkillEvidence.Created"

    class Opened(Created):
        TOPIC = "training.assessments:SkillEvidence.Opened"
        member_id: UUID

    class EvidenceRecorded(Event):
        TOPIC = "training.assessments:SkillEvidence.EvidenceRecorded"
        evidence_id: UUID
        kind: EvidenceKind
        skill: str
        observed_level: int
        link: str | None
        note: str

    @staticmethod
    def create_id(tenant_id: UUID, member_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "skill-evidence", member_id)

    @classmethod
    def open(cls, tenant_id: UUID, member_id: UUID) -> SkillEvidence:
        return cls(member_id=member_id, tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, member_id: UUID, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.count = 0

    def record(
        self,
        evidence_id: UUID,
        kind: EvidenceKind,
        skill: str,
        observed_level: int,
        link: str | None,
        note: str,
    ) -> None:
        check_level(observed_level, "observed_level")
        if link is not None and not link.startswith("https://"):
            raise RuleViolated("a link is an https URL", field="link")
        if len(note) > 2000:
            raise RuleViolated("the note is too long", field="note")
        self._evidence_recorded(
            evidence_id=evidence_id,
            kind=kind,
            skill=skill,
            observed_level=observed_level,
            link=link,
            note=note.strip(),
        )

    @event(EvidenceRecorded)
    def _evidence_recorded(
        self,
        evidence_id: UUID,
        kind: EvidenceKind,
        skill: str,
        observed_level: int,
        link: str | None,
        note: str,
    ) -> None:
        self.count += 1
