"""What engineers wrote with their progress reports, read from ``training.learning_notes``
(kept beside the learning records' events: it may name people)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection


async def learning_notes_of_member(
    conn: AsyncConnection[Any], member_id: UUID
) -> list[dict[str, Any]]:
    """Every note the member wrote with a progress report, oldest first (for the export of
    what is held)."""
    cur = await conn.execute(
        "SELECT curriculum_id, module_key, note, noted_at FROM training.learning_notes "
        "WHERE member_id = %s ORDER BY noted_at, record_id, version",
        (member_id,),
    )
    return [
        {"curriculum_id": row[0], "module_key": row[1], "note": row[2], "noted_at": row[3]}
        for row in await cur.fetchall()
    ]
