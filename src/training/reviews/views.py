"""Reviews read: each tenant's list of reviews (by cycle and by person), and a review's free
text, read from where it is kept beside the review's events."""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import AsyncConnection, Cursor
from psycopg.rows import class_row

from training.core.pagination import TEXT, UUID_KEY, Page, decode_cursor, page_of
from training.core.personal_data import EMPTY_REVIEW_TEXT, ReviewText
from training.core.views import ProjectionSpec, TenantScopedView
from training.reviews.domain import PerformanceReview


async def review_text_of(conn: AsyncConnection[Any], review_id: UUID) -> ReviewText:
    """The review's strengths and amendment reasons; none once the person was erased."""
    cur = await conn.execute(
        "SELECT strengths, amendment_reasons FROM training.review_texts WHERE review_id = %s",
        (review_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return EMPTY_REVIEW_TEXT
    return ReviewText(tuple(row[0]), tuple(row[1]))


async def review_texts_of_member(
    conn: AsyncConnection[Any], member_id: UUID
) -> list[dict[str, Any]]:
    """The free text of every review of the member (for the export of what is held)."""
    cur = await conn.execute(
        "SELECT review_id, strengths, amendment_reasons FROM training.review_texts "
        "WHERE member_id = %s ORDER BY review_id",
        (member_id,),
    )
    return [
        {"review_id": str(row[0]), "strengths": list(row[1]), "amendment_reasons": list(row[2])}
        for row in await cur.fetchall()
    ]


class ReviewsView(TenantScopedView):
    tables = ("training.reviews",)

    def insert_review(self, e: PerformanceReview.Drafted, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.reviews (review_id, tenant_id, member_id, external_id, "
                "cycle, status, overall_rating, version, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, 'draft', %s, %s, %s, %s)",
                (
                    e.originator_id,
                    e.tenant_id,
                    e.member_id,
                    e.external_id,
                    e.cycle,
                    e.content.overall_rating,
                    e.originator_version,
                    e.timestamp,
                    e.timestamp,
                ),
            )

        self.write(tracking, e.tenant_id, rows)

    def update_review(
        self,
        e: PerformanceReview.Event,
        tracking: Tracking,
        changes: dict[str, Any],
        *,
        amended: bool = False,
    ) -> None:
        """Moves the review's row to the event's version, with the columns it changes."""
        # Column names come from this module only, never from input.
        assignments = "".join(f", {column} = %({column})s" for column in changes)
        if amended:
            assignments += ", amendments = amendments + 1"

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.reviews SET version = %(version)s, updated_at = %(at)s"
                f"{assignments} WHERE review_id = %(id)s",
                {
                    "version": e.originator_version,
                    "at": e.timestamp,
                    "id": e.originator_id,
                    **changes,
                },
            )

        self.write(tracking, e.tenant_id, rows)


class ReviewsProjection(Projection[ReviewsView]):
    name = "reviews"
    topics = tuple(
        get_topic(cls)
        for cls in (
            PerformanceReview.Drafted,
            PerformanceReview.Revised,
            PerformanceReview.Finalised,
            PerformanceReview.Amended,
        )
    )

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, e: PerformanceReview.Drafted, tracking: Tracking) -> None:
        self.view.insert_review(e, tracking)

    @process_event.register
    def _(self, e: PerformanceReview.Revised, tracking: Tracking) -> None:
        self.view.update_review(e, tracking, {"overall_rating": e.content.overall_rating})

    @process_event.register
    def _(self, e: PerformanceReview.Finalised, tracking: Tracking) -> None:
        self.view.update_review(e, tracking, {"status": "finalised"})

    @process_event.register
    def _(self, e: PerformanceReview.Amended, tracking: Tracking) -> None:
        self.view.update_review(
            e, tracking, {"overall_rating": e.content.overall_rating}, amended=True
        )


REVIEWS = ProjectionSpec(ReviewsProjection, ReviewsView)


class ReviewRecord(msgspec.Struct, kw_only=True):
    review_id: UUID
    member_id: UUID
    external_id: str
    cycle: str
    status: str
    overall_rating: int
    amendments: int
    version: int
    updated_at: datetime


# Queries run in a transaction scoped to the caller's tenant (ReadStore.session).

REVIEW_COLUMNS = (
    "review_id, member_id, external_id, cycle, status, overall_rating, amendments, version, "
    "updated_at"
)


async def list_reviews(
    conn: AsyncConnection[Any],
    *,
    limit: int,
    cursor: str | None,
    cycle: str | None = None,
    member_id: UUID | None = None,
    status: str | None = None,
) -> Page[ReviewRecord]:
    """Reviews by cycle (the latest first), then by person."""
    after = decode_cursor(cursor, TEXT, UUID_KEY, UUID_KEY) if cursor else [None, None, None]
    async with conn.cursor(row_factory=class_row(ReviewRecord)) as cur:
        await cur.execute(
            f"SELECT {REVIEW_COLUMNS} FROM training.reviews "
            "WHERE (%(cycle_after)s::text IS NULL OR cycle < %(cycle_after)s "
            "     OR (cycle = %(cycle_after)s AND (member_id, review_id) > "
            "         (%(member_after)s::uuid, %(review_after)s::uuid))) "
            "AND (%(cycle)s::text IS NULL OR cycle = %(cycle)s) "
            "AND (%(member)s::uuid IS NULL OR member_id = %(member)s) "
            "AND (%(status)s::text IS NULL OR status = %(status)s) "
            "ORDER BY cycle DESC, member_id, review_id LIMIT %(limit)s",
            {
                "cycle_after": after[0],
                "member_after": after[1],
                "review_after": after[2],
                "cycle": cycle,
                "member": member_id,
                "status": status,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.cycle, r.member_id, r.review_id])
