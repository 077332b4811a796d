"""SCIM Groups: the tenant's listed teams, or its cohorts (``TRAINING_SCIM_GROUPS``).

A team's members are the members whose team it is (by name); its version covers its own
revision and its members' versions. A cohort's members are the enrolled: adding one enrols
them, removing one withdraws them; cohorts themselves are scheduled in the service.
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

from litestar.concurrency import sync_to_thread
from scim2_models import MutabilityException, NotFoundException, Resource, ScimProvider

from training.cohorts.domain.cohorts import Cohort
from training.cohorts.handlers.enrolments import Enrol, Withdraw
from training.cohorts.views.projection import COHORTS
from training.identity.handlers.scim import listed_teams, tenant_cohort
from training.identity.http.scim.call import ScimCall
from training.identity.http.scim.discovery import GROUPS_SETTING
from training.identity.http.scim.protocol import (
    GROUP_SCHEMA,
    check_version,
    desired_members,
    parse_id,
    resource_of,
    version_tag,
)
from training.identity.http.scim.users import member_records
from training.identity.views import cohort_ids
from training.people.domain.teams import Team, Teams
from training.people.handlers.teams import DisbandTeam, ProvisionTeam
from training.people.views import MemberRecord

COHORTS_ARE_SCHEDULED = (
    f"{GROUPS_SETTING}=cohorts: cohorts are scheduled and ended in the service "
    "(POST /v1/cohorts); over SCIM a cohort's members are enrolled and withdrawn"
)
WITHDRAWN_BY_SCIM = "withdrawn by the identity provider (SCIM)"


def _member_entries(member_ids: list[UUID]) -> list[dict[str, str]]:
    """A Group's ``members``: references to Users."""
    return [{"value": str(m), "$ref": f"Users/{m}", "type": "User"} for m in member_ids]


class TeamGroups:
    """The tenant's listed teams as SCIM Groups."""

    def __init__(self, provider: ScimProvider) -> None:
        self.provider = provider

    # -- Reads

    async def get(self, call: ScimCall, resource_id: str | None) -> Resource[Any]:
        teams = await sync_to_thread(listed_teams, call.app, call.tenant_id)
        team = _listed_team(teams, resource_id)
        return self.resource(team, await member_records(call, team=team.name))

    async def search(self, call: ScimCall) -> list[Resource[Any]]:
        teams = await sync_to_thread(listed_teams, call.app, call.tenant_id)
        if teams is None or not teams.teams:
            return []
        by_name: dict[str, list[MemberRecord]] = {}
        for record in await member_records(call, team=None):
            if record.team:
                by_name.setdefault(record.team, []).append(record)
        return [self.resource(t, by_name.get(t.name, [])) for t in teams.teams.values()]

    def resource(self, team: Team, records: list[MemberRecord]) -> Resource[Any]:
        data: dict[str, Any] = {
            "schemas": [GROUP_SCHEMA],
            "id": str(team.team_id),
            "externalId": team.external_id,
            "displayName": team.name,
            "meta": {"resourceType": "Group", "version": _team_version(team, records)},
        }
        if records:
            data["members"] = _member_entries([r.member_id for r in records])
            data["meta"]["lastModified"] = max(r.updated_at for r in records)
        return resource_of(self.provider, "Group", data)

    async def _current(
        self, call: ScimCall, resource_id: str | None, expected_version: str | None
    ) -> tuple[Team, tuple[UUID, ...]]:
        """The team as it is now, and its members; 412 when it is not the version read."""
        teams = await sync_to_thread(listed_teams, call.app, call.tenant_id)
        team = _listed_team(teams, resource_id)
        records = await member_records(call, team=team.name)
        check_version(expected_version, _team_version(team, records), "group")
        return team, tuple(record.member_id for record in records)

    # -- Writes

    async def provision(self, call: ScimCall, resource: Resource[Any]) -> Resource[Any]:
        """A new group: the team is listed, with the members it names."""
        command = ProvisionTeam(
            name=str(getattr(resource, "display_name", None) or ""),
            external_id=getattr(resource, "external_id", None),
            members=tuple(desired_members(resource)),
        )
        team: Team = await call.run(command)
        return await self.get(call, str(team.team_id))

    async def reconcile(
        self, call: ScimCall, resource: Resource[Any], expected_version: str | None
    ) -> Resource[Any]:
        """PUT and PATCH: the team renamed as ``resource`` says, and its members made the
        ones it lists."""
        team, current = await self._current(call, resource.id, expected_version)
        external_id = getattr(resource, "external_id", None)
        if external_id is None and call.method == "PUT":
            external_id = team.external_id  # a PUT that omits it does not assert it
        command = ProvisionTeam(
            name=str(getattr(resource, "display_name", None) or ""),
            external_id=external_id,
            members=tuple(desired_members(resource)),
            current_members=current,
            team_id=team.team_id,
            expected_revision=team.revision,
        )
        await call.run(command)
        return await self.get(call, str(team.team_id))

    async def disband(self, call: ScimCall, resource_id: str, expected_version: str | None) -> None:
        """DELETE: the team is no longer listed, and its members have no team."""
        team, current = await self._current(call, resource_id, expected_version)
        await call.run(DisbandTeam(team.team_id, current, team.revision))


class CohortGroups:
    """The tenant's cohorts as SCIM Groups: their members are the enrolled."""

    def __init__(self, provider: ScimProvider) -> None:
        self.provider = provider

    async def get(self, call: ScimCall, resource_id: str | None) -> Resource[Any]:
        return self.resource(await self._cohort(call, resource_id))

    async def search(self, call: ScimCall) -> list[Resource[Any]]:
        async with call.read_model(COHORTS.info) as conn:
            ids = await cohort_ids(conn)
        cohorts = [
            await sync_to_thread(tenant_cohort, call.app, call.tenant_id, cohort_id)
            for cohort_id in ids
        ]
        return [self.resource(cohort) for cohort in cohorts if cohort is not None]

    async def _cohort(self, call: ScimCall, resource_id: str | None) -> Cohort:
        cohort_id = parse_id(resource_id)
        found = (
            await sync_to_thread(tenant_cohort, call.app, call.tenant_id, cohort_id)
            if cohort_id
            else None
        )
        if found is None:
            raise NotFoundException(detail=f"Group {resource_id!r} not found")
        return found

    def resource(self, cohort: Cohort) -> Resource[Any]:
        data: dict[str, Any] = {
            "schemas": [GROUP_SCHEMA],
            "id": str(cohort.id),
            "displayName": cohort.name,
            "meta": {
                "resourceType": "Group",
                "created": cohort.created_on,
                "lastModified": cohort.modified_on,
                "version": version_tag(cohort.version),
            },
        }
        if cohort.enrolled:
            data["members"] = _member_entries(list(cohort.enrolled))
        return resource_of(self.provider, "Group", data)

    async def reconcile(
        self, call: ScimCall, resource: Resource[Any], expected_version: str | None
    ) -> Resource[Any]:
        """PUT and PATCH: adding a member enrols them (or puts them on the waitlist when the
        cohort is full); removing one withdraws them. The cohort's name and schedule are the
        service's: a different displayName is refused."""
        cohort = await self._cohort(call, resource.id)
        check_version(expected_version, version_tag(cohort.version), "group")
        if getattr(resource, "display_name", None) not in (None, cohort.name):
            raise MutabilityException(detail="a cohort is named in the service, not over SCIM")
        desired = desired_members(resource)
        current = set(cohort.enrolled) | set(cohort.waitlist)
        joining = tuple(sorted(desired - current))
        if joining:
            await call.run(Enrol(cohort.id, joining))
        for member_id in sorted(set(cohort.enrolled) - desired):
            await call.run(Withdraw(cohort.id, member_id, WITHDRAWN_BY_SCIM))
        return self.resource(await self._cohort(call, str(cohort.id)))


def _listed_team(teams: Teams | None, resource_id: str | None) -> Team:
    """The listed team ``resource_id`` names; 404 when there is none."""
    team_id = parse_id(resource_id)
    team = teams.teams.get(team_id) if teams is not None and team_id else None
    if team is None:
        raise NotFoundException(detail=f"Group {resource_id!r} not found")
    return team


def _team_version(team: Team, records: list[MemberRecord]) -> str:
    """A team's revision and the versions of its members (whose team is its name)."""
    digest = hashlib.sha256(f"{team.team_id}:{team.revision}".encode())
    for record in sorted(records, key=lambda r: r.member_id):
        digest.update(f"|{record.member_id}:{record.version}".encode())
    return version_tag(f"{team.revision}-{digest.hexdigest()[:16]}")
