"""Adaptive attempts: starting one or a battery, answering, abandoning, rescoring; and an
engineer's own attempt as a query reads it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from training.assessments.domain.attempts import AssessmentAttempt, AttemptStatus, Result
from training.assessments.domain.items import Option
from training.assessments.domain.scoring import StopRule
from training.assessments.domain.slots import AssessmentSlot
from training.assessments.handlers.bank import (
    bank_for,
    calibration,
    query_unit_of_work,
    tenant_bank,
)
from training.assessments.handlers.bank_cache import SkillBank
from training.assessments.queries import starter_bank
from training.cohorts.queries import training_policy
from training.core.application import TrainingApplication
from training.core.bus import Handler, UnitOfWork
from training.core.context import ActorKind
from training.core.errors import Forbidden, InvalidTransition, LimitReached, NotFound, RuleViolated
from training.skills.domain import RoleProfile
from training.skills.queries import usable_skills

# Every test that stops on precision ends with SE <= 0.45 logit. It stops at 0.43 because an
# EAP estimate under a prior that fits the population has an RMSE equal to the root mean
# square of its reported SE: stopping exactly at 0.45 puts the RMSE at 0.45 plus sampling
# noise, and the accuracy target (RMSE <= 0.45) needs a margin (ADR 0010).
STOP_RULE = StopRule(se_target=0.43, min_items=8, max_items=25)


def assessed_member(uow: UnitOfWork) -> UUID:
    """Only a person takes an assessment, and only for themselves."""
    if uow.context.actor.kind is not ActorKind.MEMBER:
        raise Forbidden("assessments are taken by the engineer, with their own sign-in")
    return UUID(uow.context.actor.id)


@dataclass(frozen=True)
class StartAssessment:
    skill: str


@dataclass(frozen=True)
class StartBattery:
    role_profile_key: str


@dataclass(frozen=True)
class AnswerItem:
    attempt_id: UUID
    item_id: str
    answer: tuple[str, ...]


@dataclass(frozen=True)
class AbandonAttempt:
    attempt_id: UUID
    reason: str = ""


@dataclass(frozen=True)
class RescoreAttempt:
    attempt_id: UUID
    parameter_version: int


@dataclass(frozen=True)
class ItemView:
    """What an engineer sees of an item: never its key."""

    item_id: str
    kind: str
    stem: str
    code: str | None
    options: tuple[Option, ...]
    time_limit_seconds: int
    position: int
    deadline: datetime


@dataclass(frozen=True)
class AttemptState:
    attempt_id: UUID
    skill: str
    status: str
    answered: int
    item: ItemView | None
    result: Result | None
    version: int


def state_of(attempt: AssessmentAttempt, bank: SkillBank | None) -> AttemptState:
    view = None
    current = attempt.current_item
    deadline = attempt.current_deadline
    if current is not None and deadline is not None and bank is not None:
        item = bank[current][0]
        view = ItemView(
            item.item_id,
            str(item.kind),
            item.stem,
            item.code,
            item.options,
            item.time_limit_seconds,
            len(attempt.administered),
            deadline,
        )
    return AttemptState(
        attempt.id,
        attempt.skill,
        str(attempt.status),
        len(attempt.responses),
        view,
        attempt.result,
        attempt.version,
    )


def _start_attempt(
    uow: UnitOfWork, tenant_id: UUID, member_id: UUID, skill: str, now: datetime
) -> AttemptState:
    if skill not in starter_bank().skills and not any(
        item.skill == skill for item in tenant_bank(uow, tenant_id).items.values()
    ):
        raise RuleViolated(f"there is no item bank for {skill!r}", field="skill")
    if skill not in usable_skills(uow, tenant_id):
        raise RuleViolated(f"{skill!r} is not a skill of this tenant", field="skill")
    version = calibration(uow, tenant_id).current_version
    attempt = AssessmentAttempt.start(
        tenant_id=tenant_id,
        member_id=member_id,
        skill=skill,
        parameter_version=version,
        seed=secrets.randbelow(2**31),
    )
    slot = uow.get_or_add(
        AssessmentSlot,
        AssessmentSlot.create_id(tenant_id, member_id, skill),
        lambda: AssessmentSlot.open(tenant_id, member_id, skill),
    )
    slot.begin(attempt.id, now, training_policy(uow, tenant_id).retake_cooldown_days)
    bank = bank_for(uow, tenant_id, skill, version)
    attempt.administer_next(bank.items, now)
    uow.add(attempt)
    return state_of(attempt, bank)


def start_assessment(command: StartAssessment, uow: UnitOfWork) -> AttemptState:
    tenant_id = uow.require_tenant()
    return _start_attempt(uow, tenant_id, assessed_member(uow), command.skill, datetime.now(UTC))


@dataclass(frozen=True)
class BatteryOutcome:
    started: tuple[AttemptState, ...]
    skipped: tuple[tuple[str, str], ...]  # skill and why


def start_battery(command: StartBattery, uow: UnitOfWork) -> BatteryOutcome:
    """One attempt per skill of the role profile that has items; the others are reported."""
    tenant_id = uow.require_tenant()
    member_id = assessed_member(uow)
    profile = uow.get(RoleProfile, RoleProfile.create_id(tenant_id, command.role_profile_key))
    now = datetime.now(UTC)
    started, skipped = [], []
    for target in profile.targets:
        try:
            started.append(_start_attempt(uow, tenant_id, member_id, target.skill, now))
        except (RuleViolated, InvalidTransition, LimitReached) as error:
            skipped.append((target.skill, error.detail))
    if not started:
        raise RuleViolated(
            "no skill of this role profile can be assessed now", field="role_profile_key"
        )
    return BatteryOutcome(tuple(started), tuple(skipped))


def _callers_attempt(uow: UnitOfWork, attempt_id: UUID) -> AssessmentAttempt:
    attempt = uow.get(AssessmentAttempt, attempt_id)
    if attempt.member_id != assessed_member(uow):
        # Someone else's attempt is not revealed, even within the tenant.
        raise NotFound(f"attempt {attempt_id} not found")
    return attempt


def _close_slot(
    uow: UnitOfWork, attempt: AssessmentAttempt, now: datetime, *, completed: bool
) -> None:
    assert attempt.tenant_id is not None
    slot = uow.get(
        AssessmentSlot,
        AssessmentSlot.create_id(attempt.tenant_id, attempt.member_id, attempt.skill),
    )
    slot.end(attempt.id, completed=completed, now=now)


def answer_item(command: AnswerItem, uow: UnitOfWork) -> AttemptState:
    tenant_id = uow.require_tenant()
    attempt = _callers_attempt(uow, command.attempt_id)
    bank = bank_for(uow, tenant_id, attempt.skill, attempt.parameter_version)
    now = datetime.now(UTC)
    if attempt.has_answered(command.item_id):
        return state_of(attempt, bank)  # a retried request: same answer, nothing recorded
    if attempt.status is AttemptStatus.IN_PROGRESS and attempt.is_expired(now):
        attempt.time_out()
        _close_slot(uow, attempt, now, completed=False)
        return state_of(attempt, bank)
    entry = bank.get(command.item_id)
    if entry is None:
        raise RuleViolated("answer the item you were given", field="item_id")
    item = entry[0]
    unknown = sorted(set(command.answer) - {option.id for option in item.options})
    if unknown:
        raise RuleViolated(f"unknown options: {', '.join(unknown)}", field="answer")
    attempt.answer(command.item_id, item.is_correct(command.answer), now)
    # The EAP estimate after this answer, computed once: it decides whether to stop, chooses
    # the next item and, at the end, is the result.
    current = attempt.estimate_with(bank.parameters)
    if STOP_RULE.should_stop(current):
        reason = None
    elif attempt.administer_next(bank.items, now, current) is None:
        reason = "the item bank is used up"
    else:
        return state_of(attempt, bank)
    attempt.complete(bank.parameters, STOP_RULE, starter_bank().cut_scores, reason, current)
    _close_slot(uow, attempt, now, completed=True)
    return state_of(attempt, bank)


def abandon_attempt(command: AbandonAttempt, uow: UnitOfWork) -> AttemptState:
    uow.require_tenant()
    attempt = _callers_attempt(uow, command.attempt_id)
    attempt.abandon(command.reason)
    _close_slot(uow, attempt, datetime.now(UTC), completed=False)
    return state_of(attempt, None)


def rescore_attempt(command: RescoreAttempt, uow: UnitOfWork) -> Result:
    tenant_id = uow.require_tenant()
    attempt = uow.get(AssessmentAttempt, command.attempt_id)
    bank = bank_for(uow, tenant_id, attempt.skill, command.parameter_version)
    return attempt.rescore(bank.parameters, starter_bank().cut_scores, command.parameter_version)


def read_attempt(
    app: TrainingApplication, tenant_id: UUID, member_id: UUID, attempt_id: UUID
) -> tuple[AttemptState, list[Result]]:
    """The attempt and its later scorings, if it is the member's own; another's reads as
    missing."""
    uow = query_unit_of_work(app, tenant_id)
    attempt = uow.get(AssessmentAttempt, attempt_id)
    if attempt.member_id != member_id or attempt.tenant_id != tenant_id:
        raise NotFound(f"attempt {attempt_id} not found")
    bank = None
    if attempt.current_item is not None:
        bank = bank_for(uow, tenant_id, attempt.skill, attempt.parameter_version)
    return state_of(attempt, bank), list(attempt.rescored)


HANDLERS: dict[type, Handler] = {
    StartAssessment: start_assessment,
    StartBattery: start_battery,
    AnswerItem: answer_item,
    AbandonAttempt: abandon_attempt,
    RescoreAttempt: rescore_attempt,
}
