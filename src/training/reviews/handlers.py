"""Review use cases: HR drafts, finalises and amends reviews; an HRIS imports them in batches.

A review's free text (strengths, an amendment's reason) is handed to the unit of work, which
keeps it beside the review's events (``training.review_texts``), never in them; the events
say which text changed. Whether the strengths changed is decided against the stored ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from training.core.application import TrainingApplication
from training.core.bus import Handler, UnitOfWork
from training.core.errors import AlreadyExists, DomainError, NotFound, RuleViolated
from training.people.domain.members import Member
from training.reviews.domain import (
    PerformanceReview,
    ReviewContent,
    ReviewStatus,
    check_content,
    check_strengths,
)
from training.skills.domain import RoleProfile
from training.skills.queries import usable_skills

MAX_IMPORT = 1000
IMPORT_AMENDMENT = "updated by the HRIS import"


@dataclass(frozen=True)
class DraftReview:
    cycle: str
    member_id: UUID
    reviewer_id: UUID | None
    content: ReviewContent
    external_id: str | None = None
    finalise: bool = False
    strengths: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviseReview:
    """The whole content: strengths that are not sent are removed."""

    review_id: UUID
    content: ReviewContent
    expected_version: int | None = None
    strengths: tuple[str, ...] = ()


@dataclass(frozen=True)
class FinaliseReview:
    review_id: UUID
    expected_version: int | None = None


@dataclass(frozen=True)
class AmendReview:
    review_id: UUID
    content: ReviewContent
    reason: str
    expected_version: int | None = None
    strengths: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportedReview:
    external_id: str
    cycle: str
    member_id: UUID
    reviewer_id: UUID | None
    content: ReviewContent
    finalised: bool
    strengths: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportReviews:
    reviews: tuple[ImportedReview, ...]


@dataclass(frozen=True)
class ReviewSnapshot:
    review_id: UUID
    external_id: str
    member_id: UUID
    cycle: str
    status: str
    amendments: int
    version: int

    @classmethod
    def of(cls, review: PerformanceReview) -> ReviewSnapshot:
        return cls(
            review.id,
            review.external_id,
            review.member_id,
            review.cycle,
            str(review.status),
            review.amendments,
            review.version,
        )


@dataclass(frozen=True)
class ImportOutcome:
    external_id: str
    result: str  # created, updated, amended, unchanged or failed
    review_id: UUID | None = None
    field: str | None = None
    message: str | None = None


def _check_people(uow: UnitOfWork, member_id: UUID, reviewer_id: UUID | None) -> None:
    for field, person in (("member_id", member_id), ("reviewer_id", reviewer_id)):
        if person is None:
            continue
        try:
            uow.get(Member, person)
        except NotFound:
            raise RuleViolated("no member of this tenant has that id", field=field) from None


def _check_profile(uow: UnitOfWork, tenant_id: UUID, content: ReviewContent) -> None:
    key = content.target_role_profile
    if key is not None and not uow.exists(RoleProfile.create_id(tenant_id, key)):
        raise RuleViolated(f"no role profile {key!r}", field="target_role_profile")


def _stored_strengths(uow: UnitOfWork, review_id: UUID) -> tuple[str, ...]:
    stored = uow.stored_review_text(review_id)
    return stored.strengths if stored is not None else ()


def _new_strengths(
    uow: UnitOfWork, review: PerformanceReview, strengths: tuple[str, ...]
) -> tuple[str, ...] | None:
    """The checked strengths when they differ from the stored ones, else None."""
    checked = check_strengths(strengths)
    return checked if checked != _stored_strengths(uow, review.id) else None


def _keep_strengths(uow: UnitOfWork, review: PerformanceReview, strengths: tuple[str, ...]) -> None:
    if strengths:
        uow.keep_review_text(review, review.member_id, strengths=strengths)


def draft_review(command: DraftReview, uow: UnitOfWork) -> ReviewSnapshot:
    tenant_id = uow.require_tenant()
    external_id = command.external_id or f"review-{uuid4()}"
    review_id = PerformanceReview.create_id(tenant_id, external_id)
    if uow.exists(review_id):
        raise AlreadyExists(
            f"a review with external id {external_id!r} exists", field="external_id"
        )
    _check_people(uow, command.member_id, command.reviewer_id)
    _check_profile(uow, tenant_id, command.content)
    review = PerformanceReview.draft(
        tenant_id=tenant_id,
        external_id=external_id,
        cycle=command.cycle,
        member_id=command.member_id,
        reviewer_id=command.reviewer_id,
        content=command.content,
        usable_skills=usable_skills(uow, tenant_id),
    )
    strengths = check_strengths(command.strengths)
    if command.finalise:
        review.finalise()
    uow.add(review)
    _keep_strengths(uow, review, strengths)
    return ReviewSnapshot.of(review)


def revise_review(command: ReviseReview, uow: UnitOfWork) -> ReviewSnapshot:
    tenant_id = uow.require_tenant()
    review = uow.get(
        PerformanceReview, command.review_id, expected_version=command.expected_version
    )
    _check_profile(uow, tenant_id, command.content)
    strengths = _new_strengths(uow, review, command.strengths)
    review.revise(
        command.content, usable_skills(uow, tenant_id), strengths_changed=strengths is not None
    )
    if strengths is not None:
        uow.keep_review_text(review, review.member_id, strengths=strengths)
    return ReviewSnapshot.of(review)


def finalise_review(command: FinaliseReview, uow: UnitOfWork) -> ReviewSnapshot:
    uow.require_tenant()
    review = uow.get(
        PerformanceReview, command.review_id, expected_version=command.expected_version
    )
    review.finalise()
    return ReviewSnapshot.of(review)


def amend_review(command: AmendReview, uow: UnitOfWork) -> ReviewSnapshot:
    tenant_id = uow.require_tenant()
    review = uow.get(
        PerformanceReview, command.review_id, expected_version=command.expected_version
    )
    _check_profile(uow, tenant_id, command.content)
    strengths = _new_strengths(uow, review, command.strengths)
    reason = review.amend(
        command.content,
        command.reason,
        usable_skills(uow, tenant_id),
        strengths_changed=strengths is not None,
    )
    uow.keep_review_text(review, review.member_id, strengths=strengths, amendment_reason=reason)
    return ReviewSnapshot.of(review)


def import_reviews(command: ImportReviews, uow: UnitOfWork) -> tuple[ImportOutcome, ...]:
    """Idempotent by external id: a review seen before is left alone, revised or amended."""
    tenant_id = uow.require_tenant()
    if len(command.reviews) > MAX_IMPORT:
        raise RuleViolated(f"at most {MAX_IMPORT} reviews per batch", field="reviews")
    skills = usable_skills(uow, tenant_id)
    outcomes = []
    for imported in command.reviews:
        review_id = PerformanceReview.create_id(tenant_id, imported.external_id)
        try:
            outcomes.append(_import_one(uow, tenant_id, imported, review_id, skills))
        except DomainError as error:
            uow.discard(review_id)
            outcomes.append(
                ImportOutcome(imported.external_id, "failed", None, error.field, error.detail)
            )
    return tuple(outcomes)


def _import_one(
    uow: UnitOfWork,
    tenant_id: UUID,
    imported: ImportedReview,
    review_id: UUID,
    skills: frozenset[str],
) -> ImportOutcome:
    _check_profile(uow, tenant_id, imported.content)
    if not uow.exists(review_id):
        _check_people(uow, imported.member_id, imported.reviewer_id)
        review = PerformanceReview.draft(
            tenant_id=tenant_id,
            external_id=imported.external_id,
            cycle=imported.cycle,
            member_id=imported.member_id,
            reviewer_id=imported.reviewer_id,
            content=imported.content,
            usable_skills=skills,
        )
        strengths = check_strengths(imported.strengths)
        if imported.finalised:
            review.finalise()
        uow.add(review)
        _keep_strengths(uow, review, strengths)
        return ImportOutcome(imported.external_id, "created", review.id)
    review = uow.get(PerformanceReview, review_id)
    if review.member_id != imported.member_id:
        raise RuleViolated("the external id belongs to another member's review", field="member_id")
    before = review.version
    new_strengths = _new_strengths(uow, review, imported.strengths)
    changed = new_strengths is not None
    if review.status is ReviewStatus.DRAFT:
        review.revise(imported.content, skills, strengths_changed=changed)
        if changed:
            uow.keep_review_text(review, review.member_id, strengths=new_strengths)
        if imported.finalised:
            review.finalise()
        result = "updated"
    elif check_content(imported.content, skills) != review.content or changed:
        reason = review.amend(imported.content, IMPORT_AMENDMENT, skills, strengths_changed=changed)
        uow.keep_review_text(
            review, review.member_id, strengths=new_strengths, amendment_reason=reason
        )
        result = "amended"
    else:
        result = "unchanged"
    if review.version == before:
        result = "unchanged"
    return ImportOutcome(imported.external_id, result, review.id)


def load_review(app: TrainingApplication, review_id: UUID) -> PerformanceReview | None:
    try:
        review: object = app.repository.get(review_id)
    except AggregateNotFoundError:
        return None
    return review if isinstance(review, PerformanceReview) else None


HANDLERS: dict[type, Handler] = {
    DraftReview: draft_review,
    ReviseReview: revise_review,
    FinaliseReview: finalise_review,
    AmendReview: amend_review,
    ImportReviews: import_reviews,
}
