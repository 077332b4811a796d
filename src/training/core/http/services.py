"""What the controllers work with, and the helpers every controller shares.

``run_command`` is the only way a controller writes: it builds the command context from the
authenticated principal and the request id, runs the command bus in a worker thread (the
event store is synchronous) and returns the outcome. ``read_after`` gives read-your-writes:
a query that carries ``Training-Position`` waits, bounded, for its views to catch up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from litestar import Request
from litestar.concurrency import sync_to_thread
from litestar.exceptions import ValidationException
from litestar.params import HeaderParameter

from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.held_events import held_back, refuse_if_held_back
from training.core.http.principal import Principal
from training.core.idempotency_store import IdempotencyStore
from training.core.outcome import Outcome
from training.core.projection_runner import ProjectionSupervisor
from training.core.read_store import APPLICATION_NAME, ReadStore, ViewBehind, ViewInfo
from training.identity.keys import KeyRing
from training.infra.database import Database
from training.infra.settings import Settings
from training.people.handlers.import_jobs import ImportJobStore
from training.people.handlers.import_runner import ImportRunner
from training.planning.views.tracks import PLANNING

POSITION_HEADER = "Training-Position"
# The processes whose own events some views follow, by application name: the tracks view and
# the report trigger follow the planning process, which follows the training application.
PRODUCERS = {PLANNING.name: PLANNING.info}

# An ETag this API returns ("3", weak or not), a bare version, or "*" for any version.
IF_MATCH_PATTERN = r'^[ \t]*(\*|(W/)?"[0-9]{1,19}"|[0-9]{1,19})[ \t]*$'
IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        pattern=IF_MATCH_PATTERN,
        description="ETag of the version you read: the command acts only on that version "
        "(412 otherwise)",
    ),
]


@dataclass
class Services:
    settings: Settings
    database: Database
    app: TrainingApplication
    bus: CommandBus
    store: ReadStore
    idempotency: IdempotencyStore
    imports: ImportJobStore
    import_runner: ImportRunner
    keys: KeyRing
    token_server: Any
    supervisor: ProjectionSupervisor | None = None


def services_of(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    return services


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    principal: Principal = request.user
    return principal


def request_id_of(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


async def run_command(request: Request[Any, Any, Any], command: Any) -> Outcome[Any]:
    services = services_of(request)
    context = principal_of(request).context(request_id_of(request))
    return await sync_to_thread(services.bus.execute, context, command)


def command_headers(outcome: Outcome[Any], *, version: int | None = None) -> dict[str, str]:
    headers = {}
    if outcome.position is not None:
        headers[POSITION_HEADER] = str(outcome.position)
    if version is not None:
        headers["ETag"] = etag(version)
    return headers


def etag(version: int) -> str:
    return f'"{version}"'


# Versions and positions are PostgreSQL bigints written in ASCII digits. ``str.isdigit()`` is
# not the test: it accepts "²", which ``int()`` refuses, and ``int()`` of a string longer than
# 4,300 digits raises too.
_NUMBER = re.compile(r"[0-9]{1,19}")
MAX_NUMBER = 2**63 - 1


def _number(text: str) -> int | None:
    """A non-negative bigint written in ASCII digits, or None."""
    if not _NUMBER.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_NUMBER else None


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header names; ``*`` or no header means any version."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    version = _number(value)
    if version is None:
        raise ValidationException(
            detail='If-Match takes an ETag this API returned, such as "3"',
            extra=[{"key": "If-Match", "message": "not an ETag of this API", "source": "header"}],
        )
    return version


def position_of(request: Request[Any, Any, Any]) -> int | None:
    """The ``Training-Position`` a request carries, if any; a value that is not one is a 400."""
    raw = request.headers.get(POSITION_HEADER)
    if raw is None:
        return None
    position = _number(raw.strip())
    if position is None:
        raise ValidationException(
            detail=f"{POSITION_HEADER} takes the number a command returned",
            extra=[{"key": POSITION_HEADER, "message": "not a position", "source": "header"}],
        )
    return position


async def check_position(request: Request[Any, Any, Any]) -> None:
    """``before_request`` hook: every query refuses a ``Training-Position`` that is not one,
    whether or not it reads a view, so that a client learns of its mistake at once."""
    if request.method == "GET" and request.url.path.startswith("/v1/"):
        position_of(request)


async def read_after(
    request: Request[Any, Any, Any],
    views: Sequence[ViewInfo],
    *,
    tenant_id: UUID | None = None,
) -> None:
    """Waits until ``views`` reflect the position the client sent back, if it sent one: the
    caller's tenant's events up to it (``tenant_id`` names the tenant where a route has no
    principal, as a calendar feed's secret URL)."""
    if tenant_id is None:
        principal = request.scope.get("user")
        tenant_id = principal.tenant_id if isinstance(principal, Principal) else None
    await read_your_writes(services_of(request), views, position_of(request), tenant_id)


async def read_your_writes(
    services: Services, views: Sequence[ViewInfo], position: int | None, tenant_id: UUID | None
) -> None:
    """Waits until every view in ``views`` holds ``tenant_id``'s events up to ``position``
    (every tenant's when ``tenant_id`` is None, the platform's own reads), or raises
    ``ViewBehind``. Another tenant's backlog is not waited for (ADR 0028)."""
    if position is None:
        return
    reached = await services.store.wait_for(
        views, position, services.settings.read_wait, tenant_id=tenant_id, producers=PRODUCERS
    )
    # A view passes the positions of the events it quarantines (ADR 0026): not the tenant's.
    await refuse_if_held_back(services.store, views, tenant_id, position)
    derived = [view.name for view in views if view.upstream != APPLICATION_NAME]
    if derived:
        # Their quarantined events are positions in their producer's log.
        async with services.store.session(None) as conn:
            for name in derived:
                held = await held_back(conn, [name], tenant_id, reached[name])
                if held is not None:
                    raise ViewBehind(held[0], position, held[1])
