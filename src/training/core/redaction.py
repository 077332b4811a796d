"""Secrets never reach a log line: the scrubbers every log line and request path go through."""

from __future__ import annotations

import re

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
