"""Where external ids lead once some of them changed (the member id never changes)."""

from __future__ import annotations

import uuid

from training.core.access import Role
from training.people.domain.external_ids import ExternalIds, lead_of
from training.people.domain.members import Member


def test_an_unlisted_external_id_leads_to_the_member_derived_from_it() -> None:
    tenant_id = uuid.uuid4()
    assert lead_of(tenant_id, "E1", None) == Member.create_id(tenant_id, "E1")
    keys = ExternalIds.open(tenant_id)
    assert keys.lead("E1") == Member.create_id(tenant_id, "E1")


def test_a_changed_external_id_leads_to_its_member_and_the_old_one_to_nobody() -> None:
    tenant_id = uuid.uuid4()
    member = Member.register(tenant_id=tenant_id, external_id="E1", roles=(Role.ENGINEER,))
    keys = ExternalIds.open(tenant_id)
    keys.assign("E1", None)
    keys.assign("E2", member.id)
    member.change_external_id("E2")
    assert member.id == Member.create_id(tenant_id, "E1")
    assert member.external_id == "E2"
    assert keys.lead("E2") == member.id
    assert keys.lead("E1") is None
    version = keys.version
    keys.assign("E2", member.id)  # no change, no event
    assert keys.version == version


def test_a_member_may_be_registered_with_a_given_id() -> None:
    tenant_id, member_id = uuid.uuid4(), uuid.uuid4()
    member = Member.register(
        tenant_id=tenant_id, external_id="E1", roles=(Role.ENGINEER,), member_id=member_id
    )
    assert member.id == member_id
    assert member.tenant_id == tenant_id
