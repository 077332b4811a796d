"""Evidence of a member's skill besides assessments: code and project reviews."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from training.assessments.domain.evidence import EvidenceKind, SkillEvidence
from training.core.bus import Handler, UnitOfWork
from training.core.errors import RuleViolated
from training.skills.queries import usable_skills


@dataclass(frozen=True)
class RecordEvidence:
    member_id: UUID
    kind: EvidenceKind
    skill: str
    observed_level: int
    link: str | None
    note: str


def record_evidence(command: RecordEvidence, uow: UnitOfWork) -> UUID:
    from training.people.domain.members import Member

    tenant_id = uow.require_tenant()
    member = uow.get(Member, command.member_id)
    if command.skill not in usable_skills(uow, tenant_id):
        raise RuleViolated(f"{command.skill!r} is not a skill of this tenant", field="skill")
    evidence = uow.get_or_add(
        SkillEvidence,
        SkillEvidence.create_id(tenant_id, member.id),
        lambda: SkillEvidence.open(tenant_id, member.id),
    )
    evidence_id = uuid4()
    evidence.record(
        evidence_id,
        command.kind,
        command.skill,
        command.observed_level,
        command.link,
        command.note,
    )
    return evidence_id


HANDLERS: dict[type, Handler] = {
    RecordEvidence: record_evidence,
}
