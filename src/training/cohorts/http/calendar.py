"""Calendar feeds: a secret iCalendar (RFC 5545) URL for a cohort's sessions or a person's.

Rotating a feed returns its URL once; only a hash of the secret in it is stored, and the
previous URL stops working. Calendar applications fetch the URL without a bearer token, so
the public route checks the feed's tenant and secret itself and answers the same 404 for
every failure, never revealing which part was wrong. The document is written by hand: CRLF
line endings, lines folded at 75 octets, TEXT values escaped, times in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.params import FromPath

from training.cohorts.domain.calendar import FeedKind
from training.cohorts.handlers.calendar import IssuedFeed, RotateCalendarFeed, feed_in_force
from training.cohorts.http.common import WRITE, own_member_id
from training.cohorts.views import cohorts as cohort_queries
from training.cohorts.views import sessions as session_queries
from training.cohorts.views.projection import COHORTS
from training.cohorts.views.sessions import SessionRow
from training.core.application import TrainingApplication
from training.core.errors import NotFound
from training.core.http.commands import Commands, answer
from training.core.http.principal import Principal, requires_tenant
from training.core.http.reads import Reads
from training.core.outcome import Outcome
from training.infra.settings import Settings

MEDIA_TYPE = "text/calendar"  # Litestar adds "; charset=utf-8"
PRODUCT_ID = "-//Training Service//Cohort calendar//EN"
LINE_OCTETS = 75
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
NOT_FOUND = "calendar feed not found"
IDEMPOTENT_RETRY = (
    "With an `Idempotency-Key`, a retry within the replay window (24 hours, "
    "`TRAINING_IDEMPOTENCY_TTL`) answers the same URL without rotating again: the stored "
    "response is encrypted with the service's key (AES-GCM, bound to the caller and the key) "
    "and deleted when the window ends."
)


class FeedUrl(msgspec.Struct):
    url: str


# -- iCalendar -------------------------------------------------------------------------------


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newlines escaped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = CONTROL.sub(" ", value)
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """Splits a content line into lines of at most 75 octets (RFC 5545 3.1), never inside a
    UTF-8 character; continuation lines start with one space."""
    if len(line.encode()) <= LINE_OCTETS:
        return line
    parts: list[str] = []
    current: list[str] = []
    size = 0
    limit = LINE_OCTETS
    for char in line:
        octets = len(char.encode())
        if size + octets > limit:
            parts.append("".join(current))
            current, size, limit = [], 0, LINE_OCTETS - 1  # the leading space takes one
        current.append(char)
        size += octets
    parts.append("".join(current))
    return "\r\n ".join(parts)


def utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def session_event(session: SessionRow, stamp: str) -> list[str]:
    ends_at = session.starts_at + timedelta(minutes=session.duration_minutes)
    status = "CANCELLED" if session.cohort_status == "cancelled" else "CONFIRMED"
    description = f"Cohort: {session.cohort_name}\nJoin: {session.join_url}"
    return [
        "BEGIN:VEVENT",
        f"UID:{session.session_id}@training",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{utc_stamp(session.starts_at)}",
        f"DTEND:{utc_stamp(ends_at)}",
        f"SUMMARY:{escape_text(session.title)}",
        f"DESCRIPTION:{escape_text(description)}",
        f"LOCATION:{escape_text(session.join_url)}",
        f"URL:{session.join_url}",
        f"STATUS:{status}",
        "END:VEVENT",
    ]


def icalendar(name: str, sessions: Iterable[SessionRow], now: datetime) -> bytes:
    stamp = utc_stamp(now)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODUCT_ID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
    ]
    for session in sessions:
        lines.extend(session_event(session, stamp))
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines).encode()


# -- the feed --------------------------------------------------------------------------------


def feed_url(settings: Settings, principal: Principal, issued: IssuedFeed) -> str:
    return f"{settings.issuer}/calendar/{principal.tenant_id}/{issued.feed_id}/{issued.token}.ics"


def issued_url(
    outcome: Outcome[IssuedFeed], settings: Settings, principal: Principal
) -> Response[FeedUrl]:
    """The new URL, shown once: no cache keeps it."""
    response = answer(outcome, FeedUrl(feed_url(settings, principal, outcome.result)))
    response.headers["Cache-Control"] = "no-store"
    return response


class CalendarController(Controller):
    path = "/v1"
    tags = ["Cohorts"]
    security = [{"bearer": []}]

    @post(
        "/cohorts/{cohort_id:uuid}/calendar",
        guards=[WRITE],
        operation_id="rotateCohortCalendar",
        summary="Issue (or rotate) the cohort's calendar URL; the previous URL stops working",
        description="The URL carries a secret and is returned only here, once. Calendar "
        "applications fetch it without a token (`text/calendar`, RFC 5545). " + IDEMPOTENT_RETRY,
        status_code=200,
    )
    async def rotate_cohort(
        self,
        commands: NamedDependency[Commands],
        settings: NamedDependency[Settings],
        principal: NamedDependency[Principal],
        cohort_id: FromPath[UUID],
    ) -> Response[FeedUrl]:
        outcome = await commands.run(RotateCalendarFeed(FeedKind.COHORT, cohort_id))
        return issued_url(outcome, settings, principal)

    @post(
        "/me/calendar",
        guards=[requires_tenant],
        operation_id="rotateMyCalendar",
        summary="Issue (or rotate) your calendar URL: sessions of the cohorts where you hold "
        "a seat (a member token)",
        description="The URL carries a secret and is returned only here, once; the previous "
        "URL stops working. " + IDEMPOTENT_RETRY,
        status_code=200,
    )
    async def rotate_mine(
        self,
        commands: NamedDependency[Commands],
        settings: NamedDependency[Settings],
        principal: NamedDependency[Principal],
    ) -> Response[FeedUrl]:
        member_id = own_member_id(principal)
        outcome = await commands.run(RotateCalendarFeed(FeedKind.MEMBER, member_id))
        return issued_url(outcome, settings, principal)


@get(
    "/calendar/{tenant_id:uuid}/{feed_id:uuid}/{filename:str}",
    include_in_schema=False,  # a secret URL handed out by the rotate endpoints, no bearer
    operation_id="calendarFeed",
)
async def calendar_feed(
    app: NamedDependency[TrainingApplication],
    reads: NamedDependency[Reads],
    tenant_id: FromPath[UUID],
    feed_id: FromPath[UUID],
    filename: FromPath[str],
) -> Response[bytes]:
    token = filename.removesuffix(".ics")
    if token == filename or not token or len(token) > 256:
        raise NotFound(NOT_FOUND)
    feed = await sync_to_thread(feed_in_force, app, tenant_id, feed_id, token)
    if feed is None:
        raise NotFound(NOT_FOUND)
    # Calendar apps send no position; tests do. No principal here: the tenant is the URL's.
    await reads.after([COHORTS.info], tenant_id=tenant_id)
    async with reads.session(tenant_id=tenant_id) as conn:
        if feed.kind is FeedKind.COHORT:
            cohort = await cohort_queries.get_cohort(conn, feed.subject_id)
            name = cohort.name if cohort else "Cohort"
            sessions = await session_queries.sessions_of(conn, feed.subject_id)
        else:
            name = "My training sessions"
            sessions = (await session_queries.sessions_of_member(conn, feed.subject_id)).items
    body = icalendar(name, sessions, datetime.now(UTC))
    return Response(
        body,
        media_type=MEDIA_TYPE,
        headers={
            "Cache-Control": "private, no-cache",
            "Content-Disposition": 'inline; filename="training.ics"',
        },
    )
