"""Request bodies that cannot be read are the client's mistake: a 400 naming the body.

Litestar decodes a JSON body with msgspec and turns ``msgspec.DecodeError`` into a
``ClientException``, but two other failures of the same decoding escape it and ended as 500s:
bytes that are not UTF-8 inside a string raise ``UnicodeDecodeError``, and nesting deeper than
the interpreter's recursion limit raises ``RecursionError``. Every operation with a JSON body
reads it through ``Request.json``, so the app's request class decodes it here, once, and
answers each failure as a validation problem whose field is ``body``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException, ValidationException

BODY = "body"


def unreadable_body(message: str) -> ValidationException:
    return ValidationException(
        detail=f"the body cannot be read: {message}",
        extra=[{"key": BODY, "message": message, "source": BODY}],
    )


class TrainingRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError:
            raise unreadable_body("the body is not UTF-8") from None
        except RecursionError:
            # msgspec stops at the recursion limit; no body of this API nests a tenth as deep.
            raise unreadable_body("the JSON nests too deeply") from None
        except SerializationException as error:
            raise unreadable_body(_plain(str(error))) from None


def _plain(message: str) -> str:
    """msgspec's message for malformed JSON, e.g. "JSON is malformed: truncated (byte 9)"."""
    return message.strip() or "the body is not JSON"
