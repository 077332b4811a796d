"""A small demo tenant for a newcomer's first start: people, skills, role profiles, curricula."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from training.cohorts.domain.cohorts import Attendance
from training.cohorts.handlers.cohorts import (
    RecordAttendance,
    ScheduleCohort,
    ScheduleSession,
    StartCohort,
)
from training.cohorts.handlers.enrolments import Enrol
from training.core.access import Role, Scope
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.curricula.domain import ModuleFormat, ModuleSpec
from training.curricula.handlers import (
    AddModule,
    CreateCurriculum,
    ForkCurriculum,
    PublishCurriculum,
)
from training.people.domain.members import Member
from training.people.handlers.imports import ImportMembers, MemberRow
from training.reviews.domain import Goal, ReviewContent, SkillRating
from training.reviews.handlers import DraftReview
from training.skills.domain import SkillTarget
from training.skills.handlers import DefineRoleProfile
from training.tenancy.domain import Tenant
from training.tenancy.handlers import IssuedCredentials, RegisterApiClient, RegisterTenant

DEMO_SLUG = "acme"

# External id, name, roles, manager, team, job title: invented people of an invented company.
Person = tuple[str, str, tuple[Role, ...], str | None, str, str]
# fmt: off
PEOPLE: tuple[Person, ...] = (
    ("A001", "Morgan Reyes", (Role.TENANT_ADMIN, Role.HR_MANAGER), None, "People", "Head of People"),
    ("A002", "Priya Natarajan", (Role.HR_MANAGER,), "A001", "People", "L&D Partner"),
    ("A003", "Tomasz Kowal", (Role.MANAGER, Role.ENGINEER), None, "Platform", "Engineering Manager"),
    ("A004", "Amara Okafor", (Role.MANAGER, Role.ENGINEER), None, "Payments", "Engineering Manager"),
    ("A005", "Lena Fischer", (Role.MANAGER, Role.ENGINEER), None, "Mobile", "Engineering Manager"),
    ("A006", "Jonas Berg", (Role.ENGINEER,), "A003", "Platform", "Senior Platform Engineer"),
    ("A007", "Sofia Marques", (Role.ENGINEER,), "A003", "Platform", "Platform Engineer"),
    ("A008", "Kenji Watanabe", (Role.ENGINEER,), "A003", "Platform", "Site Reliability Engineer"),
    ("A009", "Chloe Martin", (Role.ENGINEER,), "A003", "Platform", "Platform Engineer"),
    ("A010", "Ravi Shah", (Role.ENGINEER,), "A004", "Payments", "Senior Backend Engineer"),
    ("A011", "Hannah Cole", (Role.ENGINEER,), "A004", "Payments", "Backend Engineer"),
    ("A012", "Mateo Silva", (Role.ENGINEER,), "A004", "Payments", "Backend Engineer"),
    ("A013", "Aisha Rahman", (Role.ENGINEER,), "A004", "Payments", "Backend Engineer"),
    ("A014", "Oliver Grant", (Role.ENGINEER,), "A004", "Payments", "Junior Backend Engineer"),
    ("A015", "Yara Haddad", (Role.ENGINEER,), "A005", "Mobile", "Senior Mobile Engineer"),
    ("A016", "Lucas Dubois", (Role.ENGINEER,), "A005", "Mobile", "Frontend Engineer"),
    ("A017", "Mei Lin", (Role.ENGINEER,), "A005", "Mobile", "Frontend Engineer"),
    ("A018", "Noah Fischer", (Role.ENGINEER,), "A005", "Mobile", "Mobile Engineer"),
)
# fmt: on


DEMO_CLIENT_NAME = "Acme HR integration"
# Where the demo client's secret goes when no terminal shows it (under the data directory).
DEMO_CLIENT_FILE = "demo-client.txt"


@dataclass(frozen=True)
class DemoLoaded:
    tenant_id: uuid.UUID
    client: IssuedCredentials


def demo_exists(bus: CommandBus) -> bool:
    return Tenant.create_id(DEMO_SLUG) in bus.app.repository


def issue_demo_client(bus: CommandBus) -> IssuedCredentials | None:
    """A new API client of the demo tenant (when the secret was lost); None without one."""
    if not demo_exists(bus):
        return None
    platform = CommandContext.system("demo", request_id=f"demo-{uuid.uuid4().hex[:12]}")
    issued: IssuedCredentials = bus.execute(
        platform,
        RegisterApiClient(
            Tenant.create_id(DEMO_SLUG), DEMO_CLIENT_NAME, tuple(str(s) for s in Scope)
        ),
    ).result
    return issued


def hand_over_demo_client(
    client: IssuedCredentials, data_dir: Path, *, on_terminal: bool
) -> list[str]:
    """What to print about the demo client. Its secret is shown once when a person reads the
    output on a terminal; otherwise (output captured, perhaps into logs) it goes to a file
    only its owner may read, and the lines name that file."""
    if on_terminal:
        return [
            f"  client_id     {client.client_id}",
            f"  client_secret {client.client_secret}",
            "  (the secret is shown only now; `training demo --new-client` issues another)",
        ]
    path = data_dir / DEMO_CLIENT_FILE
    write_private_file(
        path, f"client_id={client.client_id}\nclient_secret={client.client_secret}\n"
    )
    return [
        f"  client_id     {client.client_id}",
        f"  client_secret in {path} (readable by its owner only)",
    ]


def write_private_file(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` with mode 0600, replacing the file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older partial file may have had another mode
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(partial, path)


def demo_catalogue() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("training.data").joinpath("demo_catalogue.json").read_text()
    )
    return data


def load_demo(bus: CommandBus) -> DemoLoaded | None:
    """Loads the demo tenant unless it exists; returns what was created."""
    if demo_exists(bus):
        return None
    request_id = f"demo-{uuid.uuid4().hex[:12]}"
    platform = CommandContext.system("demo", request_id=request_id)
    tenant = bus.execute(platform, RegisterTenant(DEMO_SLUG, "Acme Software", 250)).result
    client = bus.execute(
        platform,
        RegisterApiClient(tenant.tenant_id, DEMO_CLIENT_NAME, tuple(str(s) for s in Scope)),
    ).result
    # The demo's people and plans are written as if by the tenant's own integration.
    acme = CommandContext(Actor(ActorKind.SYSTEM, "demo"), request_id, tenant.tenant_id)
    rows = tuple(
        MemberRow(
            row=index,
            external_id=external_id,
            display_name=name,
            email=f"{name.lower().replace(' ', '.')}@acme.example",
            roles=roles,
            manager_external_id=manager,
            team=team,
            job_title=title,
        )
        for index, (external_id, name, roles, manager, team, title) in enumerate(PEOPLE, start=1)
    )
    bus.execute(acme, ImportMembers(rows))
    catalogue = load_catalogue(bus, platform)
    forks = []
    for curriculum_id in catalogue:
        fork = bus.execute(acme, ForkCurriculum(curriculum_id, 1)).result
        bus.execute(acme, PublishCurriculum(fork.curriculum_id))
        forks.append(fork.curriculum_id)
    for profile in demo_catalogue()["role_profiles"]:
        targets = tuple(SkillTarget(s, int(level)) for s, level in profile["targets"].items())
        bus.execute(
            acme,
            DefineRoleProfile(profile["key"], profile["name"], profile["description"], targets),
        )
    take_demo_assessments(bus, tenant.tenant_id, request_id)
    run_demo_cohorts(bus, acme, tenant.tenant_id, forks[:2])
    record_demo_reviews(bus, acme, tenant.tenant_id)
    return DemoLoaded(tenant.tenant_id, client)


# Two cohorts, each with engineers, two live sessions and imported attendance.
COHORT_TEAMS = (
    ("Backend Foundations, winter", ("A010", "A011", "A012", "A013", "A014")),
    ("Cloud-Native Platform, winter", ("A006", "A007", "A008", "A009", "A015")),
)


def run_demo_cohorts(
    bus: CommandBus, acme: CommandContext, tenant_id: uuid.UUID, curricula: list[uuid.UUID]
) -> None:
    today = datetime.now(UTC).date()
    for (name, people), curriculum_id in zip(COHORT_TEAMS, curricula, strict=True):
        members = tuple(Member.create_id(tenant_id, external_id) for external_id in people)
        cohort = bus.execute(
            acme,
            ScheduleCohort(
                name,
                curriculum_id,
                1,
                today - timedelta(days=14),
                today + timedelta(days=60),
                "Europe/Berlin",
                12,
                (Member.create_id(tenant_id, "A002"),),
            ),
        ).result
        bus.execute(acme, Enrol(cohort.cohort_id, members))
        bus.execute(acme, StartCohort(cohort.cohort_id))
        for week in (1, 2):
            starts = datetime.combine(
                today - timedelta(days=14 - 7 * week), datetime.min.time(), UTC
            ) + timedelta(hours=9)
            session_id = bus.execute(
                acme,
                ScheduleSession(
                    cohort.cohort_id,
                    f"Live session, week {week}",
                    starts,
                    60,
                    f"https://meet.acme.example/{cohort.cohort_id.hex[:8]}-{week}",
                ),
            ).result
            attended = tuple(
                Attendance(member, starts + timedelta(minutes=2), starts + timedelta(minutes=58))
                for member in members[: 4 if week == 1 else 3]
            )
            bus.execute(acme, RecordAttendance(cohort.cohort_id, session_id, attended, 12, 5, 20))


def record_demo_reviews(bus: CommandBus, acme: CommandContext, tenant_id: uuid.UUID) -> None:
    """Finalised reviews for the engineers: each re-plans a track (and its report follows)."""
    goals = {"Payments": ("sql", 4), "Platform": ("kubernetes", 4), "Mobile": ("accessibility", 3)}
    profile = {
        "Payments": "backend-engineer-l3",
        "Platform": "platform-engineer-l3",
        "Mobile": "frontend-engineer-l3",
    }
    due = datetime.now(UTC).date() + timedelta(days=180)
    for external_id, _name, roles, manager, team, _title in PEOPLE:
        if Role.ENGINEER not in roles or manager is None or team not in goals:
            continue
        skill, level = goals[team]
        content = ReviewContent(
            ratings=(SkillRating(skill, max(level - 2, 1)),),
            overall_rating=3,
            goals=(Goal("G1", skill, level, due),),
            target_role_profile=profile[team],
        )
        bus.execute(
            acme,
            DraftReview(
                "2026-H2",
                Member.create_id(tenant_id, external_id),
                Member.create_id(tenant_id, manager),
                content,
                external_id=f"demo-review-{external_id}",
                finalise=True,
                strengths=("takes ownership of incidents",),
            ),
        )


def load_catalogue(bus: CommandBus, platform: CommandContext) -> list[uuid.UUID]:
    """Publishes the sample curricula as the platform catalogue; returns their ids."""
    published = []
    for curriculum in demo_catalogue()["curricula"]:
        created = bus.execute(
            platform, CreateCurriculum(curriculum["title"], curriculum["description"])
        ).result
        for module in curriculum["modules"]:
            spec = ModuleSpec(
                key=module["key"],
                title=module["title"],
                description=module["description"],
                format=ModuleFormat(module["format"]),
                duration_minutes=int(module["duration_minutes"]),
                targets=tuple(SkillTarget(t["skill"], int(t["level"])) for t in module["targets"]),
                prerequisites=tuple(module["prerequisites"]),
            )
            # Prerequisites are checked as modules arrive: the data lists them in order.
            bus.execute(platform, AddModule(created.curriculum_id, spec))
        bus.execute(platform, PublishCurriculum(created.curriculum_id))
        published.append(created.curriculum_id)
    return published


# The skills each team's engineers have been assessed in, so that skill profiles, percentiles
# and the team skill summary (five or more people per skill) have something to show.
DEMO_ASSESSMENTS: dict[str, tuple[str, ...]] = {
    "Platform": ("kubernetes", "git"),
    "Payments": ("python", "sql"),
    "Mobile": ("http-apis", "automated-testing"),
}
DEMO_SEED = 2026


def take_demo_assessments(bus: CommandBus, tenant_id: uuid.UUID, request_id: str) -> int:
    """Each demo engineer completes the adaptive test of their team's skills, answering as
    an engineer of a fixed (seeded) ability would under the 2PL model; returns the attempts."""
    import random

    from training.assessments.domain.items import ItemKind
    from training.assessments.domain.scoring import probability_correct
    from training.assessments.handlers.attempts import AnswerItem, StartAssessment
    from training.assessments.queries import starter_bank
    from training.people.domain.members import Member

    bank = starter_bank().items
    rng = random.Random(DEMO_SEED)
    completed = 0
    for external_id, _, roles, _, team, _ in PEOPLE:
        if Role.ENGINEER not in roles:
            continue
        member_id = Member.create_id(tenant_id, external_id)
        person = CommandContext(Actor(ActorKind.MEMBER, str(member_id)), request_id, tenant_id)
        ability = rng.gauss(0.3, 0.9)
        for skill in DEMO_ASSESSMENTS.get(team, ()):
            if skill not in bank:
                continue
            state = bus.execute(person, StartAssessment(skill)).result
            while state.item is not None:
                item, parameters = bank[skill][state.item.item_id]
                answer = item.answer
                if rng.random() >= probability_correct(ability, parameters):
                    answer = tuple(reversed(item.answer))
                    if item.kind is not ItemKind.ORDERING:
                        answer = (next(o.id for o in item.options if o.id not in item.answer),)
                state = bus.execute(
                    person, AnswerItem(state.attempt_id, item.item_id, answer)
                ).result
            completed += 1
    return completed
