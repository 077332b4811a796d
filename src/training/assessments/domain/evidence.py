"""Evidence of a skill besides assessments: code and project reviews by HR or a manager."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import RuleViolated
from training.skills.domain import check_level


class EvidenceKind(StrEnum):
    CODE_REVIEW = "code_review"
    PROJECT_REVIEW = "project_review"


class SkillEvidence(TrainingAggregate):
    """Rubric-based observations by HR or a manager (code and project reviews)."""

    TOPIC = "training.assessments:SkillEvidence"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.assessments:SkillEvidence.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.assessments:SkillEvidence.Created"

    class Opened(Created):
        TOPIC = "training.assessments:SkillEvidence.Opened"
        member_id: UUID

    class EvidenceRecorded(Event):
        TOPIC = "training.assessments:SkillEvidence.EvidenceRecorded"
        evidence_id: UUID
        kind: EvidenceKind
        skill: str
        observed_level: int
        link: str | None
        note: str

    @staticmethod
    def create_id(tenant_id: UUID, member_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "skill-evidence", member_id)

    @classmethod
    def open(cls, tenant_id: UUID, member_id: UUID) -> SkillEvidence:
        return cls(member_id=member_id, tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, member_id: UUID, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.member_id = member_id
        self.count = 0

    def record(
        self,
        evidence_id: UUID,
        kind: EvidenceKind,
        skill: str,
        observed_level: int,
        link: str | None,
        note: str,
    ) -> None:
        check_level(observed_level, "observed_level")
        if link is not None and not link.startswith("https://"):
            raise RuleViolated("a link is an https URL", field="link")
        if len(note) > 2000:
            raise RuleViolated("the note is too long", field="note")
        self._evidence_recorded(
            evidence_id=evidence_id,
            kind=kind,
            skill=skill,
            observed_level=observed_level,
            link=link,
            note=note.strip(),
        )

    @event(EvidenceRecorded)
    def _evidence_recorded(
        self,
        evidence_id: UUID,
        kind: EvidenceKind,
        skill: str,
        observed_level: int,
        link: str | None,
        note: str,
    ) -> None:
        self.count += 1
