"""Members and the seat roster, without infrastructure."""

from __future__ import annotations

import uuid

import pytest

from training.core.access import Role, Scope, scopes_of
from training.core.errors import InvalidTransition, RuleViolated
from training.people.domain.members import (
    Member,
    MemberStatus,
    check_display_name,
    check_email,
    check_optional_text,
)
from training.people.domain.seats import SeatLimitReached, SeatRoster

TENANT = uuid.uuid4()


def member(external_id: str = "E1", **kwargs: object) -> Member:
    return Member.register(
        tenant_id=TENANT, external_id=external_id, roles=(Role.ENGINEER,), **kwargs
    )  # type: ignore[arg-type]


def test_a_member_id_comes_from_the_tenant_and_external_id() -> None:
    assert member("E1").id == Member.create_id(TENANT, "E1")
    assert member("E1").id != Member.create_id(uuid.uuid4(), "E1")


def test_a_member_needs_a_role_and_a_sane_external_id() -> None:
    with pytest.raises(RuleViolated) as raised:
        Member.register(tenant_id=TENANT, external_id="E1", roles=())
    assert raised.value.field == "roles"
    with pytest.raises(RuleViolated) as raised:
        Member.register(tenant_id=TENANT, external_id="has space", roles=(Role.ENGINEER,))
    assert raised.value.field == "external_id"


def test_a_member_cannot_manage_themselves() -> None:
    with pytest.raises(RuleViolated):
        member("E1", manager_id=Member.create_id(TENANT, "E1"))
    someone = member("E2")
    with pytest.raises(RuleViolated):
        someone.change_manager(someone.id)


def test_unchanged_values_record_nothing() -> None:
    someone = member("E3", team="Core", job_title="Engineer")
    someone.collect_events()
    someone.change_roles((Role.ENGINEER, Role.ENGINEER))
    someone.change_position(" Core ", "Engineer")
    someone.change_manager(None)
    assert someone.collect_events() == []


def test_deactivation_reactivation_and_erasure() -> None:
    someone = member()
    with pytest.raises(RuleViolated):
        someone.deactivate("")
    someone.deactivate("left the company")
    assert someone.status is MemberStatus.DEACTIVATED
    with pytest.raises(InvalidTransition):
        someone.deactivate("again")
    someone.erase()
    with pytest.raises(InvalidTransition):
        someone.reactivate()
    with pytest.raises(InvalidTransition):
        someone.change_roles((Role.MANAGER,))
    with pytest.raises(InvalidTransition):
        someone.erase()


def test_no_personal_data_in_any_member_event() -> None:
    someone = member()
    someone.note_personal_data_updated(("email", "display_name"))
    someone.erase()
    for event in someone.collect_events():
        fields = set(vars(event))
        assert not fields & {"display_name", "email", "name"}, type(event).__name__


def test_the_roster_holds_the_seat_limit() -> None:
    roster = SeatRoster.open(TENANT)
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    roster.take((a, b), seat_limit=3)
    with pytest.raises(SeatLimitReached) as raised:
        roster.take((c, d), seat_limit=3)
    assert "1 more" in raised.value.detail
    roster.take((c, c), seat_limit=3)  # one member named twice takes one seat
    assert roster.free(3) == 0
    roster.release((a,))
    assert roster.free(3) == 1
    assert roster.taken == 2


def test_the_roster_counts_seats_without_keeping_the_members() -> None:
    """Its state is the same size at any number of members: loading and copying it costs
    the same in a tenant of ten members or a hundred thousand."""
    roster = SeatRoster.open(TENANT)
    before = set(vars(roster))
    for _ in range(100):
        roster.take(tuple(uuid.uuid4() for _ in range(100)), seat_limit=20_000)
    roster.release(tuple(uuid.uuid4() for _ in range(10)))
    assert roster.taken == 9_990
    assert set(vars(roster)) <= before | {"_pending_events"}
    assert all(not isinstance(v, set | dict | list) or len(v) < 200 for v in vars(roster).values())


def test_a_lowered_seat_limit_stops_new_seats_only() -> None:
    roster = SeatRoster.open(TENANT)
    roster.take(tuple(uuid.uuid4() for _ in range(5)), seat_limit=5)
    assert roster.free(3) == 0
    with pytest.raises(SeatLimitReached):
        roster.take((uuid.uuid4(),), seat_limit=3)


@pytest.mark.parametrize("email", ["a@b.co", "First.Last+tag@example.org"])
def test_emails_are_normalised(email: str) -> None:
    assert check_email(email) == email.lower()


@pytest.mark.parametrize("email", ["", "no-at", "a@b", "a@@b.co", "a b@c.de"])
def test_bad_emails_are_refused(email: str) -> None:
    with pytest.raises(RuleViolated):
        check_email(email)


def test_text_with_a_nul_character_is_refused() -> None:
    # Imports and SCIM reach these checks directly; PostgreSQL would refuse the text later.
    for check, field in (
        (lambda: check_display_name("Ada\x00"), "display_name"),
        (lambda: check_optional_text("Core\x00", "team"), "team"),
        (lambda: check_email("a\x00@example.com"), "email"),
    ):
        with pytest.raises(RuleViolated) as refused:
            check()
        assert refused.value.field == field


def test_roles_grant_scopes() -> None:
    assert str(Scope.MEMBERS_WRITE) in scopes_of((Role.HR_MANAGER,))
    assert str(Scope.MEMBERS_WRITE) not in scopes_of((Role.ENGINEER, Role.MANAGER))
    assert scopes_of((Role.TENANT_ADMIN,)) == frozenset(str(s) for s in Scope)


def registered(external_id: str) -> Member:
    person = member(external_id)
    person.collect_events()
    return person


def test_a_person_chooses_a_language_the_service_speaks() -> None:
    member = registered("L1")
    member.choose_language("zh-Hans")
    assert member.language == "zh-Hans"
    chosen = [e for e in member.collect_events() if isinstance(e, Member.LanguageChosen)]
    assert [e.language for e in chosen] == ["zh-Hans"]
    member.choose_language("zh-Hans")  # the same again records nothing
    assert member.collect_events() == []
    with pytest.raises(RuleViolated) as raised:
        member.choose_language("fr")
    assert raised.value.field == "language"


def test_an_erased_person_chooses_nothing() -> None:
    member = registered("L2")
    member.erase()
    with pytest.raises(InvalidTransition):
        member.choose_language("en")
