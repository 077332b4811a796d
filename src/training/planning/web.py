"""The engineer's home page: their training track, why each module is there, what the last
re-plan changed and why, and starting, completing or skipping a module.

It reads the same views and sends the same command as ``/v1/me/track`` and
``/v1/me/track/progress``, under the signed-in person's session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import PermissionDeniedException
from litestar.params import Body
from litestar.response import Redirect, Template

from training.assessments import views as assessments
from training.assessments.views import ASSESSMENTS, MIN_GROUP, GroupSkillRow
from training.cohorts.views import cohorts
from training.core.access import Role
from training.core.http.commands import Commands
from training.core.http.params import Cursor
from training.core.http.principal import Principal
from training.core.http.reads import Reads
from training.core.web.i18n import N_
from training.core.web.pages import page
from training.people import views as people
from training.people.views import MEMBERS, ReportRecord
from training.planning.domain.learning import ModuleState
from training.planning.domain.progress import DONE, PlannedModule, at_risk, points_behind
from training.planning.handlers.learning import RecordProgress
from training.planning.views import tracks as queries
from training.planning.views.tracks import TRACKS

# Why a plan changed, by the class of the event that changed it (the trigger's topic).
TRIGGER_LABELS: dict[str, str] = {
    "PerformanceReview.Finalised": N_("A performance review was finalised."),
    "PerformanceReview.Amended": N_("A performance review was amended."),
    "AssessmentAttempt.Completed": N_("An assessment result came in."),
    "Curriculum.VersionPublished": N_("A new curriculum version was published."),
    "Cohort.Enrolled": N_("You were enrolled in a cohort."),
    "Cohort.Promoted": N_("You got a place in a cohort from its waitlist."),
    "Cohort.Withdrawn": N_("You were withdrawn from a cohort."),
    "Cohort.Cancelled": N_("A cohort you were in was cancelled."),
    "Member.Deactivated": N_("Your account was deactivated."),
    "Member.Reactivated": N_("Your account was reactivated."),
    "LearningRecord.ModuleProgressed": N_("You recorded progress on a module."),
}
OTHER_TRIGGER = N_("The plan was updated.")

STATE_LABELS: dict[str, str] = {
    "planned": N_("Not started"),
    "started": N_("In progress"),
    "completed": N_("Completed"),
    "skipped": N_("Skipped"),
}


def trigger_label(trigger: str) -> str:
    """The label of ``module.path:Class.Event:id:version`` (the planner's trigger)."""
    topic = trigger.split(":", 2)[1] if trigger.count(":") >= 2 else ""
    return TRIGGER_LABELS.get(topic, OTHER_TRIGGER)


@dataclass(frozen=True)
class Change:
    title: str
    reason: str


def changes_of(entries: list[Any], track: queries.TrackRecord | None) -> list[Change]:
    """A plan change's entries (``[[curriculum_id, key], reason]``) with the modules' titles
    where the track still has them (a removed module shows its key)."""
    known = {(str(m.curriculum_id), m.key): m.title for m in track.modules} if track else {}
    shown = []
    for entry in entries:
        ref, reason = (
            (entry[0], entry[1]) if isinstance(entry, list) and len(entry) == 2 else (entry, "")
        )
        if isinstance(ref, list) and len(ref) == 2:
            title = known.get((str(ref[0]), str(ref[1])), str(ref[1]))
        else:
            title = str(ref)
        shown.append(Change(title, str(reason) if isinstance(reason, str) else ""))
    return shown


def _member_of(principal: Principal) -> tuple[UUID, UUID]:
    if principal.member_id is None or principal.tenant_id is None:
        raise PermissionDeniedException(detail="this page is for a person signed in")
    return principal.tenant_id, principal.member_id


@get("/", name="home")
async def home(reads: NamedDependency[Reads], principal: NamedDependency[Principal]) -> Template:
    tenant_id, member_id = _member_of(principal)
    await reads.after([TRACKS.info])
    async with reads.session() as conn:
        track = await queries.get_track(conn, tenant_id, member_id)
        history = await queries.list_plan_versions(conn, member_id, limit=1, cursor=None)
    latest = history.items[0] if history.items else None
    return page(
        "planning/home.html",
        viewer=principal,
        section="track",
        track=track,
        latest=latest,
        change_reason=trigger_label(latest.trigger) if latest else "",
        added=changes_of(latest.added, track) if latest else [],
        removed=changes_of(latest.removed, track) if latest else [],
        states=STATE_LABELS,
        done=sum(1 for m in track.modules if m.state == "completed") if track else 0,
    )


@dataclass
class ProgressForm:
    curriculum_id: UUID
    key: str
    state: ModuleState
    reason: str = ""


@post("/track/progress", status_code=303)
async def record_progress(
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
    data: Annotated[ProgressForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    _member_of(principal)
    await commands.run(
        RecordProgress(data.curriculum_id, data.key[:64], data.state, data.reason.strip()[:500])
    )
    return Redirect("/", status_code=303)


TEAM_PAGE = 25


@dataclass(frozen=True)
class PersonRow:
    report: ReportRecord
    modules: int
    done: int
    behind: int
    at_risk: bool
    has_track: bool


@dataclass(frozen=True)
class HeatRow:
    team: str
    cells: list[GroupSkillRow | None]  # one per skill column; None: fewer than MIN_GROUP


@get("/team")
async def my_people(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    cursor: Cursor = None,
) -> Template:
    """A manager's people, direct and indirect: their track's progress and whether they are
    behind it by the tenant's at-risk threshold; and their teams' skill levels, each skill
    shown only where at least MIN_GROUP people of the team have a result."""
    _, manager_id = _member_of(principal)
    if Role.MANAGER not in principal.roles:
        raise PermissionDeniedException(detail="this page is for managers")
    await reads.after([MEMBERS.info, TRACKS.info, ASSESSMENTS.info])
    today = datetime.now(UTC).date()
    async with reads.session() as conn:
        reports = await people.list_reports(
            conn, manager_id, direct_only=False, limit=TEAM_PAGE, cursor=cursor
        )
        threshold = (await cohorts.training_policy(conn)).at_risk_threshold
        rows = []
        for report in reports.items:
            track = await queries.get_track(conn, _tenant_of(principal), report.member_id)
            rows.append(_person_row(report, track, today, threshold))
        teams = sorted({r.team for r in reports.items if r.team})
        summaries = {team: await assessments.team_summary(conn, team) for team in teams}
    skills = sorted({row.skill for rows_ in summaries.values() for row in rows_})
    heat = [HeatRow(team, [_shown(summaries[team], skill) for skill in skills]) for team in teams]
    return page(
        "planning/team.html",
        viewer=principal,
        section="team",
        people=rows,
        next_cursor=reports.next_cursor,
        threshold=threshold,
        skills=skills,
        heat=heat,
        minimum_group=MIN_GROUP,
    )


def _tenant_of(principal: Principal) -> UUID:
    tenant_id, _ = _member_of(principal)
    return tenant_id


def _person_row(
    report: ReportRecord, track: queries.TrackRecord | None, today: date, threshold: int
) -> PersonRow:
    planned = [PlannedModule(m.minutes, m.due_on, m.state) for m in track.modules] if track else []
    behind = points_behind(planned, today)
    return PersonRow(
        report=report,
        modules=len(planned),
        done=sum(1 for m in planned if m.state in DONE),
        behind=behind,
        at_risk=track is not None and at_risk(planned, today, threshold),
        has_track=track is not None,
    )


def _shown(rows: list[GroupSkillRow], skill: str) -> GroupSkillRow | None:
    found = next((row for row in rows if row.skill == skill), None)
    return found if found is not None and found.people >= MIN_GROUP else None


ROUTES: list[Any] = [home, record_progress, my_people]
