"""Team use cases: form, revise and disband a listed team, moving its members with it.

A team's members are the members whose ``team`` is its name. The caller says which members
the team has now (read from the members view) and which it should have; one command then
changes the team and every member concerned in one transaction, so a team and its members
never disagree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

from training.core.bus import Handler, UnitOfWork
from training.core.errors import NotFound, RuleViolated, StaleVersion
from training.people.domain.members import Member
from training.people.domain.teams import Team, Teams


@dataclass(frozen=True)
class ProvisionTeam:
    """Forms the team (``team_id`` None) or revises it, and sets its members."""

    name: str
    external_id: str | None
    members: tuple[UUID, ...]
    current_members: tuple[UUID, ...] = ()
    team_id: UUID | None = None
    expected_revision: int | None = None


@dataclass(frozen=True)
class DisbandTeam:
    team_id: UUID
    current_members: tuple[UUID, ...]
    expected_revision: int | None = None


def teams_of(uow: UnitOfWork, tenant_id: UUID) -> Teams:
    return uow.get_or_add(Teams, Teams.create_id(tenant_id), lambda: Teams.open(tenant_id))


def _member_of_tenant(uow: UnitOfWork, member_id: UUID) -> Member:
    try:
        return uow.get(Member, member_id)
    except NotFound:
        raise RuleViolated(
            f"no member of this tenant has id {member_id}", field="members"
        ) from None


def _move_to_team(uow: UnitOfWork, member_id: UUID, team: str | None) -> None:
    member = _member_of_tenant(uow, member_id)
    member.change_position(team, member.job_title)


def _check_revision(team: Team, expected: int | None) -> None:
    if expected is not None and team.revision != expected:
        raise StaleVersion(expected, team.revision)


def provision_team(command: ProvisionTeam, uow: UnitOfWork) -> Team:
    tenant_id = uow.require_tenant()
    teams = teams_of(uow, tenant_id)
    if command.team_id is None:
        team = teams.form(uuid.uuid4(), command.name, command.external_id)
    else:
        _check_revision(teams.team(command.team_id), command.expected_revision)
        team = teams.revise(command.team_id, command.name, command.external_id)
    desired = set(command.members)
    for member_id in sorted(set(command.current_members) - desired):
        _move_to_team(uow, member_id, None)
    # Joining this team leaves any other: a member has one team. A rename reaches here too.
    for member_id in sorted(desired):
        _move_to_team(uow, member_id, team.name)
    return teams.team(team.team_id)


def disband_team(command: DisbandTeam, uow: UnitOfWork) -> Team:
    tenant_id = uow.require_tenant()
    teams = teams_of(uow, tenant_id)
    _check_revision(teams.team(command.team_id), command.expected_revision)
    for member_id in sorted(set(command.current_members)):
        _move_to_team(uow, member_id, None)
    return teams.disband(command.team_id)


HANDLERS: dict[type, Handler] = {ProvisionTeam: provision_team, DisbandTeam: disband_team}
