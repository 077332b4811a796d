"""An engineer's adaptive attempt at one skill.

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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from training.assessments.domain.items import Item
from training.assessments.domain.scoring import (
    CutScores,
    Estimate,
    ItemParameters,
    Response,
    StopRule,
    estimate,
    select_item,
)
from training.core.aggregate import TrainingAggregate
from training.core.errors import InvalidTransition, RuleViolated
from training.skills.domain import check_level

# An attempt left alone this long after its item's deadline is closed as timed out.
ABANDON_GRACE = timedelta(minutes=10)
RANDOMESQUE = 5


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

    def estimate_with(self, parameters: Mapping[str, ItemParameters]) -> Estimate:
        answers = [Response(parameters[item], correct) for item, correct in self.responses]
        return estimate(answers, self.prior_mean, self.prior_sd)

    def _current(
        self, parameters: Mapping[str, ItemParameters], known: Estimate | None
    ) -> Estimate:
        """The estimate after every response so far: ``known`` when the caller has it (the
        EAP sum is the costliest step of an answer), else computed here."""
        if known is None:
            return self.estimate_with(parameters)
        if known.items != len(self.responses):
            raise ValueError("the estimate given does not rest on every response so far")
        return known

    # -- commands -------------------------------------------------------------------------

    def _require_in_progress(self) -> None:
        if self.status is not AttemptStatus.IN_PROGRESS:
            raise InvalidTransition(f"the attempt is {self.status}")

    def administer_next(
        self,
        bank: Mapping[str, tuple[Item, ItemParameters]],
        now: datetime,
        current: Estimate | None = None,
    ) -> str | None:
        """Chooses and administers the next item; None when the bank has no item left.
        ``current``, if given, is the estimate after every response so far."""
        self._require_in_progress()
        if self.current_item is not None:
            raise InvalidTransition("the current item is not answered yet")
        parameters = {item_id: params for item_id, (_, params) in bank.items()}
        position = len(self.administered) + 1
        # One generator per position, seeded from the attempt: a replay picks the same items.
        rng = random.Random(self.seed * 1_000 + position)
        chosen = select_item(
            self._current(parameters, current),
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

    def should_stop(
        self,
        parameters: Mapping[str, ItemParameters],
        rule: StopRule,
        current: Estimate | None = None,
    ) -> bool:
        return rule.should_stop(self._current(parameters, current))

    def complete(
        self,
        parameters: Mapping[str, ItemParameters],
        rule: StopRule,
        cut_scores: CutScores,
        reason: str | None = None,
        current: Estimate | None = None,
    ) -> Result:
        self._require_in_progress()
        if not self.responses:
            raise InvalidTransition("an attempt with no answer cannot be scored")
        found = self._current(parameters, current)
        result = self._result(found, cut_scores, self.parameter_version)
        self._completed(
            member_id=self.member_id,
            skill=self.skill,
            result=result,
            stop_reason=reason or rule.reason(found),
        )
        return result

    def _score(
        self, parameters: Mapping[str, ItemParameters], cut_scores: CutScores, version: int
    ) -> Result:
        return self._result(self.estimate_with(parameters), cut_scores, version)

    @staticmethod
    def _result(found: Estimate, cut_scores: CutScores, version: int) -> Result:
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
        self, parameters: Mapping[str, ItemParameters], cut_scores: CutScores, version: int
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
