"""People use cases: register, change and deactivate members; erase their personal data.

An email belongs to one member of a tenant: a registration or a change to an email another
member holds is refused (``AlreadyExists`` on ``email``). The check here gives the clear
refusal; the unique constraint on the stored emails decides a race, after which the bus runs
the command again and it is refused here.

So does an external id: every command that gives a member one (a registration, an import
batch, a change) writes that id's ``ExternalIdKey``, so two of them racing for one id
conflict in the event store and the one run again is refused (``AlreadyExists`` on
``external_id``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from training.cohorts.handlers.participation import reopen_participation, withdraw_from_every_cohort
from training.core.access import Role
from training.core.aggregate import TrainingAggregate, stable_id
from training.core.bus import Handler, UnitOfWork
from training.core.context import ActorKind
from training.core.errors import AlreadyExists, Forbidden, NotFound, RuleViolated
from training.core.personal_data import PersonalData
from training.people.domain.external_ids import ExternalIdKey
from training.people.domain.members import (
    Member,
    check_display_name,
    check_email,
    check_external_id,
)
from training.people.queries import seat_roster
from training.tenancy.domain import Tenant

A = TypeVar("A", bound=TrainingAggregate)

EMAIL_TAKEN = "another member of this tenant has this email"

# Deeper reporting lines than this are treated as a data error rather than walked forever.
MAX_REPORTING_DEPTH = 64


@dataclass(frozen=True)
class RegisterMember:
    external_id: str
    display_name: str
    email: str | None
    roles: tuple[Role, ...]
    manager_id: UUID | None = None
    team: str | None = None
    job_title: str | None = None
    # Identity providers (SCIM) may name a manager who is already deactivated.
    deactivated_manager_allowed: bool = False
    # The identity provider's subject of a member provisioned at sign-in (personal data).
    sso_subject: str | None = None


@dataclass(frozen=True)
class UpdateMember:
    """``None`` leaves a field as it is; ``clear_manager`` removes the manager link."""

    member_id: UUID
    display_name: str | None = None
    email: str | None = None
    roles: tuple[Role, ...] | None = None
    manager_id: UUID | None = None
    clear_manager: bool = False
    team: str | None = None
    job_title: str | None = None
    external_id: str | None = None
    deactivated_manager_allowed: bool = False
    expected_version: int | None = None


@dataclass(frozen=True)
class DeactivateMember:
    member_id: UUID
    reason: str
    expected_version: int | None = None


@dataclass(frozen=True)
class ReactivateMember:
    member_id: UUID
    expected_version: int | None = None


@dataclass(frozen=True)
class ErasePersonalData:
    member_id: UUID


@dataclass(frozen=True)
class GiveOpaqueExternalId:
    """Replaces an external id that holds personal data (an email, from before the rule that
    refuses them) with a generated one. The old id is not freed on its ``ExternalIdKey``
    (that would write it into another event); it leads nowhere because the member no longer
    holds it (``member_with_external_id``). ``sso_subject`` keeps the identity provider's
    subject that was part of the old id with the personal data."""

    member_id: UUID
    external_id: str
    sso_subject: str | None = None


@dataclass(frozen=True)
class ChooseLanguage:
    """The signed-in person chooses the language they read the service in."""

    language: str


@dataclass(frozen=True)
class MemberSnapshot:
    member_id: UUID
    external_id: str
    roles: tuple[Role, ...]
    manager_id: UUID | None
    team: str | None
    job_title: str | None
    status: str
    erased: bool
    version: int
    language: str | None = None

    @classmethod
    def of(cls, member: Member) -> MemberSnapshot:
        return cls(
            member.id,
            member.external_id,
            member.roles,
            member.manager_id,
            member.team,
            member.job_title,
            str(member.status),
            member.erased,
            member.version,
            member.language,
        )


def take_seats(uow: UnitOfWork, tenant_id: UUID, member_ids: tuple[UUID, ...]) -> None:
    tenant = uow.get(Tenant, tenant_id)
    seat_roster(uow, tenant_id).take(member_ids, tenant.seat_limit)


def check_manager(
    uow: UnitOfWork, member_id: UUID, manager_id: UUID, *, deactivated_allowed: bool = False
) -> None:
    """The manager is an active member of the tenant and the line does not loop back.

    ``deactivated_allowed`` lets a deactivated (not erased) member be the manager: an
    identity provider's reporting lines may point at someone who already left, a state a
    member reaches anyway when their manager is deactivated after them.
    """
    try:
        manager = uow.get(Member, manager_id)
    except NotFound:
        raise RuleViolated("no member of this tenant has that id", field="manager_id") from None
    if manager.erased:
        raise RuleViolated("the manager's record is closed", field="manager_id")
    if not manager.is_active and not deactivated_allowed:
        raise RuleViolated("the manager is deactivated", field="manager_id")
    current: Member | None = manager
    for _ in range(MAX_REPORTING_DEPTH):
        if current is None or current.manager_id is None:
            return
        if current.manager_id == member_id:
            raise RuleViolated(
                "the reporting line would loop: the member already manages this manager",
                field="manager_id",
            )
        current = uow.get(Member, current.manager_id)
    raise RuleViolated("the reporting line is too deep", field="manager_id")


def external_id_key(uow: UnitOfWork, tenant_id: UUID, external_id: str) -> ExternalIdKey | None:
    """The key of one external id of the tenant, if any command ever wrote it."""
    try:
        return uow.get(ExternalIdKey, ExternalIdKey.create_id(tenant_id, external_id))
    except NotFound:  # its id derives from the external id: not found means it has none
        return None


def external_id_keys(
    uow: UnitOfWork, tenant_id: UUID, external_ids: Sequence[str]
) -> dict[str, ExternalIdKey]:
    """The keys of those of ``external_ids`` that have one, read in one query (a batch)."""
    wanted = {ExternalIdKey.create_id(tenant_id, e): e for e in dict.fromkeys(external_ids)}
    return {wanted[key_id]: key for key_id, key in uow.get_many(ExternalIdKey, wanted).items()}


def members_loaded(uow: UnitOfWork, member_ids: Sequence[UUID]) -> frozenset[UUID]:
    """Loads those of ``member_ids`` that are members of the caller's tenant into the unit of
    work, with one query (a batch); answers which they are."""
    uow.require_tenant()
    return frozenset(uow.get_many(Member, member_ids))


def lead_of(tenant_id: UUID, external_id: str, key: ExternalIdKey | None) -> UUID | None:
    """The member id an external id leads to (that member may not exist yet), or None when
    it was given up and its derived id belongs to the member who gave it up."""
    return key.member_id if key is not None else Member.create_id(tenant_id, external_id)


def holder_of(uow: UnitOfWork, tenant_id: UUID, external_id: str) -> UUID | None:
    """The existing member an external id leads to, if any."""
    lead = lead_of(tenant_id, external_id, external_id_key(uow, tenant_id, external_id))
    return lead if lead is not None and uow.exists(lead) else None


def _external_id_taken(external_id: str) -> AlreadyExists:
    return AlreadyExists(f"a member with external id {external_id!r} exists", field="external_id")


def id_for_new_member(uow: UnitOfWork, tenant_id: UUID, external_id: str) -> UUID:
    """The id a member registered with ``external_id`` gets, claimed on the id's key;
    AlreadyExists when taken.

    It is the id derived from the external id unless a member who moved to another external
    id holds that one: then a new id. Either way the claim writes the id's key, as a change
    of another member to that id does, so the two racing for one id conflict and the one
    run again finds it taken.
    """
    key = external_id_key(uow, tenant_id, external_id)
    lead = lead_of(tenant_id, external_id, key)
    if lead is not None and uow.exists(lead):
        raise _external_id_taken(external_id)
    member_id = lead or reissued_id(tenant_id, external_id, key)
    assign_external_id(uow, tenant_id, external_id, member_id, key)
    return member_id


def reissued_id(tenant_id: UUID, external_id: str, key: ExternalIdKey | None) -> UUID:
    """A new member id for an external id whose derived id belongs to the member who gave
    the external id up. The key's version makes each reissue a new id ("key" keeps them
    apart from the ids reissued while the tenant-wide ``ExternalIds`` kept the ids)."""
    version = key.version if key is not None else 0
    return stable_id("tenants", tenant_id, "members", external_id, "reissued", "key", version)


def assign_external_id(
    uow: UnitOfWork,
    tenant_id: UUID,
    external_id: str,
    member_id: UUID | None,
    key: ExternalIdKey | None,
) -> None:
    """Writes where the external id leads now (``key``: its key as loaded, None when it has
    none yet: then it is opened, and saved with the rest)."""
    if key is None:
        uow.add(ExternalIdKey.claim(tenant_id, external_id, member_id))
    else:
        key.assign(member_id)


def change_external_id(uow: UnitOfWork, member: Member, external_id: str) -> None:
    """Moves the member to another external id, freeing the old one."""
    tenant_id = uow.require_tenant()
    external_id = check_external_id(external_id)
    if external_id == member.external_id:
        return
    if holder_of(uow, tenant_id, external_id) not in (None, member.id):
        raise _external_id_taken(external_id)
    old = member.external_id
    assign_external_id(uow, tenant_id, old, None, external_id_key(uow, tenant_id, old))
    new_key = external_id_key(uow, tenant_id, external_id)
    assign_external_id(uow, tenant_id, external_id, member.id, new_key)
    member.change_external_id(external_id)


def checked_personal_data(
    display_name: str | None, email: str | None, sso_subject: str | None = None
) -> PersonalData:
    return PersonalData(
        check_display_name(display_name) if display_name is not None else None,
        check_email(email) if email is not None else None,
        sso_subject,
    )


def check_email_free(uow: UnitOfWork, email: str | None, member_id: UUID) -> None:
    """Refuses an email another member of the tenant holds (``member_id`` may hold it)."""
    if email is None:
        return
    holder = uow.email_holders([email]).get(email)
    if holder is not None and holder != member_id:
        raise AlreadyExists(EMAIL_TAKEN, field="email")


def register_member(command: RegisterMember, uow: UnitOfWork) -> MemberSnapshot:
    tenant_id = uow.require_tenant()
    member_id = id_for_new_member(uow, tenant_id, check_external_id(command.external_id))
    data = checked_personal_data(command.display_name, command.email, command.sso_subject)
    check_email_free(uow, data.email, member_id)
    member = Member.register(
        tenant_id=tenant_id,
        member_id=member_id,
        external_id=command.external_id,
        roles=command.roles,
        manager_id=command.manager_id,
        team=command.team,
        job_title=command.job_title,
    )
    if command.manager_id is not None:
        check_manager(
            uow,
            member.id,
            command.manager_id,
            deactivated_allowed=command.deactivated_manager_allowed,
        )
    take_seats(uow, tenant_id, (member.id,))
    uow.add(member)
    uow.keep_personal_data(member, data)
    return MemberSnapshot.of(member)


def update_member(command: UpdateMember, uow: UnitOfWork) -> MemberSnapshot:
    uow.require_tenant()
    member = uow.get(Member, command.member_id, expected_version=command.expected_version)
    if command.external_id is not None:
        change_external_id(uow, member, command.external_id)
    if command.roles is not None:
        member.change_roles(command.roles)
    if command.clear_manager:
        member.change_manager(None)
    elif command.manager_id is not None:
        check_manager(
            uow,
            member.id,
            command.manager_id,
            deactivated_allowed=command.deactivated_manager_allowed,
        )
        member.change_manager(command.manager_id)
    if command.team is not None or command.job_title is not None:
        member.change_position(
            command.team if command.team is not None else member.team,
            command.job_title if command.job_title is not None else member.job_title,
        )
    if command.display_name is not None or command.email is not None:
        data = checked_personal_data(command.display_name, command.email)
        check_email_free(uow, data.email, member.id)
        changed = [
            name
            for name, value in (("display_name", data.display_name), ("email", data.email))
            if value is not None
        ]
        member.note_personal_data_updated(tuple(changed))
        uow.keep_personal_data(member, data)
    return MemberSnapshot.of(member)


def deactivate_member(command: DeactivateMember, uow: UnitOfWork) -> MemberSnapshot:
    tenant_id = uow.require_tenant()
    member = uow.get(Member, command.member_id, expected_version=command.expected_version)
    reason = member.deactivate(command.reason)
    if not member.erased:
        uow.keep_personal_data(member, PersonalData(None, None, deactivation_reason=reason))
    seat_roster(uow, tenant_id).release((member.id,))
    withdraw_from_every_cohort(uow, tenant_id, member.id)
    return MemberSnapshot.of(member)


def reactivate_member(command: ReactivateMember, uow: UnitOfWork) -> MemberSnapshot:
    tenant_id = uow.require_tenant()
    member = uow.get(Member, command.member_id, expected_version=command.expected_version)
    member.reactivate()
    take_seats(uow, tenant_id, (member.id,))
    reopen_participation(uow, tenant_id, member.id)
    return MemberSnapshot.of(member)


def erase_personal_data(command: ErasePersonalData, uow: UnitOfWork) -> MemberSnapshot:
    uow.require_tenant()
    member = uow.get(Member, command.member_id)
    member.erase()
    uow.erase_personal_data(member)
    return MemberSnapshot.of(member)


def give_opaque_external_id(command: GiveOpaqueExternalId, uow: UnitOfWork) -> MemberSnapshot:
    tenant_id = uow.require_tenant()
    member = uow.get(Member, command.member_id)
    external_id = check_external_id(command.external_id)
    if holder_of(uow, tenant_id, external_id) is not None:
        raise _external_id_taken(external_id)
    key = external_id_key(uow, tenant_id, external_id)
    assign_external_id(uow, tenant_id, external_id, member.id, key)
    member.replace_external_id(external_id)
    if command.sso_subject is not None and not member.erased:
        uow.keep_personal_data(member, PersonalData(None, None, sso_subject=command.sso_subject))
    return MemberSnapshot.of(member)


def choose_language(command: ChooseLanguage, uow: UnitOfWork) -> MemberSnapshot:
    uow.require_tenant()
    actor = uow.context.actor
    if actor.kind is not ActorKind.MEMBER:
        raise Forbidden("a language is chosen by the person, signed in")
    member = uow.get(Member, UUID(actor.id))
    member.choose_language(command.language)
    return MemberSnapshot.of(member)


HANDLERS: dict[type, Handler] = {
    RegisterMember: register_member,
    UpdateMember: update_member,
    DeactivateMember: deactivate_member,
    ReactivateMember: reactivate_member,
    ErasePersonalData: erase_personal_data,
    GiveOpaqueExternalId: give_opaque_external_id,
    ChooseLanguage: choose_language,
}
