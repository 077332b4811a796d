"""The Litestar application: routes, authentication, middleware, errors and OpenAPI."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.concurrency import sync_to_thread
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from training import __version__, health
from training.assessments import http as assessments
from training.assessments import web as assessments_web
from training.audit import http as audit
from training.audit import web as audit_web
from training.bootstrap import Services
from training.cohorts import http as cohorts
from training.cohorts import web as cohorts_web
from training.core.held_events import DegradedViews
from training.core.http.bodies import TrainingRequest
from training.core.http.dependencies import Wiring, controller_dependencies
from training.core.http.middleware import (
    IdempotencyMiddleware,
    RequestContextMiddleware,
    log_response,
)
from training.core.http.openapi import CompletedJsonRenderPlugin
from training.core.http.params import check_position
from training.core.http.principal import PUBLIC_PATHS
from training.core.http.problems import EXCEPTION_HANDLERS
from training.core.http.ratelimit import (
    AddressLimitMiddleware,
    RateLimit,
    RateLimitMiddleware,
    SharedBuckets,
    parse_networks,
)
from training.core.web.pages import (
    choose_language,
    negotiated,
    static_router,
    template_config,
    web_router,
)
from training.curricula import http as curricula
from training.demo import web as demo_web
from training.identity import web as identity_web
from training.identity.authentication import BearerAuthenticationMiddleware
from training.identity.http import oauth, scim, sso
from training.infra.secretbox import SecretBox
from training.infra.settings import Settings
from training.people import http as people
from training.people import web as people_web
from training.planning import http as tracks
from training.planning import web as planning_web
from training.planning.views.tracks import PLANNING
from training.reports import http as reports
from training.reports import web as reports_web
from training.reviews import http as reviews
from training.skills import http as skills
from training.tenancy import http as tenancy

ROUTES: list[Any] = [
    *health.ROUTES,
    *reviews.ROUTES,
    *tracks.ROUTES,
    *audit.ROUTES,
    *oauth.ROUTES,
    *tenancy.ROUTES,
    *people.ROUTES,
    *skills.ROUTES,
    *curricula.ROUTES,
    *cohorts.ROUTES,
    *assessments.ROUTES,
    *sso.ROUTES,
    *scim.ROUTES,
    *reports.ROUTES,
]

OPENAPI_DESCRIPTION = """\
The training service's API. Every error is `application/problem+json` (RFC 9457).

* Authenticate with `Authorization: Bearer <token>` from `POST /oauth2/token`.
* Commands answer `ETag` (the aggregate version) and `Training-Position`; send
  `If-Match` to act only on the version you read, and `Training-Position` on a query to
  read your own writes (a view still behind after a short wait answers 503 with
  `Retry-After`).
* `Idempotency-Key` on a POST makes a retry return the first response without acting again.
* Lists are cursor-paginated: pass `next_cursor` back as `cursor`.
"""


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Training Service API",
        version=__version__,
        description=OPENAPI_DESCRIPTION,
        path="/schema",
        render_plugins=[CompletedJsonRenderPlugin()],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
            }
        ),
    )


def _context_dependencies(services: Services | None) -> dict[str, Provide]:
    """What some contexts' controllers need besides core's: the signing keys (identity), the
    import queue (people), the idempotency store (erasure forgets stored responses), the
    command bus itself (the sign-in callback, which has no caller, provisions as the system)."""

    def wired() -> Services:
        if services is None:
            msg = "this app was built for its OpenAPI document only"
            raise RuntimeError(msg)
        return services

    return {
        "services": Provide(wired, sync_to_thread=False),
        "key_ring": Provide(lambda: wired().keys, sync_to_thread=False),
        "token_server": Provide(lambda: wired().token_server, sync_to_thread=False),
        "command_bus": Provide(lambda: wired().bus, sync_to_thread=False),
        "import_jobs": Provide(lambda: wired().imports, sync_to_thread=False),
        "import_runner": Provide(lambda: wired().import_runner, sync_to_thread=False),
        "idempotency": Provide(lambda: wired().idempotency, sync_to_thread=False),
    }


# The contexts' pages: each web module has its ROUTES and its templates beside it.
WEB_MODULES: tuple[Any, ...] = (
    identity_web,
    planning_web,
    assessments_web,
    people_web,
    cohorts_web,
    reports_web,
    audit_web,
)
PAGE_TEMPLATES = [Path(module.__file__).parent / "templates" for module in (*WEB_MODULES, demo_web)]


def web_routes(settings: Settings) -> list[Any]:
    """The pages; the demo's sign-in only on a development server on loopback."""
    routes: list[Any] = [choose_language]
    for module in WEB_MODULES:
        routes += module.ROUTES
    if demo_web.available(settings):
        routes += demo_web.ROUTES
    return routes


def _csrf_secret(settings: Settings, services: Services | None) -> str:
    if services is None:  # an app built for its OpenAPI document serves no form
        return secrets.token_hex(32)
    return SecretBox.from_settings(settings).derive("csrf").hex()


def create_app(services: Services | None, *, debug: bool = False) -> Litestar:
    """The app; ``services=None`` builds it for its OpenAPI document only (no lifespan)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        assert services is not None
        await services.store.open()
        await services.rate_limits.open()
        # What /readyz reads of the quarantine, as the worker role (projections/quarantine.py).
        app.state.degraded_views = DegradedViews(services.database.worker_url)
        await app.state.degraded_views.open()
        await sync_to_thread(services.imports.open)
        if services.supervisor is not None:
            services.supervisor.start()
        services.import_runner.start()
        try:
            yield
        finally:
            services.import_runner.stop()
            if services.supervisor is not None:
                services.supervisor.stop()
            services.imports.close()
            await app.state.degraded_views.close()
            await services.rate_limits.close()
            await services.store.close()

    settings = services.settings if services is not None else Settings()
    # In the database, shared with the other processes (ADR 0035); the principal's buckets
    # also with the SCIM mount, which authenticates (and so is limited) on its own.
    shared = services.rate_limits if services is not None else None
    buckets = SharedBuckets("principal", RateLimit.parse(settings.rate_limit), shared)
    address_limits = AddressLimitMiddleware(
        anonymous=SharedBuckets(
            "anonymous", RateLimit.parse(settings.rate_limit_anonymous), shared
        ),
        token=SharedBuckets("token", RateLimit.parse(settings.rate_limit_token), shared),
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )
    wiring = (
        Wiring(
            app=services.app,
            bus=services.bus,
            store=services.store,
            read_wait=settings.read_wait,
            producers={PLANNING.name: PLANNING.info},
        )
        if services is not None
        else None
    )
    pages = web_router(
        web_routes(settings),
        _csrf_secret(settings, services),
        secure_cookies=not settings.is_development,
    )
    app = Litestar(
        route_handlers=[*ROUTES, pages, static_router()],
        template_config=template_config(PAGE_TEMPLATES),
        dependencies={
            **controller_dependencies(wiring),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            **_context_dependencies(services),
        },
        middleware=[
            RequestContextMiddleware(),
            # Before authentication: an address that keeps failing is refused unread.
            address_limits,
            DefineMiddleware(BearerAuthenticationMiddleware, exclude=list(PUBLIC_PATHS)),
            RateLimitMiddleware(buckets),
            IdempotencyMiddleware(
                services.idempotency if services is not None else None,
                die_after_commit=settings.fault_kill_after_commit,
            ),
        ],
        exception_handlers=negotiated(EXCEPTION_HANDLERS),
        # Bodies and headers that cannot be parsed answer 400 problems, never 500s.
        request_class=TrainingRequest,
        before_request=check_position,
        before_send=[log_response],
        openapi_config=openapi_config(),
        lifespan=[lifespan] if services is not None else [],
        cors_config=CORSConfig(allow_origins=[], allow_credentials=False),
        # Logging is configured once by the process (infra.logging), as JSON lines.
        logging_config=None,
        debug=debug,
    )
    app.state.services = services
    app.state.rate_limits = buckets
    app.state.address_limits = address_limits
    return app
