"""What SCIM reads of the people and cohorts read models, in the tenant's read-only session.

Identity keeps no read model of its own: a SCIM client lists the members (with their personal
data) and the cohorts those contexts project.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import class_row

from training.people.views import FROM_MEMBERS, MEMBER_COLUMNS, MemberRecord


async def provisioned_members(
    conn: AsyncConnection[Any], *, team: str | None
) -> list[MemberRecord]:
    """Every member that was not erased and has personal data (of one team when ``team``),
    ordered by member id."""
    async with conn.cursor(row_factory=class_row(MemberRecord)) as cur:
        await cur.execute(
            f"SELECT {MEMBER_COLUMNS} FROM {FROM_MEMBERS} WHERE NOT m.erased "
            "AND p.member_id IS NOT NULL "
            "AND (%(team)s::text IS NULL OR m.team = %(team)s) ORDER BY m.member_id",
            {"team": team},
        )
        return await cur.fetchall()


async def members_with_email(conn: AsyncConnection[Any], tenant_id: UUID, email: str) -> list[UUID]:
    """The members of ``tenant_id`` whose email is ``email`` (emails are kept lower-case)."""
    cur = await conn.execute(
        "SELECT member_id FROM training.people WHERE tenant_id = %s AND email = %s",
        (tenant_id, email.strip().lower()),
    )
    return [row[0] for row in await cur.fetchall()]


async def cohort_ids(conn: AsyncConnection[Any]) -> list[UUID]:
    """The ids of the tenant's cohorts, in order."""
    cur = await conn.execute("SELECT cohort_id FROM training.cohorts ORDER BY cohort_id")
    return [row[0] for row in await cur.fetchall()]
