"""structlog JSON lines on stdout, with request_id, tenant_id and actor bound per request.

Standard-library loggers (uvicorn, litestar, eventsourcing) go through the same renderer,
so every line on stdout is one JSON object. Values bound by the request middleware live in
contextvars, which ``sync_to_thread`` copies into worker threads.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from training.core.redaction import scrub

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
