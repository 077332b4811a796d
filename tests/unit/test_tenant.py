"""The tenant and API client aggregates, without any infrastructure."""

from __future__ import annotations

import uuid

import pytest

from training.core.errors import InvalidTransition, RuleViolated
from training.tenancy.domain import (
    OPERATOR_SCOPE,
    ApiClient,
    ClientStatus,
    Tenant,
    TenantStatus,
)


def test_a_tenant_is_registered_active_with_an_id_from_its_slug() -> None:
    tenant = Tenant.register("acme", "  Acme Software ", 250)
    assert tenant.id == Tenant.create_id("acme")
    assert tenant.tenant_id == tenant.id
    assert tenant.name == "Acme Software"
    assert tenant.status is TenantStatus.ACTIVE
    assert tenant.version == 1


@pytest.mark.parametrize("slug", ["", "Acme", "-acme", "acme-", "a" * 41, "ac me", "acmé"])
def test_a_slug_must_be_lower_case_letters_digits_and_inner_hyphens(slug: str) -> None:
    with pytest.raises(RuleViolated) as raised:
        Tenant.register(slug, "Acme", 10)
    assert raised.value.field == "slug"


@pytest.mark.parametrize(
    ("name", "limit", "field"),
    [
        ("", 10, "name"),
        ("x" * 121, 10, "name"),
        ("Acme", 0, "seat_limit"),
        ("Acme", 1_000_001, "seat_limit"),
    ],
)
def test_name_and_seat_limit_are_checked(name: str, limit: int, field: str) -> None:
    with pytest.raises(RuleViolated) as raised:
        Tenant.register("acme", name, limit)
    assert raised.value.field == field


def test_renaming_to_the_same_name_records_nothing() -> None:
    tenant = Tenant.register("acme", "Acme", 10)
    tenant.collect_events()
    tenant.rename(" Acme ")
    assert tenant.collect_events() == []
    tenant.rename("Acme Corp")
    [renamed] = tenant.collect_events()
    assert isinstance(renamed, Tenant.Renamed)
    assert renamed.name == "Acme Corp"


def test_the_seat_limit_changes() -> None:
    tenant = Tenant.register("acme", "Acme", 10)
    tenant.change_seat_limit(20)
    assert tenant.seat_limit == 20
    assert tenant.version == 2


def test_suspend_needs_a_reason_and_an_active_tenant() -> None:
    tenant = Tenant.register("acme", "Acme", 10)
    with pytest.raises(RuleViolated):
        tenant.suspend("  ")
    tenant.suspend("unpaid")
    assert not tenant.is_active
    with pytest.raises(InvalidTransition):
        tenant.suspend("again")
    tenant.reactivate()
    assert tenant.is_active
    with pytest.raises(InvalidTransition):
        tenant.reactivate()


def test_a_tenant_is_rebuilt_from_its_events() -> None:
    tenant = Tenant.register("acme", "Acme", 10)
    tenant.rename("Acme Corp")
    tenant.suspend("audit")
    copy = None
    for event in tenant.collect_events():
        copy = event.mutate(copy)
    assert isinstance(copy, Tenant)
    assert (copy.name, copy.status, copy.version) == ("Acme Corp", TenantStatus.SUSPENDED, 3)


def test_a_tenant_client_takes_tenant_scopes_only() -> None:
    tenant_id = uuid.uuid4()
    with pytest.raises(RuleViolated) as raised:
        ApiClient.register(
            client_id="tc_1",
            tenant_id=tenant_id,
            name="x",
            scopes=(OPERATOR_SCOPE,),
            secret_hash="h",
        )
    assert raised.value.field == "scopes"
    with pytest.raises(RuleViolated):
        ApiClient.register(
            client_id="tc_1", tenant_id=tenant_id, name="x", scopes=(), secret_hash="h"
        )
    client = ApiClient.register(
        client_id="tc_1",
        tenant_id=tenant_id,
        name="x",
        scopes=("tenant:read", "tenant:read"),
        secret_hash="h",
    )
    assert client.scopes == ("tenant:read",)
    assert client.tenant_id == tenant_id


def test_an_operator_client_belongs_to_no_tenant() -> None:
    client = ApiClient.register(
        client_id="op_1", tenant_id=None, name="ops", scopes=(OPERATOR_SCOPE,), secret_hash="h"
    )
    assert client.tenant_id is None
    with pytest.raises(RuleViolated):
        ApiClient.register(
            client_id="op_2", tenant_id=None, name="ops", scopes=("tenant:read",), secret_hash="h"
        )


def test_a_client_is_revoked_once() -> None:
    client = ApiClient.register(
        client_id="tc_1", tenant_id=uuid.uuid4(), name="x", scopes=("tenant:read",), secret_hash="h"
    )
    client.revoke()
    assert client.status is ClientStatus.REVOKED
    with pytest.raises(InvalidTransition):
        client.revoke()
