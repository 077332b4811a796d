"""Skill profiles over HTTP: reviewers record evidence of a member's skill, a member's profile
combines it with their assessments, and group views show a team's or a cohort's results.

HR and managers see results (levels and standard errors), never item responses. Group views
hide every skill fewer than ``MIN_GROUP`` people have a result for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException, ValidationException
from litestar.params import FromPath, JSONBody, QueryParameter

from training.assessments import views
from training.assessments.domain.evidence import EvidenceKind
from training.assessments.domain.profile import Measurement, combine, evidence_measurement
from training.assessments.handlers.evidence import RecordEvidence
from training.assessments.http.common import SkillCode
from training.assessments.queries import starter_bank
from training.assessments.views import ASSESSMENTS, MIN_GROUP
from training.cohorts.views import cohorts as cohort_views
from training.cohorts.views.projection import COHORTS
from training.core.access import Scope
from training.core.errors import NotFound, RuleViolated
from training.core.http.commands import Commands, answer
from training.core.http.params import NO_NUL, text
from training.core.http.principal import Principal, requires_scope, requires_tenant
from training.core.http.reads import Reads
from training.people import views as people_views
from training.people.views import MEMBERS

# k-anonymity of group views: a skill is shown only when this many people have a result.
SUPPRESSED_REASON = f"fewer than {MIN_GROUP} people"
# Profiles are asked for as of a calendar day; outside these years a date is a typing error.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2199

Level = Annotated[int, msgspec.Meta(ge=1, le=7)]
Note = Annotated[str, text(max_length=2000)]
Link = Annotated[
    str,
    msgspec.Meta(max_length=2008, pattern=r"^https://[^\s\x00]{3,2000}$", description="https"),
]

PROFILE_RULES = (
    "Per skill, the latest completed assessment (its latest scoring: a rescoring under newer "
    "item parameters supersedes the original) and every code or project review of the last "
    "12 months, combined by inverse-variance weighting: theta = sum(theta_i / se_i^2) / "
    "sum(1 / se_i^2), se = 1 / sqrt(sum(1 / se_i^2)). A review counts as theta at the middle "
    "of the observed level's band with se = 1.0 logit, about a fifth of the weight of an "
    "assessment (se <= 0.43). The level comes from the cut scores on the combined theta. "
    "`as_of` (a day, UTC) gives the profile as known at the end of that day. Item responses "
    "are never shown."
)


class EvidenceIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: EvidenceKind
    skill: SkillCode
    observed_level: Level
    note: Note
    link: Link | None = None


class EvidenceOut(msgspec.Struct, kw_only=True):
    evidence_id: UUID
    member_id: UUID
    kind: str
    skill: str
    observed_level: int
    link: str | None
    note: str


class SourceOut(msgspec.Struct, kw_only=True):
    kind: Annotated[str, msgspec.Meta(description="assessment, code_review or project_review")]
    id: UUID
    level: int
    se: Annotated[float, msgspec.Meta(description="the source's standard error: its weight")]
    recorded_at: datetime


class SkillLevelOut(msgspec.Struct, kw_only=True):
    skill: str
    level: int
    theta: float
    se: float
    sources: list[SourceOut]


class ProfileOut(msgspec.Struct, kw_only=True):
    member_id: UUID
    as_of: datetime
    skills: list[SkillLevelOut]


class SkillSummaryOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    skill: str
    suppressed: bool
    people: int | None = None
    mean_level: float | None = None
    mean_se: float | None = None
    reason: str | None = None


class SummaryOut(msgspec.Struct, kw_only=True):
    team: str | None
    cohort_id: UUID | None
    minimum_group: int
    skills: list[SkillSummaryOut]


def end_of_day(as_of: date | None) -> datetime:
    """The end of ``as_of`` in UTC; now when no day is given."""
    if as_of is None:
        return datetime.now(UTC)
    if not EARLIEST_YEAR <= as_of.year <= LATEST_YEAR:
        raise RuleViolated(f"give a day in {EARLIEST_YEAR}-{LATEST_YEAR}", field="as_of")
    return datetime.combine(as_of, time.max, tzinfo=UTC)


def profile_of(
    results: Sequence[views.ScoredResult],
    evidence: Sequence[views.EvidenceRecord],
    as_of: datetime,
) -> list[SkillLevelOut]:
    """Each skill's entry: the latest assessment and the evidence, combined (see profile)."""
    cut_scores = starter_bank().cut_scores
    by_skill: dict[str, list[Measurement]] = {}
    levels: dict[str, int] = {}
    for result in results:
        source_id = str(result.attempt_id)
        by_skill.setdefault(result.skill, []).append(
            Measurement("assessment", source_id, result.theta, result.se, result.completed_at)
        )
        levels[source_id] = result.level
    for found in evidence:
        source_id = str(found.evidence_id)
        by_skill.setdefault(found.skill, []).append(
            evidence_measurement(
                found.kind, source_id, found.observed_level, found.recorded_at, cut_scores
            )
        )
        levels[source_id] = found.observed_level
    skills = []
    for skill in sorted(by_skill):
        entry = combine(skill, by_skill[skill], as_of, cut_scores)
        if entry is None:
            continue
        sources = [
            SourceOut(
                kind=m.source,
                id=UUID(m.source_id),
                level=levels[m.source_id],
                se=m.se,
                recorded_at=m.recorded_at,
            )
            for m in entry.sources
        ]
        skills.append(
            SkillLevelOut(
                skill=skill, level=entry.level, theta=entry.theta, se=entry.se, sources=sources
            )
        )
    return skills


async def ensure_may_see_profile(reads: Reads, principal: Principal, member_id: UUID) -> None:
    """The member, HR (members:read) or the member's manager; 404 for an unknown member."""
    await reads.after([MEMBERS.info, ASSESSMENTS.info])
    async with reads.session() as conn:
        record = await people_views.get_member(conn, member_id)
    if principal.has_scope(Scope.MEMBERS_READ) or principal.is_member(member_id):
        if record is None:
            raise NotFound(f"member {member_id} not found")
        return
    manager = principal.member_id
    if manager is None or record is None or record.manager_id != manager:
        raise PermissionDeniedException(
            detail="a skill profile is seen by the member, their manager or HR (members:read)"
        )


async def ensure_may_record_evidence(reads: Reads, principal: Principal, member_id: UUID) -> None:
    """HR (members:write) or the member's own manager."""
    if principal.has_scope(Scope.MEMBERS_WRITE):
        return
    manager = principal.member_id
    if manager is not None:
        await reads.after([MEMBERS.info])
        async with reads.session() as conn:
            record = await people_views.get_member(conn, member_id)
        if record is not None and record.manager_id == manager:
            return
    raise PermissionDeniedException(
        detail="evidence is recorded by HR (members:write) or the member's manager"
    )


class MemberSkillsController(Controller):
    path = "/v1/members/{member_id:uuid}"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @post(
        "/evidence",
        guards=[requires_tenant],
        operation_id="recordSkillEvidence",
        summary="Record a code or project review of a member's skill",
        description="By HR (`members:write`) or the member's manager. The observed level "
        "(1-7) enters the member's skill profile with a standard error of 1.0 logit for 12 "
        "months.",
        status_code=201,
    )
    async def record_evidence(
        self,
        commands: NamedDependency[Commands],
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        member_id: FromPath[UUID],
        data: JSONBody[EvidenceIn],
    ) -> Response[EvidenceOut]:
        await ensure_may_record_evidence(reads, principal, member_id)
        outcome = await commands.run(
            RecordEvidence(
                member_id, data.kind, data.skill, data.observed_level, data.link, data.note
            )
        )
        body = EvidenceOut(
            evidence_id=outcome.result,
            member_id=member_id,
            kind=str(data.kind),
            skill=data.skill,
            observed_level=data.observed_level,
            link=data.link,
            note=data.note.strip(),
        )
        location = f"/v1/members/{member_id}/skill-profile"
        return answer(outcome, body, status=201, location=location)

    @get(
        "/skill-profile",
        guards=[requires_tenant],
        operation_id="getSkillProfile",
        summary="A member's level, theta and SE per skill, with their sources",
        description=PROFILE_RULES + " Seen by the member, their manager and HR (members:read).",
    )
    async def skill_profile(
        self,
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        member_id: FromPath[UUID],
        as_of: Annotated[
            date | None,
            QueryParameter(name="as_of", description="a day (YYYY-MM-DD, UTC); default now"),
        ] = None,
    ) -> ProfileOut:
        moment = end_of_day(as_of)
        await ensure_may_see_profile(reads, principal, member_id)
        async with reads.session() as conn:
            results = await views.results_of_member(conn, member_id, moment)
            evidence = await views.evidence_of_member(conn, member_id, moment)
        return ProfileOut(
            member_id=member_id, as_of=moment, skills=profile_of(results, evidence, moment)
        )


class SkillSummaryController(Controller):
    path = "/v1/skill-summary"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @get(
        "/",
        guards=[requires_scope(Scope.MEMBERS_READ)],
        operation_id="getSkillSummary",
        summary="A team's or a cohort's assessment results per skill, k-anonymous",
        description=f"Give exactly one of `team` or `cohort_id`. Per skill: the people of "
        f"the group with a completed assessment (their latest, latest scoring), their mean "
        f"level and mean SE. A skill fewer than {MIN_GROUP} people of the group have a result "
        f"for shows only `suppressed: true` and the reason. The group is the team's active "
        f"members, or the people enrolled in the cohort.",
    )
    async def summary(
        self,
        reads: NamedDependency[Reads],
        team: Annotated[
            str | None, QueryParameter(name="team", min_length=1, max_length=200, pattern=NO_NUL)
        ] = None,
        cohort_id: Annotated[UUID | None, QueryParameter(name="cohort_id")] = None,
    ) -> SummaryOut:
        if (team is None) == (cohort_id is None):
            raise ValidationException(
                detail="give exactly one of team or cohort_id",
                extra=[
                    {
                        "key": "team" if team is None else "cohort_id",
                        "message": "give exactly one of team or cohort_id",
                        "source": "query",
                    }
                ],
            )
        group = COHORTS.info if cohort_id is not None else MEMBERS.info
        await reads.after([ASSESSMENTS.info, group])
        async with reads.session() as conn:
            if cohort_id is not None:
                if await cohort_views.get_cohort(conn, cohort_id) is None:
                    raise NotFound(f"cohort {cohort_id} not found")
                rows = await views.cohort_summary(conn, cohort_id)
            else:
                assert team is not None
                rows = await views.team_summary(conn, team)
        skills = [
            SkillSummaryOut(
                skill=row.skill,
                suppressed=False,
                people=row.people,
                mean_level=round(row.mean_level, 2),
                mean_se=round(row.mean_se, 3),
            )
            if row.people >= MIN_GROUP
            else SkillSummaryOut(skill=row.skill, suppressed=True, reason=SUPPRESSED_REASON)
            for row in rows
        ]
        return SummaryOut(team=team, cohort_id=cohort_id, minimum_group=MIN_GROUP, skills=skills)
