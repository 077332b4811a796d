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


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


def unpickle(data: bytes) -> Any:
    """``pickle.loads`` that follows ``MOVED_MODULES``."""
    return _Unpickler(io.BytesIO(data)).load()
