"""Performance reviews over HTTP: HR records, finalises and amends them; an HRIS imports batches."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException, ValidationException
from litestar.params import FromPath, JSONBody

from training.core.access import Scope
from training.core.application import TrainingApplication
from training.core.errors import NotFound
from training.core.http.commands import Commands, answer
from training.core.http.params import IfMatch, etag, expected_version, text
from training.core.http.principal import Principal, requires_scope, requires_tenant
from training.core.http.reads import Reads
from training.reviews.domain import Goal, PerformanceReview, ReviewContent, SkillRating
from training.reviews.handlers import (
    AmendReview,
    DraftReview,
    FinaliseReview,
    ImportedReview,
    ImportOutcome,
    ImportReviews,
    ReviewSnapshot,
    ReviseReview,
    load_review,
)
from training.reviews.views import review_text_of

Cycle = Annotated[str, text(max_length=40)]
ReviewExternalId = Annotated[str, text(max_length=128)]
Skill = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]
Level = Annotated[int, msgspec.Meta(ge=1, le=7)]


class RatingIn(msgspec.Struct, forbid_unknown_fields=True):
    skill: Skill
    level: Level


class GoalIn(msgspec.Struct, forbid_unknown_fields=True):
    goal_id: Annotated[str, text(max_length=20)]
    skill: Skill
    target_level: Level
    due: date


class ContentIn(msgspec.Struct, forbid_unknown_fields=True):
    ratings: Annotated[list[RatingIn], msgspec.Meta(max_length=100)]
    overall_rating: Annotated[int, msgspec.Meta(ge=1, le=5)]
    strengths: Annotated[
        list[Annotated[str, text(min_length=0, max_length=500)]],
        msgspec.Meta(max_length=20),
    ] = []
    goals: Annotated[list[GoalIn], msgspec.Meta(max_length=20)] = []
    target_role_profile: Skill | None = None


class ReviewIn(ContentIn, forbid_unknown_fields=True, kw_only=True):
    cycle: Cycle
    member_id: UUID | None = None
    reviewer_id: UUID | None = None
    external_id: ReviewExternalId | None = None
    finalise: bool = False


class AmendmentIn(ContentIn, forbid_unknown_fields=True, kw_only=True):
    reason: Annotated[str, text(max_length=500)]


class Empty(msgspec.Struct, forbid_unknown_fields=True):
    pass


class ImportItem(ContentIn, forbid_unknown_fields=True, kw_only=True):
    external_id: ReviewExternalId
    cycle: Cycle
    member_id: UUID | None = None
    reviewer_id: UUID | None = None
    finalised: bool = False


class ImportIn(msgspec.Struct, forbid_unknown_fields=True):
    reviews: Annotated[list[ImportItem], msgspec.Meta(min_length=1, max_length=1000)]


class ReviewOut(msgspec.Struct):
    review_id: UUID
    external_id: str
    member_id: UUID
    cycle: str
    status: str
    amendments: int
    version: int


class ReviewDetail(ReviewOut):
    reviewer_id: UUID | None
    ratings: list[RatingIn]
    overall_rating: int
    strengths: Annotated[
        list[str],
        msgspec.Meta(
            description="Free text, kept beside the review's history: empty once "
            "the person reviewed was erased"
        ),
    ]
    goals: list[GoalIn]
    target_role_profile: str | None
    amendment_reasons: Annotated[
        list[str],
        msgspec.Meta(
            description="Why each amendment was made, in order (free text, erased "
            "with the person reviewed)"
        ),
    ]


class ImportReport(msgspec.Struct):
    results: list[ImportOutcome]


def content_of(data: ContentIn) -> ReviewContent:
    return ReviewContent(
        tuple(SkillRating(r.skill, r.level) for r in data.ratings),
        data.overall_rating,
        tuple(Goal(g.goal_id, g.skill, g.target_level, g.due) for g in data.goals),
        data.target_role_profile,
    )


def review_out(snapshot: ReviewSnapshot) -> ReviewOut:
    return ReviewOut(
        snapshot.review_id,
        snapshot.external_id,
        snapshot.member_id,
        snapshot.cycle,
        snapshot.status,
        snapshot.amendments,
        snapshot.version,
    )


def imported_review(item: ImportItem, index: int) -> ImportedReview:
    """The command's row for the ``index``-th item of a batch."""
    return ImportedReview(
        _required(item.external_id, f"reviews[{index}].external_id"),
        _required(item.cycle, f"reviews[{index}].cycle"),
        _required(item.member_id, f"reviews[{index}].member_id"),
        item.reviewer_id,
        content_of(item),
        item.finalised,
        tuple(item.strengths),
    )


def _required(value: Any, field: str) -> Any:
    if value in (None, ""):
        raise ValidationException(
            detail=f"{field} is required",
            extra=[{"key": field, "message": "required", "source": "body"}],
        )
    return value


class ReviewController(Controller):
    path = "/v1/reviews"
    tags = ["Reviews"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="draftReview",
        summary="Record a review (a draft, or finalised at once with `finalise`)",
        status_code=201,
    )
    async def draft(
        self, commands: NamedDependency[Commands], data: JSONBody[ReviewIn]
    ) -> Response[ReviewOut]:
        command = DraftReview(
            _required(data.cycle, "cycle"),
            _required(data.member_id, "member_id"),
            data.reviewer_id,
            content_of(data),
            data.external_id,
            data.finalise,
            tuple(data.strengths),
        )
        outcome = await commands.run(command)
        body = review_out(outcome.result)
        location = f"/v1/reviews/{body.review_id}"
        return answer(outcome, body, status=201, version=body.version, location=location)

    @get(
        "/{review_id:uuid}",
        guards=[requires_tenant],
        operation_id="getReview",
        summary="A review: HR and the person reviewed",
    )
    async def get_review(
        self,
        app: NamedDependency[TrainingApplication],
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        review_id: FromPath[UUID],
    ) -> Response[ReviewDetail]:
        review = await sync_to_thread(load_review, app, review_id)
        if not isinstance(review, PerformanceReview) or review.tenant_id != principal.tenant_id:
            raise NotFound(f"review {review_id} not found")
        if not (principal.has_scope(Scope.MEMBERS_READ) or principal.is_member(review.member_id)):
            raise PermissionDeniedException(detail="only HR and the person reviewed read a review")
        content = review.content
        async with reads.session() as conn:
            free_text = await review_text_of(conn, review.id)
        body = ReviewDetail(
            review.id,
            review.external_id,
            review.member_id,
            review.cycle,
            str(review.status),
            review.amendments,
            review.version,
            review.reviewer_id,
            [RatingIn(r.skill, r.level) for r in content.ratings],
            content.overall_rating,
            list(free_text.strengths),
            [GoalIn(g.goal_id, g.skill, g.target_level, g.due) for g in content.goals],
            content.target_role_profile,
            list(free_text.amendment_reasons),
        )
        return Response(body, headers={"ETag": etag(review.version)})

    @put(
        "/{review_id:uuid}",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="reviseReview",
        summary="Change a draft review",
    )
    async def revise(
        self,
        commands: NamedDependency[Commands],
        review_id: FromPath[UUID],
        data: JSONBody[ContentIn],
        if_match: IfMatch = None,
    ) -> Response[ReviewOut]:
        outcome = await commands.run(
            ReviseReview(
                review_id, content_of(data), expected_version(if_match), tuple(data.strengths)
            )
        )
        body = review_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @post(
        "/{review_id:uuid}/finalise",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="finaliseReview",
        summary="Finalise a review: the person's training track is re-planned",
        status_code=200,
    )
    async def finalise(
        self,
        commands: NamedDependency[Commands],
        review_id: FromPath[UUID],
        data: JSONBody[Empty],
        if_match: IfMatch = None,
    ) -> Response[ReviewOut]:
        outcome = await commands.run(FinaliseReview(review_id, expected_version(if_match)))
        body = review_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @post(
        "/{review_id:uuid}/amendments",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="amendReview",
        summary="Amend a finalised review, with a reason (the track is re-planned)",
        status_code=200,
    )
    async def amend(
        self,
        commands: NamedDependency[Commands],
        review_id: FromPath[UUID],
        data: JSONBody[AmendmentIn],
        if_match: IfMatch = None,
    ) -> Response[ReviewOut]:
        command = AmendReview(
            review_id,
            content_of(data),
            _required(data.reason, "reason"),
            expected_version(if_match),
            tuple(data.strengths),
        )
        outcome = await commands.run(command)
        body = review_out(outcome.result)
        return answer(outcome, body, version=body.version)


class ReviewImportController(Controller):
    path = "/v1/review-imports"
    tags = ["Reviews"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="importReviews",
        summary="Import a batch of reviews from the HRIS, idempotent by external id",
        description="Each review is created, updated (a draft), amended (a finalised review "
        "that changed, with the reason 'updated by the HRIS import') or left unchanged; a bad "
        "one is reported and skipped. One transaction for the batch.",
        status_code=200,
    )
    async def import_reviews(
        self, commands: NamedDependency[Commands], data: JSONBody[ImportIn]
    ) -> Response[ImportReport]:
        reviews = tuple(imported_review(item, i) for i, item in enumerate(data.reviews))
        outcome = await commands.run(ImportReviews(reviews))
        return answer(outcome, ImportReport(list(outcome.result)))


ROUTES = [ReviewController, ReviewImportController]
