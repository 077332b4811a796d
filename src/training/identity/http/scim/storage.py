"""The storage scim2-server serves from: each operation goes to Users or Groups.

scim2-server does the protocol (routing, validation, PATCH and PUT semantics, filters,
sorting, paging, ``attributes``, ``If-Match``); it hands the storage whole resources, and
hands PUT and PATCH alike to ``update`` with the resource as the client now wants it.
"""

from __future__ import annotations

from typing import Any, Union, cast

from scim2_models import (
    ForbiddenException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    ScimProvider,
    SearchRequest,
)
from scim2_server.storage import AsyncScimStorage, SearchPage

from training.identity.http.scim.call import current_call
from training.identity.http.scim.discovery import GroupMapping
from training.identity.http.scim.groups import COHORTS_ARE_SCHEDULED, CohortGroups, TeamGroups
from training.identity.http.scim.protocol import domain_errors, resource_order, user_lookup
from training.identity.http.scim.users import Users


class MemberDirectory(AsyncScimStorage):
    """Users are the tenant's members; Groups its teams or its cohorts."""

    def __init__(self, provider: ScimProvider) -> None:
        self.users = Users(provider)
        self.teams = TeamGroups(provider)
        self.cohorts = CohortGroups(provider)

    async def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        call = current_call()
        with domain_errors():
            if resource_type.name == "Group" and call.mapping is GroupMapping.COHORTS:
                return await self.cohorts.get(call, resource_id)
            if resource_type.name == "Group":
                return await self.teams.get(call, resource_id)
            return await self.users.get(call, resource_id)

    async def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        call = current_call()
        names = {resource_type.name for resource_type in resource_types}
        scim_filter = search_request.filter
        found: list[Resource[Any]] = []
        with domain_errors():
            if "User" in names:
                found += await self.users.search(call, user_lookup(scim_filter))
            if "Group" in names and call.mapping is GroupMapping.TEAMS:
                found += await self.teams.search(call)
            elif "Group" in names:
                found += await self.cohorts.search(call)
        if scim_filter is not None:
            if not scim_filter.models and found:
                models = tuple(dict.fromkeys(type(resource) for resource in found))
                bound = cast(Any, ScimFilter)[Union[models]]  # noqa: UP007
                scim_filter = bound(str(scim_filter))
            assert scim_filter is not None
            found = [resource for resource in found if scim_filter.match(resource)]
        ordered = search_request.sort(sorted(found, key=resource_order))
        start = search_request.start_index_0 or 0
        stop = search_request.stop_index_0
        return SearchPage(len(ordered), ordered[start:stop])

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        call = current_call()
        with domain_errors():
            if resource_type.name == "Group" and call.mapping is GroupMapping.COHORTS:
                raise ForbiddenException(detail=COHORTS_ARE_SCHEDULED)
            if resource_type.name == "Group":
                return await self.teams.provision(call, resource)
            return await self.users.provision(call, resource)

    async def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        """PUT and PATCH (scim2-server's ``update``): ``resource`` is what the client wants
        the user or group to be now; the member, team or cohort is reconciled with it."""
        call = current_call()
        with domain_errors():
            if resource_type.name == "Group" and call.mapping is GroupMapping.COHORTS:
                return await self.cohorts.reconcile(call, resource, expected_version)
            if resource_type.name == "Group":
                return await self.teams.reconcile(call, resource, expected_version)
            return await self.users.reconcile(call, resource, expected_version)

    async def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        call = current_call()
        with domain_errors():
            if resource_type.name == "Group" and call.mapping is GroupMapping.COHORTS:
                raise ForbiddenException(detail=COHORTS_ARE_SCHEDULED)
            if resource_type.name == "Group":
                await self.teams.disband(call, resource_id, expected_version)
            else:
                await self.users.deprovision(call, resource_id, expected_version)
