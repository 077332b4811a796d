"""Calibration over HTTP: authors (``skills:write``) re-estimate item difficulties from the
recorded responses, publish them as a parameter version, and rescore completed attempts under
a version, keeping each original result beside the new ones."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from training.assessments import views
from training.assessments.handlers.attempts import RescoreAttempt
from training.assessments.handlers.calibration import (
    Recalibration,
    published_versions,
    recalibrate,
)
from training.assessments.http.common import tenant_of
from training.assessments.views import ASSESSMENTS
from training.core.access import Scope
from training.core.application import TrainingApplication
from training.core.errors import InvalidTransition, NotFound
from training.core.http.commands import Commands, answer
from training.core.http.params import Cursor, Limit
from training.core.http.principal import Principal, requires_scope
from training.core.http.reads import Reads
from training.core.outcome import Outcome
from training.core.pagination import DEFAULT_LIMIT

RESCORE_BATCH = 200

VersionPath = Annotated[
    str, PathParameter(pattern=r"^[0-9]{1,9}$", description="a published parameter version")
]


class CalibrationOut(msgspec.Struct, kw_only=True):
    version: int
    responses_used: int
    changed: Annotated[int, msgspec.Meta(description="items whose difficulty moved")]
    items: int


class CalibrationVersionsOut(msgspec.Struct):
    items: list[views.ParameterVersionRecord]
    next_cursor: str | None


class RescoreOut(msgspec.Struct, kw_only=True):
    version: int
    rescored: int
    skipped: Annotated[int, msgspec.Meta(description="already scored under this version")]


async def rescore_completed(commands: Commands, reads: Reads, version: int) -> Outcome[RescoreOut]:
    """Rescores, one command each, the completed attempts the view lists as not yet scored
    under ``version``: what it did, and the position of the last rescoring."""
    rescored = skipped = 0
    position: int | None = None
    after: UUID | None = None
    while True:
        async with reads.session() as conn:
            batch = await views.attempts_to_rescore(conn, version, after=after, limit=RESCORE_BATCH)
        for attempt_id in batch:
            try:
                outcome = await commands.run(RescoreAttempt(attempt_id, version))
            except (InvalidTransition, NotFound):
                skipped += 1  # already scored under this version (the view was behind)
                continue
            rescored += 1
            position = outcome.position or position
        if len(batch) < RESCORE_BATCH:
            return Outcome(
                RescoreOut(version=version, rescored=rescored, skipped=skipped), position
            )
        after = batch[-1]


class CalibrationController(Controller):
    path = "/v1/item-calibrations"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="calibrateItems",
        summary="Re-estimate item difficulties from the recorded responses; publish a version",
        description="Reads every response of the tenant's completed attempts with the "
        "attempt's original theta, re-estimates each item's difficulty by maximum likelihood "
        "(discriminations are kept) starting from the current parameters, and publishes the "
        "result as the next parameter version. Items with fewer than `min_responses` "
        "responses keep their difficulty. New attempts use the new version; completed ones "
        "keep their results until rescored.",
        status_code=201,
    )
    async def calibrate(
        self,
        commands: NamedDependency[Commands],
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        app: NamedDependency[TrainingApplication],
        min_responses: Annotated[int, QueryParameter(name="min_responses", ge=1, le=100_000)] = 20,
    ) -> Response[CalibrationOut]:
        tenant_id = tenant_of(principal)
        await reads.after([ASSESSMENTS.info])
        async with reads.session() as conn:
            responses = await views.calibration_responses(conn)
        recalibration: Recalibration = await sync_to_thread(
            recalibrate, app, tenant_id, responses, min_responses=min_responses
        )
        outcome = await commands.run(recalibration.publish)
        body = CalibrationOut(
            version=outcome.result,
            responses_used=recalibration.publish.responses_used,
            changed=recalibration.changed,
            items=len(recalibration.publish.parameters),
        )
        return answer(outcome, body, status=201)

    @get(
        "/",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="listItemCalibrations",
        summary="The tenant's published item-parameter versions",
    )
    async def versions(
        self, reads: NamedDependency[Reads], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> CalibrationVersionsOut:
        await reads.after([ASSESSMENTS.info])
        async with reads.session() as conn:
            page = await views.parameter_versions(conn, limit=limit, cursor=cursor)
        return CalibrationVersionsOut(page.items, page.next_cursor)

    @post(
        "/{version:str}/rescore",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="rescoreAttempts",
        summary="Score every completed attempt again under a published parameter version",
        description="Replays each attempt's responses against the version's parameters and "
        "records the new result beside the original, one command per attempt. Attempts "
        "already scored under the version are skipped, so running it again is harmless.",
        status_code=200,
    )
    async def rescore(
        self,
        commands: NamedDependency[Commands],
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        app: NamedDependency[TrainingApplication],
        version: VersionPath,
    ) -> Response[RescoreOut]:
        number = int(version)
        if number not in await sync_to_thread(published_versions, app, tenant_of(principal)):
            raise NotFound(f"item-parameter version {number} not found")
        await reads.after([ASSESSMENTS.info])
        outcome = await rescore_completed(commands, reads, number)
        return answer(outcome, outcome.result)
