"""A review's free text, read from where it is kept beside the review's events."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from training.core.personal_data import EMPTY_REVIEW_TEXT, ReviewText


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
