"""PDF reports as aggregates: who asked for which report, and what became of it.

A ``Report`` records the request (the kind, its subject, who asked and what caused it) and
its outcome: the checksum, size and page count of the file that was stored, or why it could
not be made. The file itself lives outside the event store (the ``reports`` table); the
events are the audit trail that says a file with that checksum was produced for that request.

* An individual report is about one member (``subject_id`` is the member), a cohort report
  about one cohort; the effectiveness report covers the whole tenant (no subject).
* The report of a plan version has a deterministic id (``plan_report_id``), so asking for it
  twice, say after a crash of the worker, finds the same aggregate: one report per
  (member, plan version).
* ``Rendered`` may follow ``Rendered``: when the worker dies after recording a file but
  before storing it, the retry renders and records the file actually stored. The latest
  ``Rendered`` names the stored file. A failed report stays failed; ask for a new one.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import InvalidTransition, RuleViolated

MAX_REASON = 500
CHECKSUM_LENGTH = 64  # SHA-256, hex


class ReportKind(StrEnum):
    INDIVIDUAL = "individual"
    COHORT = "cohort"
    EFFECTIVENESS = "effectiveness"


class ReportStatus(StrEnum):
    QUEUED = "queued"
    RENDERED = "rendered"
    FAILED = "failed"


def check_subject(kind: ReportKind, subject_id: UUID | None) -> None:
    """An individual or a cohort report names its subject; the effectiveness report none."""
    if kind is ReportKind.EFFECTIVENESS:
        if subject_id is not None:
            raise RuleViolated(
                "the effectiveness report covers the whole organisation; send no subject_id",
                field="subject_id",
            )
    elif subject_id is None:
        what = "member" if kind is ReportKind.INDIVIDUAL else "cohort"
        raise RuleViolated(f"a {kind} report needs the {what} as subject_id", field="subject_id")


class Report(TrainingAggregate):
    TOPIC = "training.reports:Report"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.reports:Report.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.reports:Report.Created"

    class Requested(Created):
        TOPIC = "training.reports:Report.Requested"
        kind: ReportKind
        subject_id: UUID | None
        requested_by: str
        trigger: str
        plan_version: int | None

    class Rendered(Event):
        TOPIC = "training.reports:Report.Rendered"
        checksum: str
        size_bytes: int
        pages: int

    class Failed(Event):
        TOPIC = "training.reports:Report.Failed"
        reason: str

    @staticmethod
    def plan_report_id(tenant_id: UUID, member_id: UUID, plan_version: int) -> UUID:
        """The id of the individual report of one plan version of a member's track."""
        return stable_id("tenants", tenant_id, "report", "individual", member_id, plan_version)

    @classmethod
    def request(
        cls,
        tenant_id: UUID,
        kind: ReportKind,
        subject_id: UUID | None,
        requested_by: str,
        trigger: str,
        *,
        report_id: UUID,
        plan_version: int | None = None,
    ) -> Report:
        check_subject(kind, subject_id)
        if plan_version is not None and (kind is not ReportKind.INDIVIDUAL or plan_version < 1):
            raise RuleViolated("only an individual report is of a plan version (1 or more)")
        if not trigger.strip():
            raise RuleViolated("say what caused the report", field="trigger")
        return cls._create(
            cls.Requested,
            id=report_id,
            kind=kind,
            subject_id=subject_id,
            requested_by=requested_by,
            trigger=trigger,
            plan_version=plan_version,
            tenant_id=tenant_id,
        )

    @event(Requested)
    def __init__(
        self,
        kind: ReportKind,
        subject_id: UUID | None,
        requested_by: str,
        trigger: str,
        plan_version: int | None,
        *,
        tenant_id: UUID | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.kind = kind
        self.subject_id = subject_id
        self.requested_by = requested_by
        self.trigger = trigger
        self.plan_version = plan_version
        self.status = ReportStatus.QUEUED
        self.checksum: str | None = None
        self.size_bytes: int | None = None
        self.pages: int | None = None
        self.reason: str | None = None

    def mark_rendered(self, checksum: str, size_bytes: int, pages: int) -> None:
        if self.status is ReportStatus.FAILED:
            raise InvalidTransition("the report failed; request a new one")
        if len(checksum) != CHECKSUM_LENGTH or any(c not in "0123456789abcdef" for c in checksum):
            raise RuleViolated("the checksum is a SHA-256 in lower-case hex", field="checksum")
        if size_bytes <= 0 or pages <= 0:
            raise RuleViolated("a rendered report has bytes and pages")
        if (self.checksum, self.size_bytes, self.pages) == (checksum, size_bytes, pages):
            return  # the same file again: nothing new to record
        self._rendered(checksum=checksum, size_bytes=size_bytes, pages=pages)

    @event(Rendered)
    def _rendered(self, checksum: str, size_bytes: int, pages: int) -> None:
        self.status = ReportStatus.RENDERED
        self.checksum = checksum
        self.size_bytes = size_bytes
        self.pages = pages

    def mark_failed(self, reason: str) -> None:
        if self.status is ReportStatus.FAILED:
            return  # a retry that failed again: the first reason stands
        if self.status is ReportStatus.RENDERED:
            raise InvalidTransition("the report is rendered already")
        text = reason.strip()[:MAX_REASON] or "the report could not be rendered"
        self._failed(reason=text)

    @event(Failed)
    def _failed(self, reason: str) -> None:
        self.status = ReportStatus.FAILED
        self.reason = reason
