"""A review's free text, read from where it is kept beside the review's events."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from training.application.personal_data import EMPTY_REVIEW_TEXT, ReviewText


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
