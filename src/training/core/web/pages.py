"""How a page is made and answered: the Jinja environment, the page router's protections
(CSRF, security headers) and error pages a person can act on.

Pages are server-rendered and work with plain forms and links. Every page route sits on the
router ``web_router`` builds, which adds:

* CSRF protection on every state-changing form (Litestar's double-submit cookie; a form
  carries ``_csrf_token``). The API's bearer-token routes are not on this router.
* ``Content-Security-Policy`` with no inline script or style, ``X-Frame-Options: DENY``,
  ``Referrer-Policy`` and ``X-Content-Type-Options`` on every answer.
* the request's language (``i18n``), and HTML error pages in it: a sign-in needed redirects
  to the sign-in page with a safe ``next``, and every other error is a page saying what
  happened and what to do, never a stack trace (the API's error table decides the status).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response, Router, post
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.params import Body
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from training.core.http.problems import EXCEPTION_HANDLERS
from training.core.web import i18n
from training.core.web.i18n import N_

CORE_TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
CSRF_COOKIE = "training_csrf"

# No inline script or style anywhere: every script and style sheet is a file the app serves.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Cache-Control", value="no-store"),
)


def template_config(directories: Sequence[Path]) -> TemplateConfig[JinjaTemplateEngine]:
    """One environment for every page: the layout's directory first, then each context's."""
    environment = Environment(
        loader=FileSystemLoader([str(CORE_TEMPLATES), *map(str, directories)]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.translate, i18n.translate_plural, newstyle=True
    )
    environment.globals.update(
        language=i18n.current,
        languages=i18n.LANGUAGE_NAMES,
        format_date=i18n.localised_date,
        format_datetime=i18n.localised_datetime,
        format_number=i18n.localised_number,
        format_percent=i18n.localised_percent,
    )
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))


def page(name: str, status_code: int = 200, **context: Any) -> Template:
    return Template(template_name=name, context=context, status_code=status_code)


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path of this site (``/…``, not ``//host`` or ``/\\host``, no
    scheme or host), else ``default``: a sign-in never sends a person to another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return default
    return target


def sign_in_location(request: Request[Any, Any, Any]) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/sign-in?next={quote(safe_next(here), safe='/')}"


async def _language_of_request(request: Request[Any, Any, Any]) -> None:
    # A coroutine, so it runs in the request's own context (which the page then renders
    # in), not in a worker thread's copy of it.
    _set_language(request)


def _set_language(request: Request[Any, Any, Any]) -> None:
    i18n.use(
        i18n.negotiate(
            request.cookies.get(i18n.LANGUAGE_COOKIE), request.headers.get("accept-language")
        )
    )


def _problem_of(request: Request[Any, Any, Any], exc: Exception) -> tuple[int, str]:
    """The status and detail the API would answer for ``exc`` (one table for both)."""
    handler = next(
        (EXCEPTION_HANDLERS[kind] for kind in type(exc).__mro__ if kind in EXCEPTION_HANDLERS),
        EXCEPTION_HANDLERS[Exception],
    )
    answer: Response[Any] = handler(request, exc)
    body = answer.content
    detail = ""
    if isinstance(body, bytes | str):
        try:
            detail = str(json.loads(body).get("detail", ""))
        except (ValueError, AttributeError):
            detail = ""
    return answer.status_code or 500, detail


# What a person can do about each kind of error (the detail says what happened).
ADVICE: Mapping[int, str] = {
    400: N_("Check what you entered and try again."),
    403: N_("Your role does not allow this. Ask your HR team if you need it."),
    404: N_("The page or record does not exist, or is not in your company's account."),
    409: N_("Someone changed this at the same time. Reload the page and try again."),
    412: N_("Someone changed this at the same time. Reload the page and try again."),
    422: N_("Check what you entered and try again."),
    429: N_("Too many requests. Wait a moment, then try again."),
    503: N_("The service is busy. Wait a moment, then reload the page."),
}


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    _set_language(request)
    if isinstance(exc, NotAuthorizedException):
        return Redirect(sign_in_location(request), status_code=303)
    status, detail = _problem_of(request, exc)
    advice = ADVICE.get(status, N_("Try again in a moment. If it keeps happening, tell support."))
    if isinstance(exc, HTTPException) and exc.status_code == 403 and "CSRF" in str(exc.detail):
        detail, advice = "", N_("The form had expired. Go back, reload the page and send it again.")
    return page(
        "error.html",
        status_code=status,
        status=status,
        detail=detail if status < 500 else "",
        advice=advice,
        request_id=request.scope.get("state", {}).get("request_id", ""),
    )


def web_router(
    route_handlers: Iterable[ControllerRouterHandler],
    csrf_secret: str,
    *,
    secure_cookies: bool,
    dependencies: Mapping[str, Any] | None = None,
) -> Router:
    csrf = CSRFConfig(
        secret=csrf_secret,
        cookie_name=CSRF_COOKIE,
        cookie_secure=secure_cookies,
        cookie_httponly=True,
        cookie_samesite="lax",
    )
    # Every kind the API answers with a problem gets a page instead (the most specific kind
    # wins, so each must be named here, not only Exception).
    handlers: dict[Any, Callable[..., Response[Any]]] = dict.fromkeys(
        EXCEPTION_HANDLERS, error_page
    )
    return Router(
        path="/",
        route_handlers=list(route_handlers),
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        before_request=_language_of_request,
        response_headers=list(SECURITY_HEADERS),
        exception_handlers=handlers,
        dependencies=dict(dependencies or {}),
        include_in_schema=False,
    )


def static_router() -> Router:
    return create_static_files_router(
        path="/static",
        directories=[STATIC],
        include_in_schema=False,
        opt={"exclude_from_auth": True},
        cache_control=CacheControlHeader(max_age=3600, public=True),
    )


@dataclass
class LanguageChoice:
    language: str
    next: str = "/"


@post("/language", opt={"exclude_from_auth": True}, status_code=303)
async def choose_language(
    data: Annotated[LanguageChoice, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    """Keeps the visitor's language for a year (until they choose again)."""
    response: Response[Any] = Redirect(safe_next(data.next), status_code=303)
    if data.language in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANGUAGE_COOKIE,
            data.language,
            max_age=365 * 24 * 3600,
            path="/",
            httponly=True,
            samesite="lax",
        )
    return response


# The API's paths: their errors are problems whatever the client accepts.
API_PREFIXES = (
    "/v1/",
    "/oauth2/",
    "/scim/",
    "/auth/",
    "/.well-known/",
    "/schema",
    "/calendar/",
    "/healthz",
    "/readyz",
)


def wants_page(request: Request[Any, Any, Any]) -> bool:
    """A browser's navigation outside the API: it asks for HTML before anything else."""
    if request.url.path.startswith(API_PREFIXES):
        return False
    return request.accept.best_match(["application/json", "text/html"]) == "text/html"


def negotiated(handlers: Mapping[Any, Callable[..., Response[Any]]]) -> dict[Any, Any]:
    """The app's error handlers, answering a page instead of a problem to a browser outside
    the API (an unknown page, say, which no router's handlers see)."""

    def either(api: Callable[..., Response[Any]]) -> Callable[..., Response[Any]]:
        def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
            return error_page(request, exc) if wants_page(request) else api(request, exc)

        return handle

    return {kind: either(handler) for kind, handler in handlers.items()}
