"""A cohort's sessions, attendance and progress in the HR manager's browser: schedule a
session (its time in the cohort's time zone), import a session's attendance from the
conferencing tool's CSV export or by ticking the people who attended, each session's
attendance rate, interaction index and content satisfaction, and each enrolled person's
progress with the at-risk flag.

The pages send the same commands and read the same views as ``scheduleSession``,
``recordAttendance``, ``listSessions`` and ``cohortProgress``, with the same scopes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any, get_type_hints
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from training.cohorts.domain.cohorts import Attendance
from training.cohorts.handlers.cohorts import RecordAttendance, ScheduleSession
from training.cohorts.http.cohorts import expected_percent, progress_items
from training.cohorts.http.common import READ, WRITE
from training.cohorts.http.sessions import MAX_ATTENDANCE, SessionIn, SessionOut, check_instant
from training.cohorts.views import cohorts as queries
from training.cohorts.views import sessions as session_queries
from training.cohorts.views.projection import COHORTS
from training.cohorts.web.common import SECTION, cohort_of, form_of
from training.core.access import Scope
from training.core.errors import DomainError, NotFound, StaleVersion
from training.core.http.commands import Commands
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.web.i18n import N_, gettext
from training.core.web.pages import Position, after_position, page, shown_at
from training.people import views as people_queries
from training.people.views import MEMBERS

SHOWN = 200
SESSION_FIELDS = ("title", "day", "time", "duration_minutes", "join_url")
SESSION_TYPES = get_type_hints(SessionIn, include_extras=True)
FIELD_ADVICE: dict[str, str] = {
    "title": N_("Enter a title of at most 200 characters."),
    "day": N_("Enter a date such as 2030-03-04."),
    "time": N_("Enter a time such as 09:00."),
    "duration_minutes": N_("Enter a length from 5 to 600 minutes."),
    "join_url": N_("Enter the https link of the session in the conferencing tool."),
}
EMPTY_SESSION = {"title": "", "day": "", "time": "09:00", "duration_minutes": "60", "join_url": ""}
COUNTS = ("comments", "questions", "reactions")
BAD_COUNT = N_("Enter whole numbers of comments, questions and reactions.")
BAD_FILE = N_(
    "Row %(row)s of the file could not be read: each row needs member_id (or external_id), "
    "joined_at and left_at with an offset, e.g. 2030-03-04T09:00:00+01:00."
)
NOBODY = N_("Tick the people who attended, or upload the conferencing tool's CSV export.")


def _timestamp(day: str, at: str, zone: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(at), ZoneInfo(zone))


async def _sessions_page(
    reads: Reads,
    principal: Principal,
    cohort_id: UUID,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    cohort = await cohort_of(reads, cohort_id)
    async with reads.session() as conn:
        found = await session_queries.list_sessions(conn, cohort_id, limit=SHOWN, cursor=None)
    return page(
        "cohorts/sessions.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        cohort=cohort,
        sessions=[SessionOut.of(row) for row in found.items],
        form=dict(form or EMPTY_SESSION),
        errors=dict(errors or {}),
        may_write=principal.has_scope(Scope.MEMBERS_WRITE),
    )


@get("/cohorts/{cohort_id:uuid}/sessions", guards=[READ])
async def sessions(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
    at: Position = None,
) -> Template:
    await after_position(reads, [COHORTS.info], at)
    return await _sessions_page(reads, principal, cohort_id)


@post("/cohorts/{cohort_id:uuid}/sessions", guards=[WRITE], status_code=303)
async def schedule_session(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
) -> Response[Any]:
    """``ScheduleSession`` as ``scheduleSession`` sends it; the time is the cohort's."""
    form = form_of(await request.form(), SESSION_FIELDS)
    cohort = await cohort_of(reads, cohort_id)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name in ("title", "duration_minutes", "join_url"):
        try:
            values[name] = msgspec.convert(form[name], SESSION_TYPES[name], strict=False)
        except msgspec.ValidationError:
            errors[name] = gettext(FIELD_ADVICE[name])
    starts_at = None
    try:
        starts_at = check_instant(_timestamp(form["day"], "00:00", cohort.timezone), "day")
    except (ValueError, DomainError):
        errors["day"] = gettext(FIELD_ADVICE["day"])
    try:
        if starts_at is not None:
            starts_at = _timestamp(form["day"], form["time"], cohort.timezone)
    except ValueError:
        errors["time"] = gettext(FIELD_ADVICE["time"])
    if not errors and starts_at is not None:
        try:
            outcome = await commands.run(
                ScheduleSession(
                    cohort_id,
                    values["title"],
                    starts_at,
                    values["duration_minutes"],
                    values["join_url"],
                )
            )
        except (NotFound, StaleVersion):
            raise
        except DomainError as error:
            errors[error.field if error.field in SESSION_FIELDS else ""] = error.detail
        else:
            location = shown_at(f"/cohorts/{cohort_id}/sessions", outcome)
            return Redirect(location, status_code=303)
    return await _sessions_page(
        reads, principal, cohort_id, form=form, errors=errors, status_code=422
    )


async def _session(reads: Reads, cohort_id: UUID, session_id: UUID) -> SessionOut:
    async with reads.session() as conn:
        rows = await session_queries.sessions_of(conn, cohort_id)
    for row in rows:
        if row.session_id == session_id:
            return SessionOut.of(row)
    raise NotFound(f"session {session_id} not found")


async def _attendance_page(
    reads: Reads,
    principal: Principal,
    cohort_id: UUID,
    session_id: UUID,
    *,
    problem: str = "",
    status_code: int = 200,
) -> Template:
    cohort = await cohort_of(reads, cohort_id)
    session = await _session(reads, cohort_id, session_id)
    async with reads.session() as conn:
        roster = await queries.list_enrolments(
            conn, cohort_id, limit=MAX_ATTENDANCE, cursor=None, status="enrolled"
        )
        names = await people_queries.names_of(conn, [r.member_id for r in roster.items])
    return page(
        "cohorts/attendance.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        cohort=cohort,
        session=session,
        roster=roster.items,
        names=names,
        problem=problem,
    )


@get("/cohorts/{cohort_id:uuid}/sessions/{session_id:uuid}/attendance", guards=[WRITE])
async def attendance_form(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
    session_id: FromPath[UUID],
) -> Template:
    await after_position(reads, [COHORTS.info, MEMBERS.info], None)
    return await _attendance_page(reads, principal, cohort_id, session_id)


class Unreadable(Exception):
    def __init__(self, row: int) -> None:
        super().__init__(row)
        self.row = row


def _from_csv(content: bytes, by_external_id: Mapping[str, UUID]) -> list[Attendance]:
    """The conferencing tool's export: ``member_id`` (or ``external_id``), ``joined_at``,
    ``left_at`` per row (RFC 3339 with an offset)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unreadable(1) from None
    rows: list[Attendance] = []
    for number, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        if number > MAX_ATTENDANCE + 1:
            raise Unreadable(number)
        try:
            raw_id = (row.get("member_id") or "").strip()
            member_id = (
                UUID(raw_id) if raw_id else by_external_id[(row.get("external_id") or "").strip()]
            )
            joined = datetime.fromisoformat((row.get("joined_at") or "").strip())
            left = datetime.fromisoformat((row.get("left_at") or "").strip())
            if joined.tzinfo is None or left.tzinfo is None:
                raise ValueError("no offset")
            rows.append(
                Attendance(
                    member_id,
                    check_instant(joined, "joined_at"),
                    check_instant(left, "left_at"),
                )
            )
        except (KeyError, ValueError, DomainError):
            raise Unreadable(number) from None
    return rows


@post(
    "/cohorts/{cohort_id:uuid}/sessions/{session_id:uuid}/attendance",
    guards=[WRITE],
    status_code=303,
)
async def record_attendance(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
    session_id: FromPath[UUID],
) -> Response[Any]:
    """``RecordAttendance`` as ``recordAttendance`` sends it: from a CSV export, or the
    people ticked as present for the whole session."""
    sent = await request.form()
    session = await _session(reads, cohort_id, session_id)

    async def refused(message: str) -> Template:
        return await _attendance_page(
            reads, principal, cohort_id, session_id, problem=message, status_code=422
        )

    try:
        counts = [int(str(sent.get(name, "0") or "0").strip()[:10]) for name in COUNTS]
        if any(not 0 <= count <= 1_000_000_000 for count in counts):
            raise ValueError(counts)
    except ValueError:
        return await refused(gettext(BAD_COUNT))
    file = sent.get("file")
    content = await file.read() if isinstance(file, UploadFile) else b""
    if content.strip():
        async with reads.session() as conn:
            roster = await queries.list_enrolments(
                conn, cohort_id, limit=MAX_ATTENDANCE, cursor=None
            )
        known = {r.external_id: r.member_id for r in roster.items if r.external_id}
        try:
            attendance = _from_csv(content, known)
        except Unreadable as error:
            return await refused(gettext(BAD_FILE, row=error.row))
    else:
        attendance = []
        for raw in sent.getall("attended", [])[:MAX_ATTENDANCE]:
            try:
                attendance.append(Attendance(UUID(str(raw)), session.starts_at, session.ends_at))
            except ValueError:
                continue
    if not attendance:
        return await refused(gettext(NOBODY))
    try:
        outcome = await commands.run(
            RecordAttendance(cohort_id, session_id, tuple(attendance), *counts)
        )
    except (NotFound, StaleVersion):
        raise
    except DomainError as error:
        return await refused(error.detail)
    location = shown_at(f"/cohorts/{cohort_id}/sessions", outcome)
    return Redirect(f"{location}#session-{session_id}", status_code=303)


@get("/cohorts/{cohort_id:uuid}/progress", guards=[READ])
async def progress(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
) -> Template:
    """``cohortProgress``: each enrolled person against the calendar, the ones at risk first."""
    await reads.after([COHORTS.info, MEMBERS.info])
    cohort = await cohort_of(reads, cohort_id)
    async with reads.session() as conn:
        policy = await queries.training_policy(conn)
        found = await queries.progress_of(conn, cohort_id, limit=MAX_ATTENDANCE, cursor=None)
        names = await people_queries.names_of(conn, [row.member_id for row in found.items])
    today = datetime.now(ZoneInfo(cohort.timezone)).date()
    expected = expected_percent(cohort.starts_on, cohort.ends_on, today)
    people = progress_items(cohort, policy, found.items, expected)
    people.sort(key=lambda p: -p.behind)
    return page(
        "cohorts/progress.html",
        viewer=principal,
        section=SECTION,
        cohort=cohort,
        people=people,
        names=names,
        as_of=today,
        expected=expected,
        threshold=policy.at_risk_threshold,
        at_risk=sum(1 for p in people if p.at_risk),
    )


ROUTES: list[Any] = [sessions, schedule_session, attendance_form, record_attendance, progress]
