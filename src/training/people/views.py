"""Read model of members, and the queries over it (joined with personal data at read time)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import AsyncConnection, Cursor
from psycopg.rows import class_row, dict_row

from training.core.pagination import INT, TEXT, Page, decode_cursor, page_of
from training.core.views import ProjectionSpec, TenantScopedView, rows_as_json
from training.people.domain.members import Member

ERASED = "(erased)"


class MemberRecord(msgspec.Struct, kw_only=True):
    member_id: UUID
    external_id: str
    display_name: str | None
    email: str | None
    roles: list[str]
    manager_id: UUID | None
    team: str | None
    job_title: str | None
    status: str
    erased: bool
    version: int
    created_at: datetime
    updated_at: datetime
    language: str | None = None


class ReportRecord(msgspec.Struct, kw_only=True):
    member_id: UUID
    external_id: str
    display_name: str | None
    manager_id: UUID | None
    team: str | None
    job_title: str | None
    status: str
    depth: int


class MembersView(TenantScopedView):
    tables = ("training.members",)

    def insert_member(self, e: Member.Registered, tracking: Tracking) -> None:
        """In a runner's batch, a tenant's run of registrations (an import's) goes in with one
        statement; any other write of the batch comes after the rows kept before it."""
        row = MemberRow(
            member_id=e.originator_id,
            tenant_id=e.tenant_id,
            external_id=e.external_id,
            roles=[str(r) for r in e.roles],
            manager_id=e.manager_id,
            team=e.team,
            job_title=e.job_title,
            version=e.originator_version,
            created_at=e.timestamp,
        )
        self.write_together(tracking, e.tenant_id, row)

    def write_items(self, cursor: Cursor[Any], items: Sequence[Any]) -> None:
        cursor.execute(INSERT_MEMBERS, (rows_as_json(items),))

    def update_member(self, e: Member.Event, tracking: Tracking, changes: dict[str, Any]) -> None:
        """Moves the member's row to the event's version, with the columns it changes."""
        # Column names come from this module only, never from input.
        assignments = "".join(f", {column} = %({column})s" for column in changes)

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.members SET version = %(version)s, updated_at = %(at)s"
                f"{assignments} WHERE member_id = %(id)s",
                {
                    "version": e.originator_version,
                    "at": e.timestamp,
                    "id": e.originator_id,
                    **changes,
                },
            )

        self.write(tracking, e.tenant_id, rows)


class MemberRow(msgspec.Struct):
    member_id: UUID
    tenant_id: UUID | None
    external_id: str
    roles: list[str]
    manager_id: UUID | None
    team: str | None
    job_title: str | None
    version: int
    created_at: datetime


INSERT_MEMBERS = (
    "INSERT INTO training.members (member_id, tenant_id, external_id, roles, manager_id, team, "
    "job_title, status, version, created_at, updated_at) "
    "SELECT member_id, tenant_id, external_id, roles, manager_id, team, job_title, 'active', "
    "version, created_at, created_at FROM jsonb_to_recordset(%s::jsonb) AS r(member_id uuid, "
    "tenant_id uuid, external_id text, roles text[], manager_id uuid, team text, job_title text, "
    "version int, created_at timestamptz)"
)


class MembersProjection(Projection[MembersView]):
    name = "members"
    topics = tuple(
        get_topic(cls)
        for cls in (
            Member.Registered,
            Member.RolesChanged,
            Member.ManagerChanged,
            Member.PositionChanged,
            Member.PersonalDataUpdated,
            Member.Deactivated,
            Member.Reactivated,
            Member.Erased,
            Member.ExternalIdChanged,
            Member.LanguageChosen,
        )
    )

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, e: Member.Registered, tracking: Tracking) -> None:
        self.view.insert_member(e, tracking)

    @process_event.register
    def _(self, e: Member.RolesChanged, tracking: Tracking) -> None:
        self.view.update_member(e, tracking, {"roles": [str(r) for r in e.roles]})

    @process_event.register
    def _(self, e: Member.ManagerChanged, tracking: Tracking) -> None:
        self.view.update_member(e, tracking, {"manager_id": e.manager_id})

    @process_event.register
    def _(self, e: Member.PositionChanged, tracking: Tracking) -> None:
        self.view.update_member(e, tracking, {"team": e.team, "job_title": e.job_title})

    @process_event.register
    def _(self, e: Member.PersonalDataUpdated, tracking: Tracking) -> None:
        self.view.update_member(e, tracking, {})

    @process_event.register
    def _(self, e: Member.Deactivated, tracking: Tracking) -> None:
        self.view.update_member(e, tracking, {"status": "deactivated"})

    @process_event.register
    def _(self, e: Member.Reactivated, tracking: Tracking) -> None:
        self.view.update_member(e, tracking, {"status": "active"})

    @process_event.register
    def _(self, e: Member.Erased, tracking: Tracking) -> None:
        self.view.update_member(e, tracking, {"erased": True})

    @process_event.register
    def _(self, e: Member.ExternalIdChanged, tracking: Tracking) -> None:
        self.view.update_member(e, tracking, {"external_id": e.external_id})

    @process_event.register
    def _(self, e: Member.LanguageChosen, tracking: Tracking) -> None:
        self.view.update_member(e, tracking, {"language": e.language})


# Queries run in a transaction scoped to the caller's tenant (ReadStore.session).

MEMBER_COLUMNS = (
    "m.member_id, m.external_id, "
    f"CASE WHEN m.erased THEN '{ERASED}' ELSE p.display_name END AS display_name, "
    "CASE WHEN m.erased THEN NULL ELSE p.email END AS email, "
    "m.roles, m.manager_id, m.team, m.job_title, m.status, m.erased, m.version, "
    "m.created_at, m.updated_at, m.language"
)
FROM_MEMBERS = "training.members m LEFT JOIN training.people p ON p.member_id = m.member_id"


async def get_member(conn: AsyncConnection[Any], member_id: UUID) -> MemberRecord | None:
    async with conn.cursor(row_factory=class_row(MemberRecord)) as cur:
        await cur.execute(
            f"SELECT {MEMBER_COLUMNS} FROM {FROM_MEMBERS} WHERE m.member_id = %s", (member_id,)
        )
        return await cur.fetchone()


async def names_of(conn: AsyncConnection[Any], member_ids: Sequence[UUID]) -> dict[UUID, str]:
    """The display names of the given members ("(erased)" for an erased one, none for a
    member without a name)."""
    async with conn.cursor() as cur:
        await cur.execute(
            f"SELECT m.member_id, CASE WHEN m.erased THEN '{ERASED}' ELSE p.display_name END "
            f"FROM {FROM_MEMBERS} WHERE m.member_id = ANY(%s)",
            (list(member_ids),),
        )
        return {row[0]: row[1] for row in await cur.fetchall() if row[1]}


async def list_members(
    conn: AsyncConnection[Any],
    *,
    limit: int,
    cursor: str | None,
    team: str | None = None,
    role: str | None = None,
    manager_id: UUID | None = None,
    status: str | None = None,
    query: str | None = None,
) -> Page[MemberRecord]:
    """Members ordered by external id; ``query`` matches the start of name, email or id."""
    after = decode_cursor(cursor, TEXT)[0] if cursor else None
    pattern = None
    if query:
        escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = escaped + "%"
    async with conn.cursor(row_factory=class_row(MemberRecord)) as cur:
        await cur.execute(
            f"SELECT {MEMBER_COLUMNS} FROM {FROM_MEMBERS} "
            "WHERE (%(after)s::text IS NULL OR m.external_id > %(after)s) "
            "AND (%(team)s::text IS NULL OR m.team = %(team)s) "
            "AND (%(role)s::text IS NULL OR %(role)s = ANY(m.roles)) "
            "AND (%(manager)s::uuid IS NULL OR m.manager_id = %(manager)s) "
            "AND (%(status)s::text IS NULL OR m.status = %(status)s) "
            "AND (%(pattern)s::text IS NULL OR lower(m.external_id) LIKE %(pattern)s "
            "     OR (NOT m.erased AND (lower(p.display_name) LIKE %(pattern)s "
            "         OR lower(p.email) LIKE %(pattern)s))) "
            "ORDER BY m.external_id LIMIT %(limit)s",
            {
                "after": after,
                "team": team,
                "role": role,
                "manager": manager_id,
                "status": status,
                "pattern": pattern,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.external_id])


async def list_reports(
    conn: AsyncConnection[Any],
    manager_id: UUID,
    *,
    direct_only: bool,
    limit: int,
    cursor: str | None,
) -> Page[ReportRecord]:
    """Direct and indirect reports, ordered by depth then external id."""
    after = decode_cursor(cursor, INT, TEXT) if cursor else None
    async with conn.cursor(row_factory=class_row(ReportRecord)) as cur:
        await cur.execute(
            "WITH RECURSIVE line AS ("
            "  SELECT member_id, 1 AS depth FROM training.members WHERE manager_id = %(manager)s"
            "  UNION"
            "  SELECT m.member_id, line.depth + 1 FROM training.members m"
            "  JOIN line ON m.manager_id = line.member_id"
            "  WHERE line.depth < 64 AND NOT %(direct)s"
            ") "
            "SELECT m.member_id, m.external_id, "
            f"  CASE WHEN m.erased THEN '{ERASED}' ELSE p.display_name END AS display_name, "
            "  m.manager_id, m.team, m.job_title, m.status, min(line.depth) AS depth "
            f"FROM line JOIN {FROM_MEMBERS} ON m.member_id = line.member_id "
            "GROUP BY m.member_id, p.display_name "
            "HAVING (%(after_depth)s::int IS NULL OR (min(line.depth), m.external_id) > "
            "  (%(after_depth)s::int, %(after_id)s::text)) "
            "ORDER BY depth, m.external_id LIMIT %(limit)s",
            {
                "manager": manager_id,
                "direct": direct_only,
                "after_depth": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.depth, r.external_id])


async def personal_data_of(conn: AsyncConnection[Any], member_id: UUID) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT display_name, email, sso_subject, deactivation_reason, updated_at "
            "FROM training.people WHERE member_id = %s",
            (member_id,),
        )
        return await cur.fetchone()


async def names_held(conn: AsyncConnection[Any], member_id: UUID) -> list[str]:
    """The member's stored name and email: read before an erasure, to find afterwards what
    else names them (stored responses of idempotent requests)."""
    personal = await personal_data_of(conn, member_id)
    if personal is None:
        return []
    return [str(v) for v in (personal["display_name"], personal["email"]) if v]


async def member_with_sso_subject(conn: AsyncConnection[Any], subject: str) -> UUID | None:
    """The member provisioned at sign-in with this identity provider subject (kept with the
    personal data, so an erased member has none)."""
    cur = await conn.execute(
        "SELECT member_id FROM training.people WHERE tenant_id = training.current_tenant() "
        "AND sso_subject = %s",
        (subject,),
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def reports_to(conn: AsyncConnection[Any], member_id: UUID, manager_id: UUID) -> bool:
    """Whether ``member_id`` is in ``manager_id``'s reporting line, directly or not."""
    cur = await conn.execute(
        "WITH RECURSIVE line AS ("
        "  SELECT manager_id, 1 AS depth FROM training.members WHERE member_id = %(member)s"
        "  UNION ALL"
        "  SELECT m.manager_id, line.depth + 1 FROM training.members m"
        "  JOIN line ON m.member_id = line.manager_id WHERE line.depth < 64"
        ") SELECT EXISTS (SELECT 1 FROM line WHERE manager_id = %(manager)s)",
        {"member": member_id, "manager": manager_id},
    )
    row = await cur.fetchone()
    return bool(row and row[0])


# The read model as the runners and read-your-writes know it.
MEMBERS = ProjectionSpec(MembersProjection, MembersView)
