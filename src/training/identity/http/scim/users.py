"""SCIM Users: the tenant's members.

One user is read from the event store (the aggregate, with the personal data written in the
same transaction), so a write is visible as soon as it was answered; a listing reads the
members read model once it holds every event stored so far. Writes go through the command
bus: ``training.identity.handlers.scim`` decides which commands bring a member to the state
the client asks for. ``meta.version``, and so the ``ETag``, is the member aggregate's version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from litestar.concurrency import sync_to_thread
from scim2_models import (
    InvalidValueException,
    NotFoundException,
    Resource,
    ScimProvider,
    UniquenessException,
)

from training.identity.handlers.scim import (
    DEACTIVATED_BY_SCIM,
    DELETED_BY_SCIM,
    DesiredUser,
    MemberView,
    new_email,
    provisioned_member,
    registration,
    user_changes,
)
from training.identity.http.scim.call import ScimCall
from training.identity.http.scim.protocol import (
    ENTERPRISE_USER_SCHEMA,
    USER_SCHEMA,
    check_version,
    member_reference,
    parse_id,
    resource_of,
    version_tag,
)
from training.identity.views import members_with_email, provisioned_members
from training.people.handlers.members import DeactivateMember, ErasePersonalData, MemberSnapshot
from training.people.queries import member_with_external_id
from training.people.views import MEMBERS, MemberRecord, names_held, personal_data_of

log = structlog.get_logger("training.scim")


@dataclass(frozen=True)
class ProvisionedMember:
    """A member as a SCIM User shows it, with when it was created and last changed."""

    view: MemberView
    created: datetime | None
    modified: datetime | None


async def member_records(call: ScimCall, *, team: str | None) -> list[MemberRecord]:
    """Every member that was not erased (of one team), from the members read model once it
    has caught up with every event stored so far."""
    async with call.read_model(MEMBERS.info) as conn:
        return await provisioned_members(conn, team=team)


class Users:
    """The tenant's members as SCIM Users."""

    def __init__(self, provider: ScimProvider) -> None:
        self.provider = provider

    # -- Reads

    async def get(self, call: ScimCall, resource_id: str) -> Resource[Any]:
        return self.resource(await self.member(call, resource_id))

    async def search(self, call: ScimCall, lookup: tuple[str, str] | None) -> list[Resource[Any]]:
        """Every user, or those a ``userName``/``externalId`` equality names (``lookup``)."""
        return [self.resource(member) for member in await self._search(call, lookup)]

    async def member(self, call: ScimCall, resource_id: str) -> ProvisionedMember:
        member_id = parse_id(resource_id)
        found = await self._members_by_id(call, [member_id] if member_id else [])
        if not found:
            raise NotFoundException(detail=f"User {resource_id!r} not found")
        return found[0]

    async def _members_by_id(
        self, call: ScimCall, member_ids: Iterable[UUID]
    ) -> list[ProvisionedMember]:
        """Members read from the event store, with their personal data (written in the same
        transaction as their events): a write is visible here as soon as it returned."""
        found: list[ProvisionedMember] = []
        for member_id in dict.fromkeys(member_ids):
            member = await sync_to_thread(provisioned_member, call.app, call.tenant_id, member_id)
            if member is None:
                continue
            async with call.reads.session(primary=True) as conn:
                personal = await personal_data_of(conn, member_id)
            if personal is None:
                continue
            view = MemberView(
                member_id=member.id,
                external_id=member.external_id,
                display_name=str(personal["display_name"]),
                email=personal["email"],
                active=member.is_active,
                manager_id=member.manager_id,
                team=member.team,
                job_title=member.job_title,
                version=int(member.version),
            )
            found.append(ProvisionedMember(view, member.created_on, member.modified_on))
        return found

    async def _search(
        self, call: ScimCall, lookup: tuple[str, str] | None
    ) -> list[ProvisionedMember]:
        if lookup is not None:
            attribute, value = lookup
            holder = await sync_to_thread(member_with_external_id, call.app, call.tenant_id, value)
            candidates = [holder] if holder else []
            if attribute == "username":
                candidates = [*await self._members_with_email(call, value), *candidates]
            return await self._members_by_id(call, candidates)
        records = await member_records(call, team=None)
        return [_member_of_record(record) for record in records]

    async def _members_with_email(self, call: ScimCall, email: str) -> list[UUID]:
        async with call.reads.session(primary=True) as conn:
            return await members_with_email(conn, call.tenant_id, email)

    async def _check_email_free(
        self, call: ScimCall, email: str, member_id: UUID | None = None
    ) -> None:
        taken = [m for m in await self._members_with_email(call, email) if m != member_id]
        if taken:
            raise UniquenessException(detail="another member of this tenant has this userName")

    def resource(self, member: ProvisionedMember) -> Resource[Any]:
        view = member.view
        data: dict[str, Any] = {
            "schemas": [USER_SCHEMA],
            "id": str(view.member_id),
            "externalId": view.own_external_id,
            "userName": view.user_name,
            "displayName": view.own_display_name,
            "active": view.active,
            "meta": {
                "resourceType": "User",
                "created": member.created,
                "lastModified": member.modified,
                "version": version_tag(view.version),
            },
        }
        if view.job_title:
            data["title"] = view.job_title
        enterprise: dict[str, Any] = {}
        if view.team:
            enterprise["department"] = view.team
        if view.manager_id:
            manager = str(view.manager_id)
            enterprise["manager"] = {"value": manager, "$ref": f"Users/{manager}"}
        if enterprise:
            data["schemas"].append(ENTERPRISE_USER_SCHEMA)
            data[ENTERPRISE_USER_SCHEMA] = enterprise
        return resource_of(self.provider, "User", data)

    # -- Writes

    async def provision(self, call: ScimCall, resource: Resource[Any]) -> Resource[Any]:
        """A new user: the member is registered (and deactivated when sent inactive)."""
        desired = _desired_user(resource)
        command, deactivate = registration(desired)
        assert command.email is not None
        await self._check_email_free(call, command.email)
        snapshot: MemberSnapshot = await call.run(command)
        if deactivate:
            await call.run(
                DeactivateMember(snapshot.member_id, DEACTIVATED_BY_SCIM, snapshot.version)
            )
        log.info("scim.user_provisioned", member_id=str(snapshot.member_id))
        return self.resource(await self.member(call, str(snapshot.member_id)))

    async def reconcile(
        self, call: ScimCall, resource: Resource[Any], expected_version: str | None
    ) -> Resource[Any]:
        """PUT and PATCH: the member is brought to the state ``resource`` describes (a PUT's
        replacement, or a PATCH applied to the user as read), by the commands it takes."""
        current = await self.member(call, str(resource.id))
        check_version(expected_version, version_tag(current.view.version), "user")
        # A PATCH result lacks what the client removed; a PUT omits what it does not assert.
        desired = _desired_user(resource, omitted_is_removed=call.method == "PATCH")
        email = new_email(current.view, desired)
        if email is not None:
            await self._check_email_free(call, email, current.view.member_id)
        version = current.view.version
        for command in user_changes(current.view, desired):
            if command is None:
                continue
            snapshot: MemberSnapshot = await call.run(
                dataclasses.replace(command, expected_version=version)
            )
            version = snapshot.version
        return self.resource(await self.member(call, str(resource.id)))

    async def deprovision(
        self, call: ScimCall, resource_id: str, expected_version: str | None
    ) -> None:
        """DELETE: the member is deactivated (freeing the seat) and their personal data
        erased. The history stays, anonymous; the user is gone from SCIM."""
        current = await self.member(call, resource_id)
        check_version(expected_version, version_tag(current.view.version), "user")
        member_id = current.view.member_id
        # What names the person, read before the erasure takes it away.
        async with call.reads.session(primary=True) as conn:
            names = await names_held(conn, member_id)
        if current.view.active:
            await call.run(DeactivateMember(member_id, DELETED_BY_SCIM, current.view.version))
        await call.run(ErasePersonalData(member_id))
        if names:
            # Stored responses of idempotent requests that name the person go too.
            await call.idempotency.forget_mentions(call.tenant_id, names)
        log.info("scim.user_deprovisioned", member_id=str(member_id))


def _member_of_record(record: MemberRecord) -> ProvisionedMember:
    view = MemberView(
        member_id=record.member_id,
        external_id=record.external_id,
        display_name=record.display_name or "",
        email=record.email,
        active=record.status == "active",
        manager_id=record.manager_id,
        team=record.team,
        job_title=record.job_title,
        version=record.version,
    )
    return ProvisionedMember(view, record.created_at, record.updated_at)


def _desired_user(resource: Resource[Any], *, omitted_is_removed: bool = False) -> DesiredUser:
    data = resource.model_dump()
    enterprise = data.get(ENTERPRISE_USER_SCHEMA) or {}
    manager = enterprise.get("manager") or {}
    name = data.get("name") or {}
    user_name = data.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise InvalidValueException(detail="userName (the member's email) is required")
    return DesiredUser(
        user_name=user_name.strip(),
        external_id=data.get("externalId"),
        display_name=data.get("displayName"),
        name_formatted=name.get("formatted"),
        active=data.get("active"),
        job_title=data.get("title"),
        team=enterprise.get("department"),
        manager_id=member_reference(manager.get("value"), manager.get("$ref")),
        omitted_is_removed=omitted_is_removed,
    )
