"""The report trigger: a re-plan queues the individual report of the new plan version.

``ReportTriggerProjection`` follows the planning process's ``TrainingTrack.Replanned`` events
and queues the individual report of each new plan version, in the transaction that records
its position: each re-plan queues exactly one report, even across a crash.

Why a projection of the planning events rather than polling ``training.tracks``: the
position tracking makes "one report per re-plan" exact with no scan (a poll would have to
compare every track with the reports table, or keep a cursor over a table that is emptied
and refilled by ``projections rebuild``); the runner is woken by the event store's own
notifications; and the tracks tables have no platform policy, so the service role could not
poll them across tenants without weakening their row-level security. The price is that the
tracks view (another runner) may not have reached the plan version yet when the report is
built; the worker then waits for it (``NotReady``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatchmethod
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import Cursor

from training.core.views import ProjectionSpec, TenantScopedView, rows_as_json
from training.planning.domain.tracks import TrainingTrack
from training.planning.views.tracks import TRACKS
from training.reports.domain.requests import Report, ReportKind
from training.reports.views import AUTOMATIC, NOTIFY

REPLANNED_TOPIC = get_topic(TrainingTrack.Replanned)
# The reports of a run of re-plans, as ``reports.views.INSERT`` queues one.
QUEUE_RUN = (
    "INSERT INTO training.reports (report_id, tenant_id, kind, subject_id, for_plan_version, "
    "priority, requested_by, request_id, trigger) SELECT * FROM jsonb_to_recordset(%s::jsonb) "
    "AS r(report_id uuid, tenant_id uuid, kind text, subject_id uuid, for_plan_version int, "
    "priority smallint, requested_by text, request_id text, trigger text) "
    "ON CONFLICT (report_id) DO NOTHING"
)


class ReportTriggerView(TenantScopedView):
    """Writes only queue rows; ``projections rebuild`` never empties the reports table."""

    def enqueue(self, e: TrainingTrack.Replanned, tracking: Tracking) -> None:
        """Queued with the batch's other re-plans of the tenant: one statement for their
        rows and one notification for the workers (ADR 0041)."""
        assert e.tenant_id is not None, "tracks always belong to a tenant"
        self.write_together(tracking, e.tenant_id, e)

    def write_items(self, cursor: Cursor[Any], items: Sequence[Any]) -> None:
        # One JSON document for the run, encoded by msgspec: psycopg would adapt every value
        # of every row in Python.
        cursor.execute(QUEUE_RUN, (rows_as_json([_queued(e) for e in items]),))
        cursor.execute(NOTIFY)


def _queued(e: TrainingTrack.Replanned) -> dict[str, Any]:
    """The queue row of the individual report of the plan version ``e`` made."""
    tenant_id = e.tenant_id
    assert tenant_id is not None, "tracks always belong to a tenant"
    return {
        "report_id": Report.plan_report_id(tenant_id, e.member_id, e.plan_version),
        "tenant_id": tenant_id,
        "kind": str(ReportKind.INDIVIDUAL),
        "subject_id": e.member_id,
        "for_plan_version": e.plan_version,
        "priority": AUTOMATIC,
        "requested_by": e.actor or "system:planning",
        "request_id": e.request_id,
        "trigger": f"re-plan to version {e.plan_version} ({e.trigger})",
    }


class ReportTriggerProjection(Projection[ReportTriggerView]):
    name = "report_triggers"
    topics = (REPLANNED_TOPIC,)

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, e: TrainingTrack.Replanned, tracking: Tracking) -> None:
        self.view.enqueue(e, tracking)


# The planning process's events, which the tracks view follows as well.
REPORT_TRIGGERS = ProjectionSpec(
    ReportTriggerProjection, ReportTriggerView, upstream=TRACKS.upstream
)
