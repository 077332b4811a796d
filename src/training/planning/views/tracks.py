"""Read model of training tracks (built from the planning process's events) and its queries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import AsyncConnection, Cursor
from psycopg.rows import class_row

from training.core.pagination import INT, Page, decode_cursor, page_of
from training.core.views import ProjectionSpec, TenantScopedView, rows_as_json
from training.planning.domain.tracks import TrainingTrack
from training.planning.process import Planning
from training.planning.views.plan_rows import held_modules, plan_rows


class TrackModuleRecord(msgspec.Struct, kw_only=True):
    position: int
    curriculum_id: UUID
    curriculum_version: int
    key: str
    title: str
    minutes: int
    due_on: date
    reason: str
    state: str


class TrackCohortRecord(msgspec.Struct, kw_only=True):
    """A cohort the person is in (enrolled, not waiting): its curriculum version is preferred."""

    cohort_id: UUID
    curriculum_id: UUID
    curriculum_version: int
    joined_at: datetime


class TrackRecord(msgspec.Struct, kw_only=True):
    member_id: UUID
    plan_version: int
    trigger: str
    starts_on: date
    minutes_used: int
    budget_minutes: int
    remaining_gaps: list[dict[str, Any]]
    deferred: list[dict[str, Any]]
    updated_at: datetime
    # While the member is deactivated the track is frozen: it plans nothing until reactivated.
    frozen: bool = False
    frozen_since: datetime | None = None
    modules: list[TrackModuleRecord] = []
    cohorts: list[TrackCohortRecord] = []


class PlanVersionRecord(msgspec.Struct, kw_only=True):
    plan_version: int
    trigger: str
    added: list[Any]
    removed: list[Any]
    reordered: list[Any]
    modules: list[Any]
    created_at: datetime


class TracksView(TenantScopedView):
    tables = (
        "training.tracks",
        "training.track_modules",
        "training.track_plans",
        "training.track_cohorts",
    )

    def replanned(self, e: TrainingTrack.Replanned, tracking: Tracking) -> None:
        """Written with the batch's other re-plans of the tenant, set-based (ADR 0041)."""
        self.write_together(tracking, e.tenant_id, e)

    def write_items(self, cursor: Cursor[Any], items: Sequence[Any]) -> None:
        events: list[TrainingTrack.Replanned] = list(items)
        tenant_id = events[0].tenant_id
        members = list(dict.fromkeys(e.member_id for e in events))
        # The view's cursor returns rows as dicts (the event store's connection settings).
        found = cursor.execute(
            "SELECT member_id, curriculum_id, curriculum_version, key, title, minutes, due_on, "
            "reason, state FROM training.track_modules "
            "WHERE member_id = ANY(%s) AND state <> 'planned' ORDER BY member_id, position",
            (members,),
        ).fetchall()
        rows = plan_rows(events, held_modules(found))
        cursor.execute(
            "INSERT INTO training.tracks (member_id, tenant_id, plan_version, trigger, "
            "starts_on, minutes_used, budget_minutes, remaining_gaps, deferred, updated_at) "
            "SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r(member_id uuid, tenant_id uuid, "
            "plan_version int, trigger text, starts_on date, minutes_used int, "
            "budget_minutes int, remaining_gaps jsonb, deferred jsonb, updated_at timestamptz) "
            "ON CONFLICT (member_id) DO UPDATE "
            "SET plan_version = EXCLUDED.plan_version, trigger = EXCLUDED.trigger, "
            "starts_on = EXCLUDED.starts_on, minutes_used = EXCLUDED.minutes_used, "
            "budget_minutes = EXCLUDED.budget_minutes, "
            "remaining_gaps = EXCLUDED.remaining_gaps, deferred = EXCLUDED.deferred, "
            "updated_at = EXCLUDED.updated_at",
            (rows_as_json(list(rows.tracks.values())),),
        )
        cursor.execute("DELETE FROM training.track_modules WHERE member_id = ANY(%s)", (members,))
        cursor.execute(
            "INSERT INTO training.track_modules (member_id, tenant_id, position, "
            "curriculum_id, curriculum_version, key, title, minutes, due_on, reason, state) "
            "SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r(member_id uuid, tenant_id uuid, "
            "position int, curriculum_id uuid, curriculum_version int, key text, title text, "
            "minutes int, due_on date, reason text, state text)",
            (rows_as_json(rows.module_rows(tenant_id)),),
        )
        cursor.execute(
            "INSERT INTO training.track_plans (member_id, tenant_id, plan_version, trigger, "
            "added, removed, reordered, modules, created_at) "
            "SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r(member_id uuid, tenant_id uuid, "
            "plan_version int, trigger text, added jsonb, removed jsonb, reordered jsonb, "
            "modules jsonb, created_at timestamptz)",
            (rows_as_json(rows.plans),),
        )

    def progressed(
        self, e: TrainingTrack.ProgressNoted, tracking: Tracking, member_id: UUID
    ) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.track_modules SET state = %s WHERE member_id = %s "
                "AND curriculum_id::text = %s AND key = %s",
                (e.state, member_id, e.curriculum_id, e.key),
            )

        self.write(tracking, e.tenant_id, rows)

    # A track's cohorts are kept by track id (which derives from the tenant and the member):
    # the track's cohort events do not name the member.

    def cohort_joined(self, e: TrainingTrack.CohortJoined, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO training.track_cohorts (track_id, tenant_id, cohort_id, "
                "curriculum_id, curriculum_version, joined_at) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (track_id, cohort_id) DO UPDATE SET "
                "curriculum_id = EXCLUDED.curriculum_id, "
                "curriculum_version = EXCLUDED.curriculum_version, joined_at = EXCLUDED.joined_at",
                (
                    e.originator_id,
                    e.tenant_id,
                    e.cohort_id,
                    e.curriculum_id,
                    e.version,
                    e.timestamp,
                ),
            )

        self.write(tracking, e.tenant_id, rows)

    def cohort_left(self, e: TrainingTrack.CohortLeft, tracking: Tracking) -> None:
        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "DELETE FROM training.track_cohorts WHERE track_id = %s AND cohort_id = %s",
                (e.originator_id, e.cohort_id),
            )

        self.write(tracking, e.tenant_id, rows)

    def frozen(self, e: TrainingTrack.Frozen | TrainingTrack.Unfrozen, tracking: Tracking) -> None:
        """A track frozen before its first plan has no row yet: it gets one (unfrozen) when
        it is unfrozen and planned."""
        since = e.timestamp if isinstance(e, TrainingTrack.Frozen) else None

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                "UPDATE training.tracks SET frozen_since = %s WHERE member_id = %s",
                (since, e.member_id),
            )

        self.write(tracking, e.tenant_id, rows)


class TracksProjection(Projection[TracksView]):
    name = "tracks"
    topics = tuple(
        get_topic(cls)
        for cls in (
            TrainingTrack.Replanned,
            TrainingTrack.ProgressNoted,
            TrainingTrack.CohortJoined,
            TrainingTrack.CohortLeft,
            TrainingTrack.Frozen,
            TrainingTrack.Unfrozen,
        )
    )

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, e: TrainingTrack.Replanned, tracking: Tracking) -> None:
        self.view.replanned(e, tracking)

    @process_event.register
    def _(self, e: TrainingTrack.ProgressNoted, tracking: Tracking) -> None:
        self.view.progressed(e, tracking, e.member_id)

    @process_event.register
    def _(self, e: TrainingTrack.CohortJoined, tracking: Tracking) -> None:
        self.view.cohort_joined(e, tracking)

    @process_event.register
    def _(self, e: TrainingTrack.CohortLeft, tracking: Tracking) -> None:
        self.view.cohort_left(e, tracking)

    @process_event.register
    def _(self, e: TrainingTrack.Frozen, tracking: Tracking) -> None:
        self.view.frozen(e, tracking)

    @process_event.register
    def _(self, e: TrainingTrack.Unfrozen, tracking: Tracking) -> None:
        self.view.frozen(e, tracking)


# Queries, in a transaction scoped to the caller's tenant.

TRACK_COLUMNS = (
    "member_id, plan_version, trigger, starts_on, minutes_used, budget_minutes, remaining_gaps, "
    "deferred, updated_at, frozen_since IS NOT NULL AS frozen, frozen_since"
)
MODULE_COLUMNS = (
    "position, curriculum_id, curriculum_version, key, title, minutes, due_on, reason, state"
)


async def get_track(
    conn: AsyncConnection[Any], tenant_id: UUID, member_id: UUID
) -> TrackRecord | None:
    async with conn.cursor(row_factory=class_row(TrackRecord)) as cur:
        await cur.execute(
            f"SELECT {TRACK_COLUMNS} FROM training.tracks WHERE member_id = %s", (member_id,)
        )
        track = await cur.fetchone()
    if track is None:
        return None
    async with conn.cursor(row_factory=class_row(TrackModuleRecord)) as cur:
        await cur.execute(
            f"SELECT {MODULE_COLUMNS} FROM training.track_modules WHERE member_id = %s "
            "ORDER BY position",
            (member_id,),
        )
        track.modules = await cur.fetchall()
    async with conn.cursor(row_factory=class_row(TrackCohortRecord)) as cur:
        await cur.execute(
            "SELECT cohort_id, curriculum_id, curriculum_version, joined_at "
            "FROM training.track_cohorts WHERE track_id = %s ORDER BY joined_at, cohort_id",
            (TrainingTrack.create_id(tenant_id, member_id),),
        )
        track.cohorts = await cur.fetchall()
    return track


async def list_plan_versions(
    conn: AsyncConnection[Any], member_id: UUID, *, limit: int, cursor: str | None
) -> Page[PlanVersionRecord]:
    """Every plan of the track, newest first, with what changed and why."""
    before = int(decode_cursor(cursor, INT)[0]) if cursor else None
    async with conn.cursor(row_factory=class_row(PlanVersionRecord)) as cur:
        await cur.execute(
            "SELECT plan_version, trigger, added, removed, reordered, modules, created_at "
            "FROM training.track_plans WHERE member_id = %(member)s "
            "AND (%(before)s::int IS NULL OR plan_version < %(before)s) "
            "ORDER BY plan_version DESC LIMIT %(limit)s",
            {"member": member_id, "before": before, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.plan_version])


# The read model as the runners and read-your-writes know it.
PLANNING = ProjectionSpec(Planning)
TRACKS = ProjectionSpec(TracksProjection, TracksView, upstream=Planning)
