"""Read model of each tenant's skills and role profiles, and the queries over it."""

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
from psycopg.types.json import Jsonb

from training.core.pagination import INT, TEXT, Page, decode_cursor, page_of
from training.core.views import ProjectionSpec, TenantScopedView
from training.skills.domain import RoleProfile, SkillDefinition, SkillFramework, SkillTarget
from training.skills.queries import framework_for


class SkillRecord(msgspec.Struct, kw_only=True):
    code: str
    name: str
    category: str
    description: str
    levels: list[str]
    source: str
    retired: bool


class TargetRecord(msgspec.Struct):
    skill: str
    level: int


class RoleProfileRecord(msgspec.Struct, kw_only=True):
    profile_id: UUID
    key: str
    name: str
    description: str
    revision: int
    retired: bool
    targets: list[TargetRecord]
    version: int
    updated_at: datetime


class RevisionRecord(msgspec.Struct, kw_only=True):
    revision: int
    name: str
    description: str
    targets: list[TargetRecord]
    created_at: datetime
    actor: str


def _targets_json(targets: tuple[SkillTarget, ...]) -> Jsonb:
    return Jsonb([{"skill": t.skill, "level": t.level} for t in targets])


class SkillsView(TenantScopedView):
    tables = ("training.skills", "training.role_profiles", "training.role_profile_revisions")

    def framework_started(self, e: SkillFramework.Started, tracking: Tracking) -> None:
        defaults = framework_for(e.base_version).skills

        def rows(cur: Cursor[Any]) -> None:
            cur.executemany(
                "INSERT INTO training.skills (tenant_id, code, name, category, description, "
                "levels, source, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 'default', %s)",
                [
                    (
                        e.tenant_id,
                        s.code,
                        s.name,
                        s.category,
                        s.description,
                        Jsonb(list(s.levels)),
                        e.timestamp,
                    )
                    for s in defaults
                ],
            )

        self.write(tracking, e.tenant_id, rows)

    def skill_added(self, e: SkillFramework.SkillAdded, tracking: Tracking) -> None:
        skill: SkillDefinition = e.skill

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.skills (tenant_id, code, name, category, description, "
                "levels, source, updated_at) VALUES (%s, %s, %s, %s, %s, %s, 'custom', %s)",
                (
                    e.tenant_id,
                    skill.code,
                    skill.name,
                    skill.category,
                    skill.description,
                    Jsonb(list(skill.levels)),
                    e.timestamp,
                ),
            )

        self.write(tracking, e.tenant_id, rows)

    def skill_changed(
        self, e: SkillFramework.Event, tracking: Tracking, code: str, changes: dict[str, Any]
    ) -> None:
        assignments = "".join(f", {column} = %({column})s" for column in changes)

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                f"UPDATE training.skills SET updated_at = %(at)s{assignments} "
                "WHERE tenant_id = %(tenant)s AND code = %(code)s",
                {"at": e.timestamp, "tenant": e.tenant_id, "code": code, **changes},
            )

        self.write(tracking, e.tenant_id, rows)

    def profile_defined(self, e: RoleProfile.Defined, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.role_profiles (profile_id, tenant_id, key, name, "
                "description, revision, targets, version, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s)",
                (
                    e.originator_id,
                    e.tenant_id,
                    e.key,
                    e.name,
                    e.description,
                    _targets_json(e.targets),
                    e.originator_version,
                    e.timestamp,
                ),
            )
            self._insert_revision(cur, e, 1, e.name, e.description, e.targets)

        self.write(tracking, e.tenant_id, rows)

    def profile_revised(self, e: RoleProfile.Revised, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.role_profiles SET name = %s, description = %s, revision = %s, "
                "targets = %s, version = %s, updated_at = %s WHERE profile_id = %s",
                (
                    e.name,
                    e.description,
                    e.revision,
                    _targets_json(e.targets),
                    e.originator_version,
                    e.timestamp,
                    e.originator_id,
                ),
            )
            self._insert_revision(cur, e, e.revision, e.name, e.description, e.targets)

        self.write(tracking, e.tenant_id, rows)

    def profile_retired(self, e: RoleProfile.Retired, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.role_profiles SET retired = true, version = %s, updated_at = %s "
                "WHERE profile_id = %s",
                (e.originator_version, e.timestamp, e.originator_id),
            )

        self.write(tracking, e.tenant_id, rows)

    @staticmethod
    def _insert_revision(
        cur: Cursor[Any],
        e: RoleProfile.Event,
        revision: int,
        name: str,
        description: str,
        targets: tuple[SkillTarget, ...],
    ) -> None:
        cur.execute(
            "INSERT INTO training.role_profile_revisions (profile_id, tenant_id, revision, name, "
            "description, targets, created_at, actor) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                e.originator_id,
                e.tenant_id,
                revision,
                name,
                description,
                _targets_json(targets),
                e.timestamp,
                e.actor,
            ),
        )


class SkillsProjection(Projection[SkillsView]):
    name = "skills"
    topics = tuple(
        get_topic(cls)
        for cls in (
            SkillFramework.Started,
            SkillFramework.SkillAdded,
            SkillFramework.SkillRenamed,
            SkillFramework.SkillRetired,
            RoleProfile.Defined,
            RoleProfile.Revised,
            RoleProfile.Retired,
        )
    )

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, e: SkillFramework.Started, tracking: Tracking) -> None:
        self.view.framework_started(e, tracking)

    @process_event.register
    def _(self, e: SkillFramework.SkillAdded, tracking: Tracking) -> None:
        self.view.skill_added(e, tracking)

    @process_event.register
    def _(self, e: SkillFramework.SkillRenamed, tracking: Tracking) -> None:
        self.view.skill_changed(e, tracking, e.code, {"name": e.name})

    @process_event.register
    def _(self, e: SkillFramework.SkillRetired, tracking: Tracking) -> None:
        self.view.skill_changed(e, tracking, e.code, {"retired": True})

    @process_event.register
    def _(self, e: RoleProfile.Defined, tracking: Tracking) -> None:
        self.view.profile_defined(e, tracking)

    @process_event.register
    def _(self, e: RoleProfile.Revised, tracking: Tracking) -> None:
        self.view.profile_revised(e, tracking)

    @process_event.register
    def _(self, e: RoleProfile.Retired, tracking: Tracking) -> None:
        self.view.profile_retired(e, tracking)


# Queries, in a transaction scoped to the caller's tenant.

SKILL_COLUMNS = "code, name, category, description, levels, source, retired"


async def list_skills(
    conn: AsyncConnection[Any],
    *,
    limit: int,
    cursor: str | None,
    category: str | None,
    include_retired: bool,
    source: str | None,
) -> Page[SkillRecord]:
    after = decode_cursor(cursor, TEXT)[0] if cursor else None
    async with conn.cursor(row_factory=class_row(SkillRecord)) as cur:
        await cur.execute(
            f"SELECT {SKILL_COLUMNS} FROM training.skills "
            "WHERE (%(after)s::text IS NULL OR code > %(after)s) "
            "AND (%(category)s::text IS NULL OR category = %(category)s) "
            "AND (%(source)s::text IS NULL OR source = %(source)s) "
            "AND (%(retired)s OR NOT retired) ORDER BY code LIMIT %(limit)s",
            {
                "after": after,
                "category": category,
                "source": source,
                "retired": include_retired,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.code])


async def get_skill(conn: AsyncConnection[Any], code: str) -> SkillRecord | None:
    async with conn.cursor(row_factory=class_row(SkillRecord)) as cur:
        await cur.execute(f"SELECT {SKILL_COLUMNS} FROM training.skills WHERE code = %s", (code,))
        return await cur.fetchone()


PROFILE_COLUMNS = (
    "profile_id, key, name, description, revision, retired, targets, version, updated_at"
)


def _with_target_records(record: Any) -> Any:
    record.targets = msgspec.convert(record.targets, list[TargetRecord])
    return record


async def list_role_profiles(
    conn: AsyncConnection[Any], *, limit: int, cursor: str | None, include_retired: bool
) -> Page[RoleProfileRecord]:
    after = decode_cursor(cursor, TEXT)[0] if cursor else None
    async with conn.cursor(row_factory=class_row(RoleProfileRecord)) as cur:
        await cur.execute(
            f"SELECT {PROFILE_COLUMNS} FROM training.role_profiles "
            "WHERE (%(after)s::text IS NULL OR key > %(after)s) AND (%(retired)s OR NOT retired) "
            "ORDER BY key LIMIT %(limit)s",
            {"after": after, "retired": include_retired, "limit": limit + 1},
        )
        rows = [_with_target_records(r) for r in await cur.fetchall()]
    return page_of(rows, limit, lambda r: [r.key])


async def get_role_profile(conn: AsyncConnection[Any], key: str) -> RoleProfileRecord | None:
    async with conn.cursor(row_factory=class_row(RoleProfileRecord)) as cur:
        await cur.execute(
            f"SELECT {PROFILE_COLUMNS} FROM training.role_profiles WHERE key = %s", (key,)
        )
        row = await cur.fetchone()
    return _with_target_records(row) if row else None


async def list_revisions(
    conn: AsyncConnection[Any], profile_id: UUID, *, limit: int, cursor: str | None
) -> Page[RevisionRecord]:
    after = decode_cursor(cursor, INT)[0] if cursor else None
    async with conn.cursor(row_factory=class_row(RevisionRecord)) as cur:
        await cur.execute(
            "SELECT revision, name, description, targets, created_at, actor "
            "FROM training.role_profile_revisions WHERE profile_id = %(id)s "
            "AND (%(after)s::int IS NULL OR revision > %(after)s) "
            "ORDER BY revision LIMIT %(limit)s",
            {"id": profile_id, "after": after, "limit": limit + 1},
        )
        rows = [_with_target_records(r) for r in await cur.fetchall()]
    return page_of(rows, limit, lambda r: [r.revision])


# The read model as the runners and read-your-writes know it.
SKILLS = ProjectionSpec(SkillsProjection, SkillsView)
