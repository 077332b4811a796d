"""PDF reports: the commands that record them.

Who may ask for which report is the API's business (the member, their managers and HR for
an individual report; HR for the others). Here:

* ``RequestReport`` records a request made by a person or a client; ``RequestPlanReport``
  the automatic individual report of one plan version of a member's track, with an id derived
  from (member, plan version), so asking again changes nothing.
* ``MarkRendered`` and ``MarkFailed`` record what became of it.

The report worker (``training.reports.worker``) renders the reports and runs the last three.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID, uuid4

from training.cohorts.domain.cohorts import Cohort
from training.core.bus import Handler, UnitOfWork
from training.people.domain.members import Member
from training.reports.domain.requests import Report, ReportKind, check_subject


@dataclass(frozen=True)
class RequestReport:
    """A report asked for by a person or a client. The id is chosen before the bus runs the
    handler, so a retried handler (a lost race) creates the same report, not a second one."""

    kind: ReportKind
    subject_id: UUID | None
    report_id: UUID = field(default_factory=uuid4)
    trigger: str = "on request"


@dataclass(frozen=True)
class RequestPlanReport:
    """The individual report of one plan version; asking for it again changes nothing."""

    member_id: UUID
    plan_version: int
    trigger: str


@dataclass(frozen=True)
class MarkRendered:
    report_id: UUID
    checksum: str
    size_bytes: int
    pages: int


@dataclass(frozen=True)
class MarkFailed:
    report_id: UUID
    reason: str


@dataclass(frozen=True)
class ReportRequested:
    report_id: UUID
    kind: ReportKind
    subject_id: UUID | None
    plan_version: int | None
    created: bool  # False: the report existed already (a repeated plan report)


def _check_subject_exists(uow: UnitOfWork, kind: ReportKind, subject_id: UUID | None) -> None:
    """The member or cohort must exist in the caller's tenant (another tenant's is NotFound)."""
    if subject_id is None:
        return
    if kind is ReportKind.INDIVIDUAL:
        uow.get(Member, subject_id)
    elif kind is ReportKind.COHORT:
        uow.get(Cohort, subject_id)


def _requested(report: Report, *, created: bool) -> ReportRequested:
    return ReportRequested(report.id, report.kind, report.subject_id, report.plan_version, created)


def request_report(command: RequestReport, uow: UnitOfWork) -> ReportRequested:
    tenant_id = uow.require_tenant()
    check_subject(command.kind, command.subject_id)
    if uow.exists(command.report_id):
        return _requested(uow.get(Report, command.report_id), created=False)
    _check_subject_exists(uow, command.kind, command.subject_id)
    report = Report.request(
        tenant_id,
        command.kind,
        command.subject_id,
        str(uow.context.actor),
        command.trigger,
        report_id=command.report_id,
    )
    uow.add(report)
    return _requested(report, created=True)


def request_plan_report(command: RequestPlanReport, uow: UnitOfWork) -> ReportRequested:
    tenant_id = uow.require_tenant()
    report_id = Report.plan_report_id(tenant_id, command.member_id, command.plan_version)
    if uow.exists(report_id):
        return _requested(uow.get(Report, report_id), created=False)
    uow.get(Member, command.member_id)
    report = Report.request(
        tenant_id,
        ReportKind.INDIVIDUAL,
        command.member_id,
        str(uow.context.actor),
        command.trigger,
        report_id=report_id,
        plan_version=command.plan_version,
    )
    uow.add(report)
    return _requested(report, created=True)


def mark_rendered(command: MarkRendered, uow: UnitOfWork) -> int:
    report = uow.get(Report, command.report_id)
    report.mark_rendered(command.checksum, command.size_bytes, command.pages)
    return int(report.version)


def mark_failed(command: MarkFailed, uow: UnitOfWork) -> int:
    report = uow.get(Report, command.report_id)
    report.mark_failed(command.reason)
    return int(report.version)


HANDLERS: dict[type, Handler] = {
    RequestReport: request_report,
    RequestPlanReport: request_plan_report,
    MarkRendered: mark_rendered,
    MarkFailed: mark_failed,
}
