"""Where modules of earlier releases live now, for reading what those releases pickled.

Stored idempotent outcomes (``core.idempotency_store``) are pickles that name their classes by
module. They live a day; a retry that arrives just after an upgrade that moved a module must
still be answered with what the first attempt got, not fail on a module that no longer
exists.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

# From the release with one package per layer (domain, application, projections, api, infra)
# to one package per bounded context (ADR 0030).
MOVED_MODULES: dict[str, str] = {
    "training.domain.base": "training.core.aggregate",
    "training.domain.errors": "training.core.errors",
    "training.domain.access": "training.core.access",
    "training.application.context": "training.core.context",
    "training.application.credentials": "training.core.credentials",
    "training.application.app": "training.core.application",
    "training.application.mapper": "training.core.mapper",
    "training.application.repository": "training.core.repository",
    "training.application.bus": "training.core.bus",
    "training.application.group_commit": "training.core.group_commit",
    "training.application.retry": "training.core.retry",
    "training.application.turns": "training.core.turns",
    "training.application.loading": "training.core.loading",
    "training.application.personal_data": "training.core.personal_data",
    "training.application.idempotency": "training.core.idempotency",
    "training.infra.idempotency": "training.core.idempotency_store",
    "training.projections.store": "training.core.read_store",
    "training.projections.base": "training.core.views",
    "training.projections.pagination": "training.core.pagination",
    "training.projections.quarantine": "training.core.quarantine",
    "training.projections.runner": "training.core.projection_runner",
    "training.domain.tenancy": "training.tenancy.domain",
    "training.application.tenancy": "training.tenancy.handlers",
    "training.projections.tenancy": "training.tenancy.views",
    "training.domain.people": "training.people.domain.members",
    "training.domain.teams": "training.people.domain.teams",
    "training.application.people": "training.people.handlers.members",
    "training.application.teams": "training.people.handlers.teams",
    "training.application.imports": "training.people.handlers.imports",
    "training.application.import_runner": "training.people.handlers.import_runner",
    "training.application.export": "training.people.handlers.export",
    "training.infra.import_jobs": "training.people.handlers.import_jobs",
    "training.projections.people": "training.people.views",
    "training.domain.skills": "training.skills.domain",
    "training.application.skills": "training.skills.handlers",
    "training.projections.skills": "training.skills.views",
    "training.domain.curricula": "training.curricula.domain",
    "training.application.curricula": "training.curricula.handlers",
    "training.projections.curricula": "training.curricula.views",
    "training.domain.cohorts": "training.cohorts.domain.cohorts",
    "training.domain.policy": "training.cohorts.domain.policy",
    "training.application.cohorts": "training.cohorts.handlers.cohorts",
    "training.application.participation": "training.cohorts.handlers.participation",
    "training.projections.cohorts": "training.cohorts.views.cohorts",
    "training.domain.assessments": "training.assessments.domain.attempts",
    "training.domain.scoring": "training.assessments.domain.scoring",
    "training.domain.profile": "training.assessments.domain.profile",
    "training.application.assessments": "training.assessments.handlers.attempts",
    "training.projections.assessments": "training.assessments.views",
    "training.domain.reviews": "training.reviews.domain",
    "training.application.reviews": "training.reviews.handlers",
    "training.projections.reviews": "training.reviews.views",
    "training.domain.tracks": "training.planning.domain.tracks",
    "training.domain.learning": "training.planning.domain.learning",
    "training.domain.planner": "training.planning.domain.planner",
    "training.application.planning": "training.planning.process",
    "training.application.learning": "training.planning.handlers.learning",
    "training.projections.tracks": "training.planning.views.tracks",
    "training.projections.learning": "training.planning.views.learning",
    "training.domain.report_requests": "training.reports.domain.requests",
    "training.domain.effectiveness": "training.reports.domain.effectiveness",
    "training.application.reports": "training.reports.handlers",
    "training.infra.report_store": "training.reports.views",
    "training.reports.charts": "training.reports.rendering.charts",
    "training.reports.documents": "training.reports.rendering.documents",
    "training.reports.html": "training.reports.rendering.html",
    "training.reports.renderer": "training.reports.rendering.renderer",
    "training.reports.samples": "training.reports.rendering.samples",
    "training.domain.sso": "training.identity.domain",
    "training.application.sso": "training.identity.handlers.sso",
    "training.application.scim": "training.identity.handlers.scim",
    "training.infra.keys": "training.identity.keys",
    "training.infra.oidc": "training.identity.oidc",
    "training.projections.audit": "training.audit.views",
    "training.domain.catalog": "training.catalog",
    "training.projections.registry": "training.registry",
    "training.projections.rebuild": "training.maintenance.rebuild",
    "training.projections.retry": "training.maintenance.retry",
    "training.infra.data_steps": "training.upgrades.data_steps",
    "training.infra.event_rewrite": "training.upgrades.event_rewrite",
}

# Classes that left the module their old module moved to, by "old module:class".
MOVED_CLASSES: dict[str, str] = {
    "training.projections.quarantine:HeldEvent": "training.core.held_events",
    "training.projections.quarantine:Summary": "training.core.held_events",
    "training.projections.quarantine:DegradedTenant": "training.core.held_events",
    "training.projections.quarantine:DegradedViews": "training.core.held_events",
    "training.domain.people:CopiedFlat": "training.people.domain.copies",
    "training.domain.people:Claim": "training.people.domain.external_ids",
    "training.domain.people:ExternalIds": "training.people.domain.external_ids",
    "training.domain.people:SeatLimitReached": "training.people.domain.seats",
    "training.domain.people:SeatRoster": "training.people.domain.seats",
    "training.application.people:MemberStanding": "training.people.queries",
    "training.application.imports:RowError": "training.people.handlers.import_files",
    "training.application.imports:ImportFileError": "training.people.handlers.import_files",
    "training.application.imports:Validation": "training.people.handlers.import_files",
    "training.application.imports:ImportJobs": "training.people.handlers.import_runner",
    "training.application.imports:PeopleDirectory": "training.people.handlers.import_runner",
    "training.application.imports:Progress": "training.people.handlers.import_runner",
    "training.application.skills:Level": "training.skills.queries",
    "training.application.skills:Category": "training.skills.queries",
    "training.application.skills:DefaultFramework": "training.skills.queries",
    "training.domain.cohorts:CurriculumEnrolments": "training.cohorts.domain.participation",
    "training.domain.cohorts:Participation": "training.cohorts.domain.participation",
    "training.domain.cohorts:FeedKind": "training.cohorts.domain.calendar",
    "training.domain.cohorts:CalendarFeed": "training.cohorts.domain.calendar",
    "training.application.cohorts:Enrol": "training.cohorts.handlers.enrolments",
    "training.application.cohorts:Withdraw": "training.cohorts.handlers.enrolments",
    "training.application.cohorts:Transfer": "training.cohorts.handlers.enrolments",
    "training.application.cohorts:RecordParticipation": "training.cohorts.handlers.enrolments",
    "training.application.cohorts:RotateCalendarFeed": "training.cohorts.handlers.calendar",
    "training.application.cohorts:IssuedFeed": "training.cohorts.handlers.calendar",
    "training.projections.cohorts:SessionRow": "training.cohorts.views.sessions",
    "training.projections.cohorts:CohortsView": "training.cohorts.views.projection",
    "training.projections.cohorts:CohortsProjection": "training.cohorts.views.projection",
    "training.domain.assessments:ItemKind": "training.assessments.domain.items",
    "training.domain.assessments:Option": "training.assessments.domain.items",
    "training.domain.assessments:AssessmentSlot": "training.assessments.domain.slots",
    "training.domain.assessments:ItemBank": "training.assessments.domain.items",
    "training.domain.assessments:ItemCalibration": "training.assessments.domain.items",
    "training.domain.assessments:EvidenceKind": "training.assessments.domain.evidence",
    "training.domain.assessments:SkillEvidence": "training.assessments.domain.evidence",
    "training.application.assessments:StarterBank": "training.assessments.queries",
    "training.application.assessments:AddItem": "training.assessments.handlers.items",
    "training.application.assessments:ReviseItem": "training.assessments.handlers.items",
    "training.application.assessments:RecordEvidence": "training.assessments.handlers.evidence",
    "training.application.assessments:PublishParameters": (
        "training.assessments.handlers.calibration"
    ),
    "training.application.reports:QueuedReport": "training.reports.worker",
    "training.application.reports:Built": "training.reports.worker",
    "training.application.reports:NotReady": "training.reports.worker",
    "training.application.reports:RenderFailed": "training.infra.rendering",
    "training.application.reports:RenderInterrupted": "training.infra.rendering",
    "training.application.reports:ReportQueue": "training.reports.worker",
    "training.application.reports:ReportSources": "training.reports.worker",
    "training.application.reports:ReportWorker": "training.reports.worker",
    "training.infra.report_store:SqlReportQueue": "training.reports.queue",
    "training.infra.report_store:SqlReportSources": "training.reports.sources",
    "training.infra.report_store:ReportTriggerView": "training.reports.trigger",
    "training.infra.report_store:ReportTriggerProjection": "training.reports.trigger",
    "training.infra.report_store:ReportingSupervisor": "training.reports.supervisor",
}


def new_home(module: str, name: str) -> str:
    """The module that holds ``name``, which an earlier release found in ``module``."""
    return MOVED_CLASSES.get(f"{module}:{name}") or MOVED_MODULES.get(module, module)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(new_home(module, name), name)


def unpickle(data: bytes) -> Any:
    """``pickle.loads`` that follows ``MOVED_MODULES``."""
    return _Unpickler(io.BytesIO(data)).load()
