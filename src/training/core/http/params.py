"""The parameter types every context's controllers share, each declared once.

Text is stored in PostgreSQL, which refuses NUL characters, so every free text refuses them at
the edge (``Text``). Versions and positions are PostgreSQL bigints written in ASCII digits.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.params import HeaderParameter, QueryParameter

from training.core.pagination import MAX_LIMIT

NO_NUL = r"^[^\x00]*$"


def text(*, min_length: int = 1, max_length: int) -> msgspec.Meta:
    """The constraints of a free text: its length, and no NUL character."""
    return msgspec.Meta(min_length=min_length, max_length=max_length, pattern=NO_NUL)


Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[
    str | None,
    QueryParameter(name="cursor", max_length=512, description="next_cursor of the previous page"),
]

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

POSITION_HEADER = "Training-Position"

# ``str.isdigit()`` is not the test: it accepts "²", which ``int()`` refuses, and ``int()`` of a
# string longer than 4,300 digits raises too.
_NUMBER = re.compile(r"[0-9]{1,19}")
MAX_NUMBER = 2**63 - 1


def _number(text: str) -> int | None:
    """A non-negative bigint written in ASCII digits, or None."""
    if not _NUMBER.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_NUMBER else None


def etag(version: int) -> str:
    return f'"{version}"'


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
