"""Liveness and readiness.

``/readyz`` answers 503 only when this instance cannot serve: the database is unreachable or
migrations are pending. A stopped or degraded view answers 200 with ``status: degraded`` and
says which view, which tenants, since when (ADR 0026): every API instance reads the same
views, so taking instances out of the load balancer for a view would stop every tenant's
requests, the healthy ones included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
import structlog
from litestar import Request, Response, get
from litestar.di import NamedDependency

from training.bootstrap import Services
from training.core.held_events import DEGRADED_TENANTS_LISTED, DegradedViews
from training.core.projection_runner import RunnerState, leader_lock_key
from training.core.views import ProjectionSpec
from training.infra.migrations import MigrationError, unapplied_migrations
from training.registry import PROJECTIONS
from training.reports.trigger import REPORT_TRIGGERS

log = structlog.get_logger(__name__)


class Health(msgspec.Struct):
    status: str


class DegradedTenant(msgspec.Struct):
    tenant_id: Annotated[
        UUID | None,
        msgspec.Meta(description="the tenant; null: events of the platform itself"),
    ]
    since: Annotated[datetime, msgspec.Meta(description="when its first event was set aside")]
    quarantined: Annotated[
        int, msgspec.Meta(description="events the view could not apply (usually 1)")
    ]
    parked: Annotated[
        int,
        msgspec.Meta(description="the tenant's later events, held back in order behind them"),
    ]


class ProjectionLag(msgspec.Struct):
    name: str
    status: Annotated[
        str,
        msgspec.Meta(
            description=(
                "`ok`; `degraded`: some tenants' events are quarantined (the others' are "
                "applied; `training projections retry NAME` re-applies them after a fix); "
                "`stopped`: no process is applying this view's events"
            )
        ),
    ]
    position: Annotated[int, msgspec.Meta(description="the last event position it processed")]
    lag: Annotated[int, msgspec.Meta(description="events it follows beyond that position")]
    running: Annotated[
        bool | None,
        msgspec.Meta(
            description="whether this process runs it; null: this process runs no projections"
        ),
    ]
    runner: Annotated[
        str,
        msgspec.Meta(
            description=(
                "`here` (this process runs it), `starting`, `restarting` (it failed; this "
                "process restarts it after a back-off), `elsewhere` (another process runs "
                "it) or `nowhere`"
            )
        ),
    ]
    stopped_since: Annotated[
        datetime | None,
        msgspec.Meta(description="while `restarting`: since when it keeps failing"),
    ] = None
    restarts: Annotated[
        int | None,
        msgspec.Meta(description="restarts in this process; null: this process does not run it"),
    ] = None
    last_error: Annotated[
        str | None, msgspec.Meta(description="while `restarting`: the kind of its last error")
    ] = None
    degraded_tenants: Annotated[
        list[DegradedTenant],
        msgspec.Meta(
            description=(
                f"tenants whose events are quarantined, longest first (at most "
                f"{DEGRADED_TENANTS_LISTED})"
            )
        ),
    ] = msgspec.field(default_factory=list)
    degraded_tenant_count: Annotated[
        int, msgspec.Meta(description="how many tenants are degraded in all")
    ] = 0


class WorkerState(msgspec.Struct):
    name: str
    running: bool
    rendered: Annotated[int, msgspec.Meta(description="reports rendered since it started")]
    failed: Annotated[int, msgspec.Meta(description="reports that failed since it started")]


class Readiness(msgspec.Struct):
    status: Annotated[
        str,
        msgspec.Meta(
            description=(
                "`ready`; `degraded` (still 200): a view is stopped or has quarantined "
                "events, or a worker of this process is not running; `not ready` (503): the "
                "database or the read replica is unreachable, or migrations are pending"
            )
        ),
    ]
    database: str
    migrations: str
    projections: Annotated[
        list[ProjectionLag],
        msgspec.Meta(description="every read model, the planning process and the report trigger"),
    ]
    workers: Annotated[
        list[WorkerState],
        msgspec.Meta(
            description="background workers this process runs (a report worker per render "
            "process: `reports`, or `reports-1`, `reports-2`, ...)"
        ),
    ] = msgspec.field(default_factory=list)
    replica: Annotated[
        str | None,
        msgspec.Meta(
            description="the streaming replica queries read from "
            "(`TRAINING_READ_DATABASE_URL`): `ok`, or `unreachable: ...`; null without one. "
            "Projection positions and lags are the replica's, as queries see them"
        ),
    ] = None
    replica_delay_seconds: Annotated[
        float | None,
        msgspec.Meta(
            description="seconds since the replica replayed the newest transaction it has "
            "received; 0 when it has replayed all it received; null without a replica"
        ),
    ] = None


@get(
    "/healthz",
    tags=["Operations"],
    operation_id="health",
    summary="The process answers",
    exclude_from_auth=True,
)
async def healthz() -> Health:
    return Health("ok")


@get(
    "/readyz",
    tags=["Operations"],
    operation_id="readiness",
    summary="Database reachable, migrations applied; each projection's lag, runner and degraded "
    "tenants",
    description="503 when this instance cannot serve (database, migrations); a stopped or "
    "degraded view answers 200 with `status: degraded`.",
    exclude_from_auth=True,
)
async def readyz(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Response[Readiness]:
    ready = True
    try:
        async with services.store.pool.connection() as conn:
            await conn.execute("SELECT 1")
        database = "ok"
    except Exception as error:  # the answer is the point: report, don't raise
        database = f"unreachable: {type(error).__name__}"
        ready = False
    try:
        async with services.store.pool.connection() as conn:
            cur = await conn.execute("SELECT filename, checksum FROM public.training_migrations")
            applied = {str(name): str(checksum) for name, checksum in await cur.fetchall()}
        pending = unapplied_migrations(applied)
        migrations = "ok" if not pending else f"pending: {', '.join(pending)}"
        ready = ready and not pending
    except MigrationError as error:
        migrations = f"error: {error}"
        ready = False
    except Exception as error:  # the answer is the point: report, don't raise
        migrations = f"unknown: {type(error).__name__}"
        ready = False
    replica, delay = await _replica(services)
    ready = ready and replica in {None, "ok"}
    degraded_views: DegradedViews | None = getattr(request.app.state, "degraded_views", None)
    reachable = database == "ok" and replica in {None, "ok"}
    projections = await _projections(services, degraded_views) if reachable else []
    workers = _workers(services)
    degraded = any(p.status != "ok" for p in projections) or any(not w.running for w in workers)
    status = "not ready" if not ready else "degraded" if degraded else "ready"
    body = Readiness(status, database, migrations, projections, workers, replica, delay)
    return Response(body, status_code=200 if ready else 503)


async def _replica(services: Services) -> tuple[str | None, float | None]:
    if not services.store.on_replica:
        return None, None
    try:
        return "ok", await services.store.replay_delay()
    except Exception as error:  # the answer is the point: report, don't raise
        return f"unreachable: {type(error).__name__}", None


def _specs(services: Services) -> tuple[ProjectionSpec, ...]:
    known = (*PROJECTIONS, REPORT_TRIGGERS)
    if services.supervisor is None:
        return known
    extra = tuple(spec for spec in services.supervisor.specs if spec not in known)
    return (*known, *extra)


async def _projections(
    services: Services, degraded_views: DegradedViews | None
) -> list[ProjectionLag]:
    supervisor = services.supervisor
    states = supervisor.states() if supervisor else None
    held = await _led_anywhere(services)
    degraded = await _degraded(degraded_views)
    answer = []
    for spec in _specs(services):
        position = await services.store.tracked_position(spec.info)
        lag = await services.store.pending_events(spec.info, position)
        state = states.get(spec.name) if states is not None else None
        runner = _runner(state, spec.name in held)
        tenants = degraded.get(spec.name, ([], 0))
        status = "stopped" if runner in {"restarting", "nowhere"} else "ok"
        if status == "ok" and tenants[1]:
            status = "degraded"
        answer.append(
            ProjectionLag(
                spec.name,
                status,
                position,
                lag,
                running=None if states is None else runner == "here",
                runner=runner,
                stopped_since=state.failing_since
                if state and state.status == "restarting"
                else None,
                restarts=state.restarts if state else None,
                last_error=state.last_error if state and state.status == "restarting" else None,
                degraded_tenants=tenants[0],
                degraded_tenant_count=tenants[1],
            )
        )
    return answer


def _runner(state: RunnerState | None, held_anywhere: bool) -> str:
    if state is not None and state.status == "running":
        return "here"
    if state is not None and state.status in {"starting", "restarting"}:
        return state.status
    if held_anywhere:
        return "elsewhere"
    # A process that stands by takes the projection over within seconds of its release.
    return "starting" if state is not None and state.status == "standby" else "nowhere"


async def _led_anywhere(services: Services) -> set[str]:
    """The projections whose leader lock some session of the cluster holds."""
    async with services.store.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = 0 AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        keys = {int(row[0]) for row in await cur.fetchall()}
    return {spec.name for spec in _specs(services) if leader_lock_key(spec.name) in keys}


async def _degraded(
    degraded_views: DegradedViews | None,
) -> dict[str, tuple[list[DegradedTenant], int]]:
    """Per view: its degraded tenants (the first ones) and how many there are. Read as the
    worker role: the API's own sessions see no tenant's quarantined events (ADR 0023)."""
    found: dict[str, tuple[list[DegradedTenant], int]] = {}
    if degraded_views is None:
        return found
    try:
        rows = await degraded_views.rows()
    except Exception:  # before its migration: `migrations` already says what is pending
        log.warning("readyz.quarantine_unreadable", exc_info=True)
        return found
    for view, tenant_id, since, failed, parked, count in rows:
        listed, _ = found.get(view, ([], 0))
        listed.append(DegradedTenant(tenant_id, since, int(failed), int(parked)))
        found[view] = (listed, int(count))
    return found


def _workers(services: Services) -> list[WorkerState]:
    # The report workers run with the projections (ReportingSupervisor.workers): "reports"
    # when there is one, "reports-1", "reports-2", ... when there are several.
    workers = tuple(getattr(services.supervisor, "workers", ()))
    states = []
    for number, worker in enumerate(workers, start=1):
        thread = getattr(worker, "_thread", None)
        running = bool(thread is not None and thread.is_alive())
        name = "reports" if len(workers) == 1 else f"reports-{number}"
        states.append(WorkerState(name, running, int(worker.rendered), int(worker.failed)))
    return states


ROUTES = [healthz, readyz]
