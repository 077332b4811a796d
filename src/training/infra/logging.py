"""structlog JSON lines on stdout, with request_id, tenant_id and actor bound per request.

Standard-library loggers (uvicorn, litestar, eventsourcing) go through the same renderer,
so every line on stdout is one JSON object. Values bound by the request middleware live in
contextvars, which ``sync_to_thread`` copies into worker threads.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

# Keys that must never reach a log line, whatever a caller binds by mistake.
REDACTED_KEYS = frozenset(
    {
        "authorization",
        "client_secret",
        "secret",
        "password",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "code_verifier",
        "client_assertion",
        "private_key",
        "api_key",
        "cookie",
        "set-cookie",
    }
)


def _redact(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if key.lower() in REDACTED_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


# Last line of defence for what libraries log themselves (authlib logs issued tokens at
# debug level, httpx logs the URLs it fetches): anything shaped like a JWT or an
# Authorization credential is masked, and so are the secret parts of URLs.
_CREDENTIALS = re.compile(
    r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*|(?i:(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"
)
REDACTED = "[redacted]"
_UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
# A calendar feed's URL is its credential: /calendar/{tenant}/{feed}/{secret}.ics
_FEED_SECRET = re.compile(rf"(/calendar/{_UUID}/{_UUID}/)[^/?#.\s\"'\\]+")
# Query (or form) parameters whose values are credentials, protocol secrets or personal
# data: OAuth2 and OIDC callbacks (code, state, error_description, session_state), tokens,
# secrets, passwords, keys, signatures, nonces, assertions, verifiers, login hints, e-mail
# addresses and SCIM filters (which name people).
_SENSITIVE_NAME = (
    r"[A-Za-z0-9_.\-]*(?:code|state|token|secret|passw|pwd|key|signature|sig|nonce|"
    r"assertion|credential|session|verifier|error_description|error_uri|hint|mail|"
    r"filter|username|user_name)[A-Za-z0-9_.\-]*"
)
_SECRET_PARAMETER = re.compile(rf"(?i)((?:^|(?<=[?&;\s\"'])){_SENSITIVE_NAME}=)[^&#\s\"'\\]*")
# user:password@ in a URL.
_USERINFO = re.compile(r"(://)[^/@\s\"']+:[^/@\s\"']*@")
# A cookie header or a repr of one (session cookies are credentials).
_COOKIE = re.compile(r"(?i)((?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)[^\"'\n]+")


def redact_path(path: str) -> str:
    """A request path fit for the logs: a calendar feed's secret is masked."""
    return _FEED_SECRET.sub(rf"\1{REDACTED}", path)


def scrub(text: str) -> str:
    """Masks credentials, feed secrets and secret URL parameters anywhere in ``text``."""
    text = _CREDENTIALS.sub(REDACTED, text)
    text = _FEED_SECRET.sub(rf"\1{REDACTED}", text)
    text = _SECRET_PARAMETER.sub(rf"\1{REDACTED}", text)
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    return _COOKIE.sub(rf"\1{REDACTED}", text)


class ScrubbingFormatter(structlog.stdlib.ProcessorFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _redact,
]


def configure_logging(level: str = "info", stream: Any = None) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    structlog.configure(
        processors=[
            *SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        ScrubbingFormatter(
            foreign_pre_chain=SHARED_PROCESSORS,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Tracebacks as data, without local variables: locals can hold secrets.
                structlog.processors.ExceptionRenderer(
                    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
                ),
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    # authlib's debug lines carry whole tokens; never let them through, whatever the level.
    logging.getLogger("authlib").setLevel(max(numeric, logging.INFO))
    # uvicorn's access log repeats what our request log says, with the query string.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
