"""What a controller is given: Litestar injects these by parameter name (ADR 0030).

A controller declares ``commands: Commands``, ``reads: Reads``, ``principal: Principal`` or
``app: TrainingApplication`` and receives the request's; it never looks them up on the app's
state. ``training.bootstrap`` builds them once per process from what it wired and adds what
some contexts need besides (settings, the import queue, the signing keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.di import Provide

from training.core.application import TrainingApplication
from training.core.bus import CommandBus
from training.core.http.commands import Commands
from training.core.http.params import position_of
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.read_store import ReadStore, ViewInfo


def request_id_of(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    """The authenticated caller (routes outside authentication have none)."""
    principal: Principal = request.user
    return principal


@dataclass(frozen=True)
class Wiring:
    """What the providers hand out, built once per process by ``training.bootstrap``."""

    app: TrainingApplication
    bus: CommandBus
    store: ReadStore
    read_wait: float
    # The processes whose own events some views follow, by application name.
    producers: Mapping[str, ViewInfo]


def controller_dependencies(wiring: Wiring | None) -> dict[str, Provide]:
    """The providers of ``commands``, ``reads``, ``principal`` and ``app``. An app built only
    for its OpenAPI document (``wiring=None``) declares them but never calls them."""

    def wired() -> Wiring:
        if wiring is None:
            msg = "this app was built for its OpenAPI document only"
            raise RuntimeError(msg)
        return wiring

    def provide_commands(request: Request[Any, Any, Any]) -> Commands:
        return Commands(wired().bus, principal_of(request).context(request_id_of(request)))

    def provide_reads(request: Request[Any, Any, Any]) -> Reads:
        user = request.scope.get("user")
        tenant_id = user.tenant_id if isinstance(user, Principal) else None
        setup = wired()
        return Reads(
            setup.store,
            tenant_id,
            lambda: position_of(request),
            setup.read_wait,
            setup.producers,
        )

    def provide_app() -> TrainingApplication:
        return wired().app

    return {
        "commands": Provide(provide_commands, sync_to_thread=False),
        "reads": Provide(provide_reads, sync_to_thread=False),
        "principal": Provide(principal_of, sync_to_thread=False),
        "app": Provide(provide_app, sync_to_thread=False),
    }
