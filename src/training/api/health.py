"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get

from training.api.services import services_of
from training.infra.migrations import MigrationError, unapplied_migrations
from training.projections.registry import PROJECTIONS


class Health(msgspec.Struct):
    status: str


class ProjectionLag(msgspec.Struct):
    name: str
    position: int
    lag: int
    running: bool | None


class Readiness(msgspec.Struct):
    status: str
    database: str
    migrations: str
    projections: list[ProjectionLag]


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
    summary="Database reachable, migrations applied, projection lag (events not yet projected)",
    exclude_from_auth=True,
)
async def readyz(request: Request[Any, Any, Any]) -> Response[Readiness]:
    services = services_of(request)
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
    lags = []
    running = services.supervisor.running() if services.supervisor else None
    if database == "ok":
        for spec in PROJECTIONS:
            position = await services.store.tracked_position(spec.info)
            lag = await services.store.pending_events(spec.info, position)
            lags.append(
                ProjectionLag(
                    spec.name, position, lag, None if running is None else spec.name in running
                )
            )
    body = Readiness("ready" if ready else "not ready", database, migrations, lags)
    return Response(body, status_code=200 if ready else 503)


ROUTES = [healthz, readyz]
