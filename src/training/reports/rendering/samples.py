"""Realistic sample reports, for tests, the render benchmark and previews. Invented people."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from training.reports.domain.effectiveness import SkillChange, SuppressedGroup, summarise_changes
from training.reports.rendering.documents import (
    CohortReport,
    CompletionRate,
    EffectivenessReport,
    IndividualReport,
    LevelDistribution,
    PlanItem,
    ProfileRow,
    RosterRow,
    SessionRow,
    level_distribution,
)

GENERATED_AT = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)

# skill, level, SE in levels, target
_PROFILE = (
    ("Python", 4, 0.31, 5),
    ("Kubernetes", 2, 0.42, 3),
    ("SQL and data modelling", 3, 0.28, 4),
    ("Automated testing", 4, 0.35, 4),
    ("Cloud networking", 1, 0.55, 3),
    ("Observability", 2, 0.47, 3),
    ("Secure coding", 3, 0.33, 4),
    ("CI/CD pipelines", 3, 0.38, 3),
    ("System design", 2, 0.51, 4),
    ("Incident response", 2, 0.61, 3),
    ("Infrastructure as code", 3, 0.44, 4),
    ("Code review & mentoring", 5, 0.29, 5),
)

# title, minutes, reason
_PLAN = (
    ("Kubernetes basics", 180, "closes Kubernetes 2→3: pods, deployments and services"),
    ("Networking in the cloud: VPCs and routing", 150, "closes Cloud networking 1→2"),
    ("Load balancers, DNS and TLS termination", 120, "closes Cloud networking 2→3"),
    ("Metrics, logs and traces with OpenTelemetry", 150, "closes Observability 2→3"),
    ("Relational modelling and query plans", 120, "closes SQL and data modelling 3→4"),
    ("Threat modelling for developers", 90, "closes Secure coding 3→4: STRIDE on your service"),
    ("Designing for failure", 180, "closes System design 2→3: timeouts, retries, idempotency"),
    ("Running incidents and blameless reviews", 90, "closes Incident response 2→3"),
    ("Terraform modules and state", 150, "closes Infrastructure as code 3→4"),
    ("Advanced Python: typing and concurrency", 240, "closes Python 4→5"),
    ("Scaling reads and writes", 180, "closes System design 3→4: caching, partitioning"),
    ("Kubernetes operations: probes and autoscaling", 120, "keeps Kubernetes at 3 (review)"),
)

_CHANGES = (
    "added 'k8s-basics': closes Kubernetes 2→3 (the code review of 3 March placed "
    "Kubernetes at level 2, target 3)",
    "added 'cloud-networking-1': closes Cloud networking 1→2 (new assessment: level 1, SE 0.55)",
    "removed 'ci-cd-advanced': CI/CD pipelines reached its target of 3 (project review of "
    "28 February)",
    "moved 'designing-for-failure' from step 9 to step 7: System design gap grew from 1 to 2",
    "removed 'pytest-fundamentals': Automated testing is at its target of 4",
)


def individual_report(member_name: str = "Dana Whitfield") -> IndividualReport:
    start = date(2025, 3, 17)
    plan = []
    for order, (title, minutes, reason) in enumerate(_PLAN, start=1):
        plan.append(PlanItem(order, title, minutes, start + timedelta(weeks=order), reason))
    return IndividualReport(
        tenant_name="Northwind Software GmbH",
        member_name=member_name,
        job_title="Senior backend engineer",
        team="Payments platform",
        generated_at=GENERATED_AT,
        profile=tuple(
            ProfileRow(skill, level, se, target, max(target - level, 0))
            for skill, level, se, target in _PROFILE
        ),
        plan=tuple(plan),
        changes=_CHANGES,
        plan_version=4,
        previous_plan_version=3,
    )


_NAMES = (
    "Amira Haddad",
    "Ben Okafor",
    "Chen Wei",
    "(erased)",
    "Elena Petrova",
    "Farid Nasser",
    "Grace O'Neill",
    "Hiro Tanaka",
    "Ines Duarte",
    "Jonas Berg",
    "Kavya Rao",
    "Liam Murphy",
    "Maja Nowak",
    "Noah Fischer",
)


def cohort_report() -> CohortReport:
    roster = tuple(
        RosterRow(
            name=name,
            status="withdrawn" if i == 9 else ("completed" if i % 5 == 0 else "active"),
            percent_complete=100.0 if i % 5 == 0 else float((i * 37) % 90),
            at_risk=i in (3, 7, 11),
        )
        for i, name in enumerate(_NAMES)
    )
    first = datetime(2025, 1, 13, 15, 0, tzinfo=UTC)
    sessions = tuple(
        SessionRow(
            title=title,
            starts_at=first + timedelta(weeks=week),
            attendance_rate=rate,
            interaction_index=index,
            content_satisfaction=satisfaction,
        )
        for week, (title, rate, index, satisfaction) in enumerate(
            (
                ("Kick-off: how the cohort works", 0.93, 1.21, 4.4),
                ("Containers and images", 0.86, 0.84, 4.1),
                ("Pods, deployments and services", 0.79, 0.92, 4.3),
                ("Networking and ingress", 0.71, 0.55, 3.8),
                ("Observability in practice", 0.64, 0.61, 4.0),
                ("Wrap-up and next steps", None, None, None),
            )
        )
    )
    levels = {
        "Kubernetes": [2, 2, 3, 3, 3, 2, 4, 3, 1, 2, 3, 3],
        "Cloud networking": [1, 2, 2, 1, 3, 2, 2, 1],
        "Observability": [2, 3, 3, 2, 2, 4],
        "Incident response": [2, 3, 1],
        "Go": [3, 4],
    }
    distribution: list[LevelDistribution | SuppressedGroup] = [
        level_distribution(skill, values) for skill, values in levels.items()
    ]
    return CohortReport(
        tenant_name="Northwind Software GmbH",
        cohort_name="Platform engineering, spring 2025",
        curriculum_title="Kubernetes for backend engineers",
        window=(date(2025, 1, 13), date(2025, 4, 25)),
        roster=roster,
        sessions=sessions,
        skill_distribution=tuple(distribution),
        generated_at=GENERATED_AT,
    )


def effectiveness_report() -> EffectivenessReport:
    pairs = {
        # 8 people; pre 2,2,3,2,1,3,2,2 (mean 2.125), post 3,3,3,3,2,4,3,2 (mean 2.875)
        "Kubernetes": [(2, 3), (2, 3), (3, 3), (2, 3), (1, 2), (3, 4), (2, 3), (2, 2)],
        "Cloud networking": [(1, 2), (2, 2), (1, 1), (2, 3), (3, 3), (1, 2)],
        "Observability": [(2, 2), (3, 3), (2, 3), (3, 3), (2, 2)],
        "Incident response": [(2, 3), (1, 2), (2, 2)],
    }
    changes: tuple[SkillChange | SuppressedGroup, ...] = summarise_changes(pairs)
    return EffectivenessReport(
        tenant_name="Northwind Software GmbH",
        period=(date(2025, 1, 1), date(2025, 3, 31)),
        changes=changes,
        completion_rates=(
            CompletionRate("Platform engineering, spring 2025", 14, 9),
            CompletionRate("Secure coding, winter 2024", 22, 19),
            CompletionRate("Kubernetes for backend engineers (curriculum)", 36, 28),
            CompletionRate("Data modelling pilot", 0, 0),
        ),
        generated_at=GENERATED_AT,
    )
