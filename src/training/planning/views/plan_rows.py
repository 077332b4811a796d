"""The tracks view's rows for a run of ``Replanned`` events, worked out in memory.

A run of re-plans (a curriculum release re-plans every track of a tenant) is written with a
few set-based statements (ADR 0041): one read of the modules the tracks already hold that
are not just planned, then each event applied in order here, then one delete and three
inserts of what the run leaves. Applying the events one after the other in memory gives the
rows that writing them one at a time would, also when one track is re-planned twice in a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from training.planning.domain.planner import Plan
from training.planning.domain.tracks import DEFAULT_WEEKLY_HOURS, TrainingTrack


def due_dates(
    plan: Plan, starts_on: date, weekly_hours: float = DEFAULT_WEEKLY_HOURS
) -> list[date]:
    """Each module is due when the weekly budget has covered it and everything before it."""
    minutes_per_day = weekly_hours * 60 / 7
    due, total = [], 0
    for module in plan.modules:
        total += module.minutes
        due.append(starts_on + timedelta(days=math.ceil(total / minutes_per_day)))
    return due


@dataclass(frozen=True, slots=True)
class ModuleRow:
    """A row of ``training.track_modules`` without its member, tenant and position."""

    curriculum_id: str
    curriculum_version: int
    key: str
    title: str
    minutes: int
    due_on: date
    reason: str
    state: str

    @property
    def ref(self) -> str:
        return f"{self.curriculum_id}/{self.key}"


@dataclass
class PlanRows:
    """What a run of re-plans leaves in the view, each row a JSON object named by column:
    each track's row and modules (the last re-plan of each track wins) and one row of
    history per re-plan."""

    tracks: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    modules: dict[UUID, list[ModuleRow]] = field(default_factory=dict)
    plans: list[dict[str, Any]] = field(default_factory=list)

    def module_rows(self, tenant_id: UUID | None) -> list[dict[str, Any]]:
        return [
            {
                "member_id": member_id,
                "tenant_id": tenant_id,
                "position": position,
                "curriculum_id": row.curriculum_id,
                "curriculum_version": row.curriculum_version,
                "key": row.key,
                "title": row.title,
                "minutes": row.minutes,
                "due_on": row.due_on,
                "reason": row.reason,
                "state": row.state,
            }
            for member_id, modules in self.modules.items()
            for position, row in enumerate(modules, start=1)
        ]


def plan_rows(events: list[TrainingTrack.Replanned], held: dict[UUID, list[ModuleRow]]) -> PlanRows:
    """The rows of ``events``, in order, for tracks that hold ``held`` (per member, in
    position order: the modules whose state is not ``planned``)."""
    rows = PlanRows()
    held = {member: list(modules) for member, modules in held.items()}
    for e in events:
        member_id, plan = e.member_id, e.plan
        kept = held.get(member_id, [])
        states = {row.ref: row.state for row in kept}
        # Completed modules stay on the track, first and in the order they were done; the
        # new plan follows them.
        completed = [row for row in kept if row.state == "completed"]
        done = {row.ref for row in completed}
        modules = list(completed)
        for module, due in zip(plan.modules, due_dates(plan, e.starts_on), strict=True):
            ref = f"{module.curriculum_id}/{module.key}"
            if ref in done:
                continue
            state = states.get(ref, "started" if module.in_progress else "planned")
            modules.append(
                ModuleRow(
                    module.curriculum_id,
                    module.curriculum_version,
                    module.key,
                    module.title,
                    module.minutes,
                    due,
                    module.reason,
                    state,
                )
            )
        rows.modules[member_id] = modules
        held[member_id] = [row for row in modules if row.state != "planned"]
        rows.tracks[member_id] = {
            "member_id": member_id,
            "tenant_id": e.tenant_id,
            "plan_version": e.plan_version,
            "trigger": e.trigger,
            "starts_on": e.starts_on,
            "minutes_used": plan.minutes_used,
            "budget_minutes": plan.budget_minutes,
            "remaining_gaps": plan.remaining_gaps,
            "deferred": plan.deferred,
            "updated_at": e.timestamp,
        }
        rows.plans.append(
            {
                "member_id": member_id,
                "tenant_id": e.tenant_id,
                "plan_version": e.plan_version,
                "trigger": e.trigger,
                "added": e.diff.added,
                "removed": e.diff.removed,
                "reordered": e.diff.reordered,
                "modules": [
                    {
                        "key": m.key,
                        "curriculum_id": m.curriculum_id,
                        "reason": m.reason,
                        "minutes": m.minutes,
                    }
                    for m in plan.modules
                ],
                "created_at": e.timestamp,
            }
        )
    return rows


def held_modules(found: list[dict[str, Any]]) -> dict[UUID, list[ModuleRow]]:
    """The rows of the view's read, per member in position order."""
    held: dict[UUID, list[ModuleRow]] = {}
    for row in found:
        held.setdefault(row["member_id"], []).append(
            ModuleRow(
                str(row["curriculum_id"]),
                row["curriculum_version"],
                row["key"],
                row["title"],
                row["minutes"],
                row["due_on"],
                row["reason"],
                row["state"],
            )
        )
    return held
