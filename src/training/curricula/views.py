"""Read model of curricula and their modules, and the queries over it.

Each event's rows are written in a transaction scoped to the event's tenant, or to the
platform for the catalogue (tenant None). Module rows of version 0 are the live draft; rows of
version N are published version N, written once by ``VersionPublished`` and never changed,
so a version reads the same forever. Row-level security lets a tenant read its own rows and
the catalogue's; the platform reads and writes only the catalogue's.
"""

from __future__ import annotations

from collections.abc import Iterable
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
from psycopg.types.json import Jsonb

from training.core.pagination import (
    INT,
    TIMESTAMP,
    UUID_KEY,
    InvalidCursor,
    Page,
    decode_cursor,
    page_of,
)
from training.core.views import ProjectionSpec, TenantScopedView, Writer
from training.curricula.domain import Curriculum, ModuleSpec

DRAFT = 0


class TargetRecord(msgspec.Struct):
    skill: str
    level: int


class CurriculumRecord(msgspec.Struct, kw_only=True):
    curriculum_id: UUID
    tenant_id: UUID | None
    catalogue: bool
    title: str
    description: str
    status: str
    latest_version: int | None
    has_unpublished_changes: bool
    forked_from: UUID | None
    forked_version: int | None
    module_count: int
    version: int
    created_at: datetime
    updated_at: datetime


class ModuleRecord(msgspec.Struct, kw_only=True):
    """A module of the draft (``position`` null, key order) or of a published version."""

    key: str
    title: str
    description: str
    format: str
    duration_minutes: int
    targets: list[TargetRecord]
    prerequisites: list[str]
    position: int | None


class ModuleListing(msgspec.Struct, kw_only=True):
    """A module of the latest published version of an active curriculum."""

    curriculum_id: UUID
    curriculum_title: str
    catalogue: bool
    version: int
    key: str
    title: str
    description: str
    format: str
    duration_minutes: int
    targets: list[TargetRecord]
    prerequisites: list[str]
    position: int


def module_row(
    e: Curriculum.Event, version: int, module: ModuleSpec, position: int | None
) -> dict[str, Any]:
    return {
        "curriculum_id": e.originator_id,
        "version": version,
        "tenant_id": e.tenant_id,
        "key": module.key,
        "title": module.title,
        "description": module.description,
        "format": str(module.format),
        "duration_minutes": module.duration_minutes,
        "targets": Jsonb([{"skill": t.skill, "level": t.level} for t in module.targets]),
        "target_skills": [t.skill for t in module.targets],
        "prerequisites": list(module.prerequisites),
        "position": position,
    }


INSERT_MODULE = (
    "INSERT INTO training.curriculum_modules (curriculum_id, version, tenant_id, key, title, "
    "description, format, duration_minutes, targets, target_skills, prerequisites, position) "
    "VALUES (%(curriculum_id)s, %(version)s, %(tenant_id)s, %(key)s, %(title)s, "
    "%(description)s, %(format)s, %(duration_minutes)s, %(targets)s, %(target_skills)s, "
    "%(prerequisites)s, %(position)s)"
)

# What a learner sees of a module; the draft differs from the latest version when any differs.
COMPARED = "key, title, description, format, duration_minutes, targets, prerequisites"

# Recomputes what follows from the module rows, after every change of the curriculum.
REFRESH = (
    "UPDATE training.curricula c SET "
    "module_count = (SELECT count(*) FROM training.curriculum_modules m "
    "  WHERE m.curriculum_id = c.curriculum_id AND m.version = 0), "
    "has_unpublished_changes = CASE WHEN c.latest_version IS NULL THEN EXISTS ("
    "  SELECT 1 FROM training.curriculum_modules m "
    "  WHERE m.curriculum_id = c.curriculum_id AND m.version = 0) "
    "ELSE EXISTS ("
    f"  (SELECT {COMPARED} FROM training.curriculum_modules "
    "    WHERE curriculum_id = c.curriculum_id AND version = 0 "
    f"   EXCEPT SELECT {COMPARED} FROM training.curriculum_modules "
    "    WHERE curriculum_id = c.curriculum_id AND version = c.latest_version) "
    "  UNION ALL "
    f"  (SELECT {COMPARED} FROM training.curriculum_modules "
    "    WHERE curriculum_id = c.curriculum_id AND version = c.latest_version "
    f"   EXCEPT SELECT {COMPARED} FROM training.curriculum_modules "
    "    WHERE curriculum_id = c.curriculum_id AND version = 0)) END "
    "WHERE c.curriculum_id = %s"
)


class CurriculaView(TenantScopedView):
    tables = ("training.curricula", "training.curriculum_modules")

    def curriculum_drafted(self, e: Curriculum.Drafted, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.curricula (curriculum_id, tenant_id, title, description, "
                "status, latest_version, has_unpublished_changes, forked_from, forked_version, "
                "module_count, version, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, 'active', NULL, false, %s, %s, 0, %s, %s, %s)",
                (
                    e.originator_id,
                    e.tenant_id,
                    e.title,
                    e.description,
                    e.forked_from,
                    e.forked_version,
                    e.originator_version,
                    e.timestamp,
                    e.timestamp,
                ),
            )
            self._insert_modules(cur, e, DRAFT, e.modules, ordered=False)
            cur.execute(REFRESH, (e.originator_id,))

        self.write(tracking, e.tenant_id, rows)

    def curriculum_changed(
        self,
        e: Curriculum.Event,
        tracking: Tracking,
        columns: dict[str, Any],
        change_modules: Writer | None = None,
    ) -> None:
        """Sets ``columns`` and the new version on the curriculum's row; ``change_modules(cur)``
        then changes its module rows, and what follows from them (the module count, whether
        the draft differs from the latest version) is recomputed."""
        # Column names come from this module only, never from input.
        assignments = "".join(f", {column} = %({column})s" for column in columns)

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.curricula SET version = %(version)s, updated_at = %(at)s"
                f"{assignments} WHERE curriculum_id = %(id)s",
                {
                    "version": e.originator_version,
                    "at": e.timestamp,
                    "id": e.originator_id,
                    **columns,
                },
            )
            if change_modules is not None:
                change_modules(cur)
                cur.execute(REFRESH, (e.originator_id,))

        self.write(tracking, e.tenant_id, rows)

    @staticmethod
    def _insert_modules(
        cur: Cursor[Any],
        e: Curriculum.Event,
        version: int,
        modules: Iterable[ModuleSpec],
        *,
        ordered: bool,
    ) -> None:
        params = [
            module_row(e, version, module, position if ordered else None)
            for position, module in enumerate(modules, start=1)
        ]
        if params:
            cur.executemany(INSERT_MODULE, params)

    def add_module(self, e: Curriculum.ModuleAdded, tracking: Tracking) -> None:
        def modules(cur: Cursor[Any]) -> None:
            self._insert_modules(cur, e, DRAFT, [e.module], ordered=False)

        self.curriculum_changed(e, tracking, {}, modules)

    def revise_module(self, e: Curriculum.ModuleRevised, tracking: Tracking) -> None:
        def modules(cur: Cursor[Any]) -> None:
            cur.execute(
                "DELETE FROM training.curriculum_modules "
                "WHERE curriculum_id = %s AND version = 0 AND key = %s",
                (e.originator_id, e.module.key),
            )
            self._insert_modules(cur, e, DRAFT, [e.module], ordered=False)

        self.curriculum_changed(e, tracking, {}, modules)

    def remove_module(self, e: Curriculum.ModuleRemoved, tracking: Tracking) -> None:
        def modules(cur: Cursor[Any]) -> None:
            cur.execute(
                "DELETE FROM training.curriculum_modules "
                "WHERE curriculum_id = %s AND version = 0 AND key = %s",
                (e.originator_id, e.key),
            )

        self.curriculum_changed(e, tracking, {}, modules)

    def publish(self, e: Curriculum.VersionPublished, tracking: Tracking) -> None:
        def modules(cur: Cursor[Any]) -> None:
            self._insert_modules(cur, e, e.version, e.modules, ordered=True)

        self.curriculum_changed(e, tracking, {"latest_version": e.version}, modules)


class CurriculaProjection(Projection[CurriculaView]):
    name = "curricula"
    topics = tuple(
        get_topic(cls)
        for cls in (
            Curriculum.Drafted,
            Curriculum.Retitled,
            Curriculum.ModuleAdded,
            Curriculum.ModuleRevised,
            Curriculum.ModuleRemoved,
            Curriculum.VersionPublished,
            Curriculum.Retired,
        )
    )

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, e: Curriculum.Drafted, tracking: Tracking) -> None:
        self.view.curriculum_drafted(e, tracking)

    @process_event.register
    def _(self, e: Curriculum.Retitled, tracking: Tracking) -> None:
        self.view.curriculum_changed(e, tracking, {"title": e.title, "description": e.description})

    @process_event.register
    def _(self, e: Curriculum.ModuleAdded, tracking: Tracking) -> None:
        self.view.add_module(e, tracking)

    @process_event.register
    def _(self, e: Curriculum.ModuleRevised, tracking: Tracking) -> None:
        self.view.revise_module(e, tracking)

    @process_event.register
    def _(self, e: Curriculum.ModuleRemoved, tracking: Tracking) -> None:
        self.view.remove_module(e, tracking)

    @process_event.register
    def _(self, e: Curriculum.VersionPublished, tracking: Tracking) -> None:
        self.view.publish(e, tracking)

    @process_event.register
    def _(self, e: Curriculum.Retired, tracking: Tracking) -> None:
        self.view.curriculum_changed(e, tracking, {"status": "retired"})


# Queries run in a transaction scoped to the caller's tenant, or to the platform for the
# operator (ReadStore.session): row-level security decides which curricula are visible.

CURRICULUM_COLUMNS = (
    "curriculum_id, tenant_id, tenant_id IS NULL AS catalogue, title, description, status, "
    "latest_version, has_unpublished_changes, forked_from, forked_version, module_count, "
    "version, created_at, updated_at"
)
MODULE_COLUMNS = (
    "m.key, m.title, m.description, m.format, m.duration_minutes, m.targets, m.prerequisites, "
    "m.position"
)
SCOPES = {"all": None, "tenant": "tenant_id IS NOT NULL", "catalogue": "tenant_id IS NULL"}


def _cursor_after(
    cursor: str | None, *, positioned: bool
) -> tuple[datetime, UUID, int | None] | None:
    """The (created_at, curriculum_id[, position]) a cursor of these queries names."""
    if cursor is None:
        return None
    values = decode_cursor(cursor, TIMESTAMP, UUID_KEY, *([INT] if positioned else []))
    refused = InvalidCursor("the cursor is not one this API returned")
    try:
        created_at = datetime.fromisoformat(str(values[0]))
        curriculum_id = UUID(str(values[1]))
    except ValueError:
        raise refused from None
    if created_at.tzinfo is None:
        raise refused
    if not positioned:
        return created_at, curriculum_id, None
    position = values[2]
    if type(position) is not int or not 0 < position < 2**31:
        raise refused
    return created_at, curriculum_id, position


def _cursor_key(created_at: datetime, curriculum_id: UUID, *position: int) -> list[Any]:
    return [created_at.isoformat(), str(curriculum_id), *position]


async def get_curriculum(
    conn: AsyncConnection[Any], curriculum_id: UUID
) -> CurriculumRecord | None:
    async with conn.cursor(row_factory=class_row(CurriculumRecord)) as cur:
        await cur.execute(
            f"SELECT {CURRICULUM_COLUMNS} FROM training.curricula WHERE curriculum_id = %s",
            (curriculum_id,),
        )
        return await cur.fetchone()


async def list_curricula(
    conn: AsyncConnection[Any],
    *,
    limit: int,
    cursor: str | None,
    scope: str = "all",
    status: str | None = None,
) -> Page[CurriculumRecord]:
    """Curricula in the order they were created; ``scope`` picks own, catalogue or both."""
    after = _cursor_after(cursor, positioned=False)
    where = SCOPES[scope]
    async with conn.cursor(row_factory=class_row(CurriculumRecord)) as cur:
        await cur.execute(
            f"SELECT {CURRICULUM_COLUMNS} FROM training.curricula "
            f"WHERE {where or 'true'} "
            "AND (%(status)s::text IS NULL OR status = %(status)s) "
            "AND (%(after_at)s::timestamptz IS NULL "
            "     OR (created_at, curriculum_id) > (%(after_at)s::timestamptz, %(after_id)s)) "
            "ORDER BY created_at, curriculum_id LIMIT %(limit)s",
            {
                "status": status,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: _cursor_key(r.created_at, r.curriculum_id))


async def modules_of(
    conn: AsyncConnection[Any], curriculum_id: UUID, version: int = DRAFT
) -> list[ModuleRecord]:
    """The draft's modules by key, or a published version's in their published order."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {MODULE_COLUMNS} FROM training.curriculum_modules m "
            "WHERE m.curriculum_id = %s AND m.version = %s ORDER BY m.position, m.key",
            (curriculum_id, version),
        )
        rows = await cur.fetchall()
    # msgspec.convert builds the nested target structs from the jsonb column.
    return msgspec.convert(rows, list[ModuleRecord])


async def list_modules(
    conn: AsyncConnection[Any],
    *,
    limit: int,
    cursor: str | None,
    skill: str | None = None,
    level: int | None = None,
    module_format: str | None = None,
    curriculum_id: UUID | None = None,
) -> Page[ModuleListing]:
    """Modules of the latest published version of each active curriculum the caller sees.

    ``level`` matches a target's level: the target of ``skill`` when a skill is given, any
    target otherwise. Ordered by curriculum (as created) and then the published order.
    """
    after = _cursor_after(cursor, positioned=True)
    target: dict[str, Any] = {}
    if skill is not None:
        target["skill"] = skill
    if level is not None:
        target["level"] = level
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT c.curriculum_id, c.title AS curriculum_title, "
            "c.tenant_id IS NULL AS catalogue, c.created_at AS curriculum_created_at, m.version, "
            f"{MODULE_COLUMNS} "
            "FROM training.curricula c JOIN training.curriculum_modules m "
            "  ON m.curriculum_id = c.curriculum_id AND m.version = c.latest_version "
            "WHERE c.status = 'active' "
            "AND (%(skill)s::text IS NULL OR %(skill)s = ANY(m.target_skills)) "
            "AND (%(target)s::jsonb IS NULL OR m.targets @> %(target)s::jsonb) "
            "AND (%(format)s::text IS NULL OR m.format = %(format)s) "
            "AND (%(curriculum)s::uuid IS NULL OR c.curriculum_id = %(curriculum)s) "
            "AND (%(after_at)s::timestamptz IS NULL "
            "     OR (c.created_at, c.curriculum_id, m.position) "
            "        > (%(after_at)s::timestamptz, %(after_id)s, %(after_position)s::int)) "
            "ORDER BY c.created_at, c.curriculum_id, m.position LIMIT %(limit)s",
            {
                "skill": skill,
                "target": Jsonb([target]) if target else None,
                "format": module_format,
                "curriculum": curriculum_id,
                "after_at": after[0] if after else None,
                "after_id": after[1] if after else None,
                "after_position": after[2] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    page = page_of(
        rows,
        limit,
        lambda r: _cursor_key(r["curriculum_created_at"], r["curriculum_id"], r["position"]),
    )
    # msgspec.convert builds the nested target structs from the jsonb column.
    return Page(msgspec.convert(page.items, list[ModuleListing]), page.next_cursor)


# The read model as the runners and read-your-writes know it.
CURRICULA = ProjectionSpec(CurriculaProjection, CurriculaView)
