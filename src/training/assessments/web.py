"""Taking an adaptive assessment in the browser, one item at a time.

The pages send the same commands and read the same state as ``/v1/assessments``: an item
never carries its key, answering an item already answered changes nothing (so reloading or
going back cannot answer twice), and the time left comes from the server's deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from training.assessments import views
from training.assessments.handlers.attempts import (
    AbandonAttempt,
    AnswerItem,
    AttemptState,
    BatteryOutcome,
    StartAssessment,
    StartBattery,
    read_attempt,
)
from training.assessments.handlers.bank import assessable_skills
from training.assessments.http.attempts import own_member_id, ranked_attempt_out
from training.assessments.http.profiles import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    SkillLevelOut,
    end_of_day,
    ensure_may_see_profile,
    profile_of,
)
from training.assessments.queries import starter_bank
from training.assessments.views import ASSESSMENTS
from training.core.application import TrainingApplication
from training.core.errors import NotFound, RuleViolated
from training.core.http.commands import Commands
from training.core.http.params import Cursor
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.web.i18n import N_
from training.core.web.pages import page
from training.skills import views as skills

HISTORY_PAGE = 20
ROLE_PROFILE_CHOICES = 100
# A form's fields for an ordering item: the place given to each option ("order-<option id>").
ORDER_FIELD = "order-"

STATUS_LABELS: dict[str, str] = {
    "in_progress": N_("In progress"),
    "completed": N_("Completed"),
    "abandoned": N_("Abandoned"),
    "timed_out": N_("Timed out"),
}


@dataclass(frozen=True)
class SkillChoice:
    code: str
    name: str


def _tenant_of(principal: Principal) -> UUID:
    assert principal.tenant_id is not None  # a member always belongs to a tenant
    return principal.tenant_id


@get("/assessments")
async def assessments(
    app: NamedDependency[TrainingApplication],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cursor: Cursor = None,
) -> Template:
    member_id = own_member_id(principal)
    codes = await sync_to_thread(assessable_skills, app, _tenant_of(principal))
    await reads.after([ASSESSMENTS.info])
    async with reads.session() as conn:
        history = await views.attempts_of_member(
            conn, member_id, limit=HISTORY_PAGE, cursor=cursor, skill=None
        )
        names = {code: await skills.get_skill(conn, code) for code in codes}
        profiles = await skills.list_role_profiles(
            conn, limit=ROLE_PROFILE_CHOICES, cursor=None, include_retired=False
        )
    choices = [SkillChoice(code, r.name if r else code) for code, r in sorted(names.items())]
    return page(
        "assessments/list.html",
        viewer=principal,
        section="assessments",
        skills=choices,
        skill_names={c.code: c.name for c in choices},
        history=history.items,
        next_cursor=history.next_cursor,
        statuses=STATUS_LABELS,
        role_profiles=profiles.items,
    )


@dataclass
class BatteryForm:
    role_profile_key: str


@post("/assessments/battery", status_code=200)
async def start_battery(
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    data: Annotated[BatteryForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template:
    """One attempt per skill of the role profile (the same command as
    ``POST /v1/assessment-batteries``): the ones started, and why the others were not."""
    own_member_id(principal)
    key = data.role_profile_key.strip()[:64]
    try:
        outcome = await commands.run(StartBattery(key))
    except NotFound:
        raise RuleViolated(f"no role profile {key!r}", field="role_profile_key") from None
    battery: BatteryOutcome = outcome.result
    async with reads.session() as conn:
        profile = await skills.get_role_profile(conn, key)
        codes = {state.skill for state in battery.started} | {s for s, _ in battery.skipped}
        names = {code: await skills.get_skill(conn, code) for code in codes}
    return page(
        "assessments/battery.html",
        viewer=principal,
        section="assessments",
        profile_name=profile.name if profile else key,
        started=battery.started,
        skipped=battery.skipped,
        skill_names={code: record.name if record else code for code, record in names.items()},
    )


@dataclass
class StartForm:
    skill: str


@post("/assessments", status_code=303)
async def start(
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
    data: Annotated[StartForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    own_member_id(principal)
    outcome = await commands.run(StartAssessment(data.skill.strip()[:64]))
    state: AttemptState = outcome.result
    return Redirect(f"/assessments/{state.attempt_id}", status_code=303)


@get("/assessments/{attempt_id:uuid}")
async def attempt_page(
    app: NamedDependency[TrainingApplication],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    attempt_id: FromPath[UUID],
) -> Template:
    member_id = own_member_id(principal)
    state, rescored = await sync_to_thread(
        read_attempt, app, _tenant_of(principal), member_id, attempt_id
    )
    await reads.after([ASSESSMENTS.info])
    shown = await ranked_attempt_out(reads, state, member_id, rescored)
    async with reads.session() as conn:
        skill = await skills.get_skill(conn, state.skill)
    context: dict[str, Any] = {
        "viewer": principal,
        "section": "assessments",
        "attempt": shown,
        "skill_name": skill.name if skill else state.skill,
        "status": STATUS_LABELS.get(state.status, state.status),
    }
    if shown.item is not None:
        left = (shown.item.deadline - datetime.now(UTC)).total_seconds()
        return page(
            "assessments/item.html", seconds_left=max(0, int(left)), **context, item=shown.item
        )
    latest = shown.rescored[-1] if shown.rescored else shown.result
    band = None
    if latest is not None:
        cuts = starter_bank().cut_scores
        # The level's uncertainty: the levels of the estimate one standard error either side.
        band = (cuts.level_for(latest.theta - latest.se), cuts.level_for(latest.theta + latest.se))
    return page("assessments/result.html", result=latest, band=band, **context)


@post("/assessments/{attempt_id:uuid}/answers", status_code=303)
async def answer(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
    attempt_id: FromPath[UUID],
) -> Response[Any]:
    own_member_id(principal)
    form = await request.form()
    item_id = str(form.get("item_id", ""))[:128]
    if not item_id:
        raise RuleViolated("the form names no item", field="item_id")
    await commands.run(AnswerItem(attempt_id, item_id, chosen_options(form)))
    return Redirect(f"/assessments/{attempt_id}", status_code=303)


def chosen_options(form: Any) -> tuple[str, ...]:
    """The answer a form gives: the options ticked (``answer``), or, for an ordering item,
    every option by the place given to it (``order-<option id>``, 1 first)."""
    places: list[tuple[int, str]] = []
    for name, value in form.multi_items():
        if name.startswith(ORDER_FIELD):
            try:
                places.append((int(value), name[len(ORDER_FIELD) :][:64]))
            except ValueError:
                raise RuleViolated("give each option a place: 1, 2, 3…", field=name) from None
    if places:
        return tuple(option for _, option in sorted(places))[:20]
    return tuple(str(value)[:64] for value in form.getall("answer", []))[:20]


@post("/assessments/{attempt_id:uuid}/abandon", status_code=303)
async def abandon(
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
    attempt_id: FromPath[UUID],
) -> Response[Any]:
    own_member_id(principal)
    await commands.run(AbandonAttempt(attempt_id, "left from the web app"))
    return Redirect("/assessments", status_code=303)


# -- the skill profile -----------------------------------------------------------------------

# The chart's geometry (SVG user units; the SVG scales to the page's width).
CHART_WIDTH = 360
CHART_LABEL = 110  # the skills' names, left of the axis
CHART_ROW = 36
CHART_TOP = 8
CHART_AXIS = 28  # the level ticks below the rows
LEVEL_MAX = 7


@dataclass(frozen=True)
class ProfileBar:
    """One skill of the chart and the table: its level and the levels one standard error
    either side of the estimate (the band), with where the chart draws them."""

    skill: str
    name: str
    level: int
    low: int
    high: int
    theta: float
    se: float
    sources: int
    y: float  # the row's middle
    bar_width: float
    band_from: float
    band_to: float


def level_x(level: float) -> float:
    """Where a level falls on the chart's axis (level 0 at its left end)."""
    return CHART_LABEL + (CHART_WIDTH - CHART_LABEL - 8) * level / LEVEL_MAX


def profile_bars(skills: list[SkillLevelOut], names: dict[str, str]) -> list[ProfileBar]:
    cuts = starter_bank().cut_scores
    bars = []
    for row, entry in enumerate(skills):
        low = cuts.level_for(entry.theta - entry.se)
        high = cuts.level_for(entry.theta + entry.se)
        bars.append(
            ProfileBar(
                skill=entry.skill,
                name=names.get(entry.skill, entry.skill),
                level=entry.level,
                low=low,
                high=high,
                theta=round(entry.theta, 2),
                se=round(entry.se, 2),
                sources=len(entry.sources),
                y=CHART_TOP + CHART_ROW * row + CHART_ROW / 2,
                bar_width=round(level_x(entry.level) - CHART_LABEL, 1),
                band_from=round(level_x(low), 1),
                band_to=round(level_x(high), 1),
            )
        )
    return bars


def parse_day(value: str | None) -> date | None:
    """The ``as_of`` of the form: a day (YYYY-MM-DD) of 2000-2199, or none for today; any
    other value is a bad request, as the API's parameter."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        # Exactly YYYY-MM-DD: fromisoformat alone would take 20260115 too.
        day = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None or not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise ValidationException(
            detail=f"as_of: give a day as YYYY-MM-DD in {EARLIEST_YEAR}-{LATEST_YEAR}"
        )
    return day


@get("/profile/skills")
async def skill_profile(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    as_of: Annotated[str | None, QueryParameter(name="as_of", max_length=64)] = None,
) -> Template:
    member_id = own_member_id(principal)
    day = parse_day(as_of)
    moment = end_of_day(day)
    await ensure_may_see_profile(reads, principal, member_id)
    async with reads.session() as conn:
        results = await views.results_of_member(conn, member_id, moment)
        evidence = await views.evidence_of_member(conn, member_id, moment)
        entries = profile_of(results, evidence, moment)
        found = {entry.skill: await skills.get_skill(conn, entry.skill) for entry in entries}
    names = {code: record.name for code, record in found.items() if record is not None}
    bars = profile_bars(entries, names)
    return page(
        "assessments/profile.html",
        viewer=principal,
        section="profile",
        bars=bars,
        as_of=day,
        moment=moment,
        chart_width=CHART_WIDTH,
        chart_height=CHART_TOP + CHART_ROW * len(bars) + CHART_AXIS,
        axis_y=CHART_TOP + CHART_ROW * len(bars),
        axis_from=CHART_LABEL,
        ticks=[(level, round(level_x(level), 1)) for level in range(LEVEL_MAX + 1)],
    )


ROUTES: list[Any] = [
    assessments,
    start_battery,
    start,
    attempt_page,
    answer,
    abandon,
    skill_profile,
]
