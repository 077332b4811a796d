"""The engineer's cohorts and sessions in the browser: the cohorts they are in or wait for
(with their place on the waitlist), the coming sessions in each cohort's time zone with the
join link, a rating form for each past session they attended, and their calendar link.

The pages read the same views and send the same commands as ``/v1/me/cohorts``,
``/v1/me/sessions``, the session feedback endpoint and ``/v1/me/calendar``, under the
signed-in person's session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from training.cohorts.domain.calendar import FeedKind
from training.cohorts.handlers.calendar import IssuedFeed, RotateCalendarFeed
from training.cohorts.handlers.cohorts import ChangeTrainingPolicy, GiveFeedback
from training.cohorts.http.calendar import feed_url
from training.cohorts.http.cohorts import PolicyIn
from training.cohorts.http.common import READ, WRITE, own_member_id
from training.cohorts.views import cohorts as cohort_queries
from training.cohorts.views import sessions as session_queries
from training.cohorts.views.projection import COHORTS
from training.core.errors import RuleViolated
from training.core.http.commands import Commands
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.web.i18n import N_
from training.core.web.pages import page
from training.infra.settings import Settings

# The page lists this many cohorts and sessions: far more than a person has at once.
SHOWN = 100

PLACEMENT_LABELS: dict[str, str] = {
    "enrolled": N_("Enrolled"),
    "waitlisted": N_("On the waitlist"),
}
COHORT_STATUS_LABELS: dict[str, str] = {
    "planned": N_("Planned"),
    "running": N_("Running"),
    "completed": N_("Completed"),
    "cancelled": N_("Cancelled"),
}
RATINGS = (
    ("content", N_("Content")),
    ("delivery", N_("Delivery")),
    ("interaction", N_("Interaction")),
)


@dataclass(frozen=True)
class ShownSession:
    session: session_queries.SessionRow
    ends_at: datetime
    timezone: str
    attended: bool
    feedback: session_queries.MyFeedback | None


async def _my_page(
    reads: Reads, principal: Principal, *, calendar_url: str | None = None
) -> Template:
    member_id = own_member_id(principal)
    await reads.after([COHORTS.info])
    async with reads.session() as conn:
        cohorts = await cohort_queries.cohorts_of_member(conn, member_id, limit=SHOWN, cursor=None)
        sessions = await session_queries.sessions_of_member(conn, member_id, limit=SHOWN * 10)
        ids = [s.session_id for s in sessions.items]
        attended = await session_queries.sessions_attended_by(conn, member_id, ids)
        feedback = await session_queries.feedback_of_member(conn, member_id, ids)
    zones = {c.cohort_id: c.timezone for c in cohorts.items}
    now = datetime.now(UTC)
    upcoming: list[ShownSession] = []
    past: list[ShownSession] = []
    for row in sessions.items:
        ends_at = row.starts_at + timedelta(minutes=row.duration_minutes)
        shown = ShownSession(
            row,
            ends_at,
            zones.get(row.cohort_id, "UTC"),
            row.session_id in attended,
            feedback.get(row.session_id),
        )
        (upcoming if ends_at >= now else past).append(shown)
    return page(
        "cohorts/mine.html",
        viewer=principal,
        section="cohorts",
        cohorts=cohorts.items,
        upcoming=upcoming,
        # The latest first: the session to rate is the one just held.
        attended=[s for s in reversed(past) if s.attended],
        placements=PLACEMENT_LABELS,
        statuses=COHORT_STATUS_LABELS,
        ratings=RATINGS,
        calendar_url=calendar_url,
    )


@get("/cohorts/mine")
async def my_cohorts(
    reads: NamedDependency[Reads], principal: NamedDependency[Principal]
) -> Template:
    return await _my_page(reads, principal)


@dataclass
class FeedbackForm:
    content: int
    delivery: int
    interaction: int


@post("/cohorts/{cohort_id:uuid}/sessions/{session_id:uuid}/feedback", status_code=303)
async def give_feedback(
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
    cohort_id: FromPath[UUID],
    session_id: FromPath[UUID],
    data: Annotated[FeedbackForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    member_id = own_member_id(principal)
    await commands.run(
        GiveFeedback(
            cohort_id, session_id, member_id, data.content, data.delivery, data.interaction
        )
    )
    return Redirect(f"/cohorts/mine#session-{session_id}", status_code=303)


@post("/cohorts/mine/calendar", status_code=200)
async def rotate_calendar(
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    settings: NamedDependency[Settings],
    principal: NamedDependency[Principal],
) -> Template:
    """A new calendar link, shown on this answer only (the previous link stops working)."""
    member_id = own_member_id(principal)
    outcome = await commands.run(RotateCalendarFeed(FeedKind.MEMBER, member_id))
    issued: IssuedFeed = outcome.result
    return await _my_page(reads, principal, calendar_url=feed_url(settings, principal, issued))


# ------------------------------------------------------------------ the training policy


def _policy_page(
    principal: Principal,
    threshold: object,
    cooldown: object,
    *,
    problem: str = "",
    saved: bool = False,
) -> Template:
    return page(
        "cohorts/policy.html",
        status_code=422 if problem else 200,
        viewer=principal,
        section="policy",
        threshold=threshold,
        cooldown=cooldown,
        problem=problem,
        saved=saved,
    )


@get("/admin/policy", guards=[READ])
async def training_policy(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    saved: Annotated[bool, QueryParameter(name="saved")] = False,
) -> Template:
    await reads.after([COHORTS.info])
    async with reads.session() as conn:
        policy = await cohort_queries.training_policy(conn)
    return _policy_page(
        principal,
        policy.at_risk_threshold,
        policy.retake_cooldown_days,
        saved=saved,
    )


@post("/admin/policy", guards=[WRITE], status_code=303)
async def change_training_policy(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
) -> Response[Any]:
    """The API's change, with its bounds; a refused value is shown again with the reason."""
    form = await request.form()
    threshold = str(form.get("at_risk_threshold", ""))[:10]
    cooldown = str(form.get("retake_cooldown_days", ""))[:10]
    try:
        data = msgspec.convert(
            {"at_risk_threshold": threshold, "retake_cooldown_days": cooldown},
            PolicyIn,
            strict=False,
        )
        await commands.run(ChangeTrainingPolicy(data.at_risk_threshold, data.retake_cooldown_days))
    except (msgspec.ValidationError, RuleViolated) as error:
        return _policy_page(principal, threshold, cooldown, problem=str(error))
    return Redirect("/admin/policy?saved=true", status_code=303)


ROUTES: list[Any] = [
    my_cohorts,
    give_feedback,
    rotate_calendar,
    training_policy,
    change_training_policy,
]
