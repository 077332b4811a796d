"""The SCIM mount: every tenant's scim2-server application under ``/scim/v2/{tenant_id}/``.

The mount is an ASGI application, not a controller: Litestar injects nothing into it, so it
takes what the app wired from the app's state, once per request, into a ``ScimCall``. It
authenticates each request itself (``call.authenticate``) and shares the API's rate-limit
buckets (ADR 0015); its errors are SCIM errors, never problem documents.
"""

from __future__ import annotations

import math
import re
from typing import Any, cast
from urllib.parse import unquote
from uuid import UUID

import structlog
from litestar import asgi
from litestar.datastructures import State
from litestar.types import Receive, Scope, Send
from scim2_models import NotFoundException, SCIMException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation

from training.core.http.reads import Reads
from training.identity.http.scim.call import ScimCall, authenticate, current_call, serving
from training.identity.http.scim.discovery import GroupMapping, scim_provider
from training.identity.http.scim.protocol import TooManyRequestsException, parse_id
from training.identity.http.scim.storage import MemberDirectory

SCIM_PATH = re.compile(r"^/scim/v2/(?P<tenant>[^/]+)(?P<rest>/.*)?$")

log = structlog.get_logger("training.scim")


class TenantScimApp(ASGIApplication):
    """scim2-server's ASGI application, served under each tenant's prefix."""

    def __init__(self, mapping: GroupMapping) -> None:
        provider = scim_provider(mapping)
        super().__init__(MemberDirectory(provider), provider)
        self.mapping = mapping

    @staticmethod
    def get_base_url(scope: dict[str, Any]) -> str:
        # The SCIM root is the tenant's prefix, /scim/v2/{tenant_id} (the root_path the mount
        # sets); scim2-server's own version would append /v2 to it.
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode()
        if not host and scope.get("server"):
            host = "{}:{}".format(*scope["server"])
        return f"{scope['scheme']}://{host}{scope.get('root_path', '')}"

    async def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        call = current_call()
        try:
            operation: Operation | None = self.service.match(request).operation
        except SCIMException:
            operation = None
        if operation is not Operation.service_provider_config:
            call.context = await authenticate(call, request.header("Authorization"))
            refusal = await self._rate_limited(call)
            if refusal is not None:
                return refusal
        return await self.handler.handle(request)

    async def _rate_limited(self, call: ScimCall) -> ScimResponse | None:
        """A 429 with Retry-After once the client has used its share, as on the rest of the
        API (the same buckets, keyed by the same principal)."""
        if call.rate_limits is None or call.context is None:
            return None
        wait = await call.rate_limits.take(str(call.context.actor))
        if wait <= 0:
            return None
        limit = call.rate_limits.limit
        error = TooManyRequestsException(
            detail=f"too many requests; at most {limit.requests} per {limit.seconds:g} s"
        )
        response = self.service.error_response(error)
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response


_APPS: dict[GroupMapping, TenantScimApp] = {}


def scim_app(mapping: GroupMapping) -> TenantScimApp:
    if mapping not in _APPS:
        _APPS[mapping] = TenantScimApp(mapping)
    return _APPS[mapping]


def _request_path(scope: Scope) -> str:
    raw = cast(bytes | None, scope.get("raw_path"))
    # Some servers (the test client) leave the query string in raw_path; ASGI says it is not.
    path = unquote(raw.split(b"?", 1)[0].decode("latin-1")) if raw else "/scim" + scope["path"]
    root = scope.get("root_path", "")
    return path.removeprefix(root) if root else path


def _call(scope: Scope, state: State, tenant_id: UUID, mapping: GroupMapping) -> ScimCall:
    """The call, with what the app wired for it (an ASGI mount is given no dependencies)."""
    wired = state.services
    return ScimCall(
        app=wired.app,
        reads=Reads(wired.store, tenant_id, lambda: None, wired.settings.read_wait),
        keys=wired.keys,
        settings=wired.settings,
        idempotency=wired.idempotency,
        bus=wired.bus,
        tenant_id=tenant_id,
        request_id=str(scope.get("state", {}).get("request_id", "")),
        mapping=mapping,
        method=str(scope.get("method")),
        rate_limits=state.get("rate_limits"),
    )


@asgi("/scim", is_mount=True, copy_scope=True)
async def scim_mount(scope: Scope, receive: Receive, send: Send) -> None:
    """SCIM 2.0 at /scim/v2/{tenant_id}/: Users, Groups and discovery (RFC 7644)."""
    mapping = GroupMapping(scope["app"].state.services.settings.scim_groups)
    app = scim_app(mapping)
    match = SCIM_PATH.match(_request_path(scope))
    tenant_id = parse_id(match["tenant"]) if match else None
    if match is None or tenant_id is None:
        error = NotFoundException(detail="SCIM is served at /scim/v2/{tenant_id}/")
        await app.send_response(app.service.error_response(error), cast(Any, send))
        return
    inner = dict(cast(dict[str, Any], scope))
    inner["path"] = match["rest"] or "/"
    inner["root_path"] = scope.get("root_path", "") + f"/scim/v2/{match['tenant']}"
    async with serving(_call(scope, scope["app"].state, tenant_id, mapping)):
        await app(inner, cast(Any, receive), cast(Any, send))
