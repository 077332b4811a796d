"""SCIM provisioning, as commands: what a provisioned user or group asks of our members.

The SCIM edge (``training.identity.http.scim``) reads and writes SCIM resources; this module decides
which existing commands bring a member, or the members of a team, to the state a SCIM
client asks for. It holds no SCIM types, so the rules read like the rest of the application:

- a user is a member: ``userName`` is the email, ``externalId`` the HRIS or IdP key (an
  opaque one the service generates when the client sends none: an email address is never
  an external id, ADR 0020), ``displayName`` and ``name.formatted`` the display name,
  ``title`` the job title, the enterprise ``department`` the team and ``manager`` the manager;
- ``active`` is the member's status; a new user is an engineer;
- a group is a listed team (``training.people.handlers.teams``): its members are the members
  whose team it is.

The member id derives from the external id the member was registered with and stays when
the external id changes (its ``ExternalIdKey`` keeps where each changed one leads). A desired
state runs as several commands (reactivate, update, deactivate), each on the version the
previous one left, so a concurrent writer is still caught.

The queries at the end read the write model for the SCIM edge (a member, the listed teams, a
cohort, the newest event's position): what a client wrote is there as soon as it returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from training.cohorts.domain.cohorts import Cohort
from training.core.access import Role
from training.core.application import TrainingApplication
from training.people.domain.members import (
    Member,
    check_email,
    generated_external_id,
    is_generated_external_id,
)
from training.people.domain.teams import Teams
from training.people.handlers.members import (
    DeactivateMember,
    ReactivateMember,
    RegisterMember,
    UpdateMember,
)

# Roles of a member a SCIM client provisions; roles are then managed in the service.
PROVISIONED_ROLES: tuple[Role, ...] = (Role.ENGINEER,)
DEACTIVATED_BY_SCIM = "deactivated by the identity provider (SCIM)"
DELETED_BY_SCIM = "deleted by the identity provider (SCIM)"


@dataclass(frozen=True)
class MemberView:
    """A member as SCIM shows it: the aggregate's fields and the personal data beside it."""

    member_id: UUID
    external_id: str
    display_name: str
    email: str | None
    active: bool
    manager_id: UUID | None
    team: str | None
    job_title: str | None
    version: int

    @property
    def user_name(self) -> str:
        """The email; a member registered without one shows its external id."""
        return self.email or self.external_id

    @property
    def own_external_id(self) -> str | None:
        """The external id, unless it is one the service generated (the client sent none)."""
        return None if is_generated_external_id(self.external_id) else self.external_id

    @property
    def own_display_name(self) -> str | None:
        """The display name, unless it is only the default a member gets: their email."""
        return None if self.display_name == self.email else self.display_name


@dataclass(frozen=True)
class DesiredUser:
    """The state a SCIM client asks for. ``None`` clears title, team and manager.

    An external id or display name that is ``None`` was either removed (a PATCH: it goes back
    to its default, a generated external id and the email as display name) or not asserted
    (a PUT, RFC 7644 §3.5.1: it is kept), as ``omitted_is_removed`` says. A member whose
    display name is the default follows their email when it changes. ``active`` None keeps
    the status.
    """

    user_name: str
    external_id: str | None = None
    display_name: str | None = None
    name_formatted: str | None = None
    active: bool | None = None
    job_title: str | None = None
    team: str | None = None
    manager_id: UUID | None = None
    omitted_is_removed: bool = False


def registration(desired: DesiredUser) -> tuple[RegisterMember, bool]:
    """The command that registers the user, and whether it must be deactivated after."""
    email = check_email(desired.user_name)
    command = RegisterMember(
        external_id=desired.external_id or generated_external_id(),
        display_name=desired.display_name or desired.name_formatted or email,
        email=email,
        roles=PROVISIONED_ROLES,
        manager_id=desired.manager_id,
        team=desired.team,
        job_title=desired.job_title,
        deactivated_manager_allowed=True,
    )
    return command, desired.active is False


def new_email(current: MemberView, desired: DesiredUser) -> str | None:
    """The email the member gets, or None when the userName did not change."""
    if desired.user_name.casefold() == current.user_name.casefold():
        return None
    return check_email(desired.user_name)


def _defaulted(
    current: str, own: str | None, wanted: str | None, email: str, desired: DesiredUser
) -> str:
    """The value a defaulted attribute (external id, display name) should have."""
    if wanted is not None:
        return wanted
    if desired.omitted_is_removed or own is None:
        return email
    return current


def user_changes(
    current: MemberView, desired: DesiredUser
) -> tuple[ReactivateMember | None, UpdateMember | None, DeactivateMember | None]:
    """The commands that bring ``current`` to ``desired``, in the order they must run.

    A reactivation comes first (it may find no free seat, and then nothing else changed);
    a deactivation comes last (a refused change then leaves the member as they were).
    Each command's expected version is filled in by the caller as the previous one returns.
    """
    email = new_email(current, desired)
    email_after = email or current.user_name
    wanted_name = None
    if desired.display_name is not None and desired.display_name != current.display_name:
        wanted_name = desired.display_name
    elif desired.name_formatted is not None and desired.name_formatted != current.display_name:
        wanted_name = desired.name_formatted
    elif desired.display_name is not None or desired.name_formatted is not None:
        wanted_name = current.display_name
    display_name = _defaulted(
        current.display_name, current.own_display_name, wanted_name, email_after, desired
    )
    external_id = _external_id_after(current, desired)
    team = _text_change(current.team, desired.team)
    job_title = _text_change(current.job_title, desired.job_title)
    manager_changes = desired.manager_id != current.manager_id
    update = UpdateMember(
        current.member_id,
        display_name=display_name if display_name != current.display_name else None,
        email=email,
        manager_id=desired.manager_id if manager_changes else None,
        clear_manager=manager_changes and desired.manager_id is None,
        team=team,
        job_title=job_title,
        external_id=external_id if external_id != current.external_id else None,
        deactivated_manager_allowed=True,
    )
    reactivate = None
    deactivate = None
    if desired.active is True and not current.active:
        reactivate = ReactivateMember(current.member_id)
    elif desired.active is False and current.active:
        deactivate = DeactivateMember(current.member_id, DEACTIVATED_BY_SCIM)
    unchanged = UpdateMember(current.member_id, deactivated_manager_allowed=True)
    return reactivate, None if update == unchanged else update, deactivate


def _external_id_after(current: MemberView, desired: DesiredUser) -> str:
    """The client's external id; else a generated one stays, and a removed one of the
    client's gives way to a generated one (a PUT that omits it keeps it)."""
    if desired.external_id is not None:
        return desired.external_id
    if current.own_external_id is not None and desired.omitted_is_removed:
        return generated_external_id()
    return current.external_id


def _text_change(current: str | None, desired: str | None) -> str | None:
    """What ``UpdateMember`` takes to move ``current`` to ``desired``: ``None`` leaves the
    field alone, ``""`` clears it."""
    wanted = (desired or "").strip() or None
    if wanted == current:
        return None
    return wanted or ""


# Queries on the write model.


def provisioned_member(app: TrainingApplication, tenant_id: UUID, member_id: UUID) -> Member | None:
    """The tenant's member, unless erased (an erased member is gone from SCIM)."""
    try:
        member: object = app.repository.get(member_id)
    except AggregateNotFoundError:
        return None
    if not isinstance(member, Member) or member.tenant_id != tenant_id or member.erased:
        return None
    return member


def listed_teams(app: TrainingApplication, tenant_id: UUID) -> Teams | None:
    """The tenant's listed teams, if it ever listed one."""
    try:
        teams: object = app.repository.get(Teams.create_id(tenant_id))
    except AggregateNotFoundError:
        return None
    if not isinstance(teams, Teams) or teams.tenant_id != tenant_id:
        return None
    return teams


def tenant_cohort(app: TrainingApplication, tenant_id: UUID, cohort_id: UUID) -> Cohort | None:
    """The tenant's cohort (another tenant's is simply not found)."""
    try:
        cohort: object = app.repository.get(cohort_id)
    except AggregateNotFoundError:
        return None
    if not isinstance(cohort, Cohort) or cohort.tenant_id != tenant_id:
        return None
    return cohort


def newest_position(app: TrainingApplication) -> int:
    """The position of the newest event stored, 0 when there is none: what a read model must
    hold for a SCIM client to read its own writes."""
    return app.recorder.max_notification_id() or 0
