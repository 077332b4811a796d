"""SCIM 2.0 provisioning (RFC 7643/7644) at ``/scim/v2/{tenant_id}/``.

scim2-server does the protocol: routing, request validation, PATCH and PUT semantics,
filters, sorting, paging, ``attributes``/``excludedAttributes``, conditional requests
(``If-Match`` → 412) and discovery. This module gives it a storage, ``MemberDirectory``,
that reads members from the event store (the aggregate, with the personal data written in
the same transaction) and the members read model, and writes only through the command bus
(``training.identity.handlers.scim`` decides which commands). ``meta.version``, and so the
``ETag``, is the member aggregate's version.

Every tenant has its own URL prefix. The mount authenticates each request itself, so its
errors are SCIM errors (RFC 7644 §3.12) rather than problem documents: the bearer token must
be an access token of an API client of the tenant in the URL, holding the scope ``scim``.

Groups are listed teams (``TRAINING_SCIM_GROUPS=teams``, the default: ``Teams``, members by
team name) or cohorts (``cohorts``: members are the enrolled, added ones are enrolled and
removed ones withdrawn). SCIM requests share the API's rate-limit buckets (ADR 0015).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Union, cast
from urllib.parse import unquote, urlsplit
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError
from litestar import asgi
from litestar.concurrency import sync_to_thread
from litestar.types import Receive, Scope, Send
from psycopg import AsyncConnection
from psycopg.rows import class_row
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ConflictException,
    Error,
    ETag,
    Filter,
    ForbiddenException,
    InvalidValueException,
    Mutability,
    MutabilityException,
    NotFoundException,
    Patch,
    PreconditionFailedException,
    Required,
    Resource,
    ResourceType,
    ResponseParameters,
    Returned,
    Schema,
    SCIMException,
    ScimFilter,
    ScimPolicy,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
    UniquenessException,
)
from scim2_models.path import AttrPath, CompareOperator, Comparison
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation
from scim2_server.storage import AsyncScimStorage, SearchPage
from scim2_server.utils import load_default_resource_types, load_default_schemas

from training.cohorts.domain.cohorts import Cohort
from training.cohorts.handlers.enrolments import Enrol, Withdraw
from training.cohorts.views import COHORTS
from training.core.access import Scope as AccessScope
from training.core.bus import ConcurrentModification
from training.core.context import Actor, ActorKind, CommandContext
from training.core.errors import (
    AlreadyExists,
    Forbidden,
    InvalidTransition,
    LimitReached,
    NotFound,
    RuleViolated,
    StaleVersion,
)
from training.core.http.ratelimit import Buckets
from training.core.http.services import Services, read_your_writes
from training.core.read_store import ViewBehind
from training.identity.authentication import (
    TokenRejected,
    principal_from_claims,
    verify_access_token,
)
from training.identity.handlers.scim import (
    DEACTIVATED_BY_SCIM,
    DELETED_BY_SCIM,
    DesiredUser,
    MemberView,
    new_email,
    registration,
    user_changes,
)
from training.people.domain.members import Member
from training.people.domain.teams import Team, Teams
from training.people.handlers.members import DeactivateMember, ErasePersonalData, MemberSnapshot
from training.people.handlers.teams import DisbandTeam, ProvisionTeam
from training.people.queries import member_with_external_id
from training.people.views import FROM_MEMBERS, MEMBER_COLUMNS, MEMBERS, MemberRecord, names_held
from training.tenancy.queries import credentials_in_force

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
GROUPS_SETTING = "TRAINING_SCIM_GROUPS"
COHORTS_ARE_SCHEDULED = (
    f"{GROUPS_SETTING}=cohorts: cohorts are scheduled and ended in the service "
    "(POST /v1/cohorts); over SCIM a cohort's members are enrolled and withdrawn"
)
WITHDRAWN_BY_SCIM = "withdrawn by the identity provider (SCIM)"
# The most resources one page of a search returns (also the page size when none is asked).
MAX_RESULTS = 200
SCIM_PATH = re.compile(r"^/scim/v2/(?P<tenant>[^/]+)(?P<rest>/.*)?$")

log = structlog.get_logger("training.scim")


class GroupMapping(StrEnum):
    TEAMS = "teams"
    COHORTS = "cohorts"


def groups_mapping(environ: dict[str, str] | None = None) -> GroupMapping:
    """What SCIM Groups are, from ``TRAINING_SCIM_GROUPS`` (``teams`` by default)."""
    value = (os.environ if environ is None else environ).get(GROUPS_SETTING, "") or "teams"
    try:
        return GroupMapping(value.strip().lower())
    except ValueError:
        raise ValueError(f"{GROUPS_SETTING} is 'teams' or 'cohorts', not {value!r}") from None


# -- What the service announces ---------------------------------------------------------------

# Only the attributes a member really keeps are published, so a client (and scim2-tester)
# never writes a value that would silently vanish. Other attributes a client sends, such as
# phoneNumbers or name.givenName, are ignored (ScimPolicy.Unknown.ignore), as the identity
# providers expect.
USER_ATTRIBUTES: dict[str, tuple[set[str] | None, str]] = {
    "userName": (None, "The member's email address (unique in the tenant)."),
    "name": (
        {"formatted"},
        "Another way to send the display name (name.formatted); the service keeps one display "
        "name and returns it as displayName only.",
    ),
    "displayName": (
        None,
        "The member's display name; absent when it is the default, the email. Removing it "
        "brings the default back.",
    ),
    "title": (None, "The member's job title."),
    "active": (
        None,
        "Whether the member is active (false deactivates and frees a seat). A member always "
        "has a status, so it is required.",
    ),
}
ENTERPRISE_ATTRIBUTES: dict[str, tuple[set[str] | None, str]] = {
    "department": (None, "The member's team."),
    "manager": ({"value", "$ref"}, "The member's manager: value is the manager's id."),
}
GROUP_ATTRIBUTES: dict[str, tuple[set[str] | None, str]] = {
    "displayName": (None, "The team's name (unique in the tenant); it may change, the id stays."),
    "members": ({"value", "$ref", "type"}, "The members whose team this is."),
}

POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


def _subset(schema: Schema, attributes: dict[str, tuple[set[str] | None, str]]) -> Schema:
    published = schema.model_copy(deep=True)
    kept = [a for a in published.attributes or [] if a.name in attributes]
    for attribute in kept:
        sub_attributes, description = attributes[str(attribute.name)]
        attribute.description = description
        if sub_attributes is not None:
            attribute.sub_attributes = [
                s for s in attribute.sub_attributes or [] if s.name in sub_attributes
            ]
        if attribute.name == "members":
            for sub in attribute.sub_attributes or []:
                if sub.name == "$ref":
                    sub.reference_types = ["User"]  # teams do not nest
                if sub.name == "type":
                    sub.canonical_values = ["User"]
        if attribute.name == "name":
            # Accepted, never returned: one display name, shown as displayName.
            attribute.mutability = Mutability.write_only
            attribute.returned = Returned.never
        if attribute.name == "active":
            attribute.required = Required.true
    published.attributes = kept
    return published


def scim_provider(mapping: GroupMapping) -> ScimProvider:
    schemas = load_default_schemas()
    published = [
        _subset(schemas[USER_SCHEMA], USER_ATTRIBUTES),
        _subset(schemas[ENTERPRISE_USER_SCHEMA], ENTERPRISE_ATTRIBUTES),
    ]
    resource_types = [load_default_resource_types()["User"]]
    published.append(_subset(schemas[GROUP_SCHEMA], GROUP_ATTRIBUTES))
    group = load_default_resource_types()["Group"]
    group.description = (
        "A team: the members whose team it is"
        if mapping is GroupMapping.TEAMS
        else "A cohort: its enrolled members (cohorts are scheduled in the service)"
    )
    resource_types.append(group)
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="OAuth Bearer Token",
                description="An access token (POST /oauth2/token, client credentials) of an "
                "API client of this tenant that holds the scope 'scim'.",
                primary=True,
            )
        ],
    )
    return ScimProvider.from_discovery(published, resource_types, config=config, policy=POLICY)


# -- The request being served ---------------------------------------------------------------


@dataclass
class ScimCall:
    """Who is provisioning which tenant; the storage reads it for every operation."""

    services: Services
    tenant_id: UUID
    request_id: str
    mapping: GroupMapping
    method: str = "GET"
    rate_limits: Buckets | None = None
    context: CommandContext | None = None

    def command_context(self) -> CommandContext:
        if self.context is None:
            raise UnauthorizedException(detail="send an access token: Authorization: Bearer")
        return self.context


_CALL: ContextVar[ScimCall] = ContextVar("scim_call")


def current_call() -> ScimCall:
    return _CALL.get()


class ServiceUnavailableException(SCIMException):
    status = 503
    _default_detail = "The service is busy; retry shortly"


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turns the domain's refusals into SCIM errors (RFC 7644 §3.12)."""
    try:
        yield
    except StaleVersion as error:
        raise PreconditionFailedException(detail=error.detail) from None
    except NotFound as error:
        raise NotFoundException(detail=error.detail) from None
    except AlreadyExists as error:
        raise UniquenessException(detail=error.detail) from None
    except InvalidTransition as error:
        raise MutabilityException(detail=error.detail) from None
    except RuleViolated as error:
        raise InvalidValueException(detail=error.detail) from None
    except LimitReached as error:
        raise ConflictException(detail=error.detail) from None
    except Forbidden as error:
        raise ForbiddenException(detail=error.detail) from None
    except ConcurrentModification as error:
        raise ConflictException(detail=str(error)) from None
    except ViewBehind as error:
        raise ServiceUnavailableException(detail=str(error)) from None


def version_tag(version: int | str) -> str:
    return f'W/"{version}"'


# -- The storage ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    view: MemberView
    created: datetime | None
    modified: datetime | None


def _member_aggregate(call: ScimCall, member_id: UUID) -> Member | None:
    try:
        member: object = call.services.app.repository.get(member_id)
    except AggregateNotFoundError:
        return None
    if not isinstance(member, Member) or member.tenant_id != call.tenant_id or member.erased:
        return None
    return member


def _resource_id(resource_id: str | None) -> UUID | None:
    try:
        return UUID(str(resource_id))
    except ValueError:
        return None


def _member_reference(value: Any, reference: Any) -> UUID | None:
    """The member a ``{value, $ref}`` pair names (the id, or the last segment of the URL)."""
    if value:
        found = _resource_id(value)
    elif reference:
        found = _resource_id(urlsplit(str(reference)).path.rstrip("/").rsplit("/", 1)[-1])
    else:
        return None
    if found is None:
        raise InvalidValueException(detail=f"{value or reference!r} is not a member id")
    return found


def _equality(scim_filter: ScimFilter[Any] | None) -> tuple[str, str] | None:
    """``("username" | "externalid", value)`` for ``userName eq "..."`` and
    ``externalId eq "..."``, which the event store and the personal data answer at once."""
    if scim_filter is None:
        return None
    node = scim_filter.ast
    if not isinstance(node, Comparison) or node.op != CompareOperator.eq:
        return None
    path: AttrPath = node.attr_path
    attribute = path.attr.lower()
    if path.sub_attr or path.uri not in (None, USER_SCHEMA) or not isinstance(node.value, str):
        return None
    if attribute not in ("username", "externalid"):
        return None
    return attribute, node.value


class MemberDirectory(AsyncScimStorage):
    """Users are the tenant's members; Groups are its teams."""

    def __init__(self, provider: ScimProvider) -> None:
        self.provider = provider

    # -- Storage operations

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
                return self._cohort_resource(await self._cohort(call, resource_id))
            if resource_type.name == "Group":
                return await self._group(call, resource_id)
            return self._user_resource(await self._member(call, resource_id))

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
                members = await self._search_members(call, _equality(scim_filter))
                found += [self._user_resource(member) for member in members]
            if "Group" in names and call.mapping is GroupMapping.TEAMS:
                found += await self._all_groups(call)
            elif "Group" in names:
                found += [self._cohort_resource(c) for c in await self._all_cohorts(call)]
        if scim_filter is not None:
            if not scim_filter.models and found:
                models = tuple(dict.fromkeys(type(resource) for resource in found))
                bound = cast(Any, ScimFilter)[Union[models]]  # noqa: UP007
                scim_filter = bound(str(scim_filter))
            assert scim_filter is not None
            found = [resource for resource in found if scim_filter.match(resource)]
        ordered = search_request.sort(sorted(found, key=_resource_order))
        start = search_request.start_index_0 or 0
        stop = search_request.stop_index_0
        return SearchPage(len(ordered), ordered[start:stop])

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        call = current_call()
        with domain_errors():
            if resource_type.name == "Group" and call.mapping is GroupMapping.COHORTS:
                raise ForbiddenException(detail=COHORTS_ARE_SCHEDULED)
            if resource_type.name == "Group":
                return await self._create_group(call, resource)
            return await self._create_user(call, resource)

    async def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        call = current_call()
        with domain_errors():
            if resource_type.name == "Group" and call.mapping is GroupMapping.COHORTS:
                return await self._update_cohort(call, resource, expected_version)
            if resource_type.name == "Group":
                return await self._update_group(call, resource, expected_version)
            return await self._update_user(call, resource, expected_version)

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
                await self._delete_group(call, resource_id, expected_version)
            else:
                await self._delete_user(call, resource_id, expected_version)

    # -- Users

    async def _member(self, call: ScimCall, resource_id: str) -> _Member:
        member_id = _resource_id(resource_id)
        found = await self._members_by_id(call, [member_id] if member_id else [])
        if not found:
            raise NotFoundException(detail=f"User {resource_id!r} not found")
        return found[0]

    async def _members_by_id(self, call: ScimCall, member_ids: Iterable[UUID]) -> list[_Member]:
        """Members read from the event store, with their personal data (written in the same
        transaction as their events): a write is visible here as soon as it returned."""
        found: list[_Member] = []
        for member_id in dict.fromkeys(member_ids):
            member = await sync_to_thread(_member_aggregate, call, member_id)
            if member is None:
                continue
            async with call.services.store.session(call.tenant_id) as conn:
                cur = await conn.execute(
                    "SELECT display_name, email FROM training.people WHERE member_id = %s",
                    (member_id,),
                )
                personal = await cur.fetchone()
            if personal is None:
                continue
            view = MemberView(
                member_id=member.id,
                external_id=member.external_id,
                display_name=str(personal[0]),
                email=personal[1],
                active=member.is_active,
                manager_id=member.manager_id,
                team=member.team,
                job_title=member.job_title,
                version=int(member.version),
            )
            found.append(_Member(view, member.created_on, member.modified_on))
        return found

    async def _search_members(
        self, call: ScimCall, equality: tuple[str, str] | None
    ) -> list[_Member]:
        if equality is not None:
            attribute, value = equality
            holder = await sync_to_thread(
                member_with_external_id, call.services.app, call.tenant_id, value
            )
            candidates = [holder] if holder else []
            if attribute == "username":
                candidates = [*await self._members_with_email(call, value), *candidates]
            return await self._members_by_id(call, candidates)
        records = await self._member_records(call, team=None)
        return [_member_of_record(record) for record in records]

    async def _members_with_email(self, call: ScimCall, email: str) -> list[UUID]:
        async with call.services.store.session(call.tenant_id) as conn:
            cur = await conn.execute(
                "SELECT member_id FROM training.people WHERE tenant_id = %s AND email = %s",
                (call.tenant_id, email.strip().lower()),
            )
            return [row[0] for row in await cur.fetchall()]

    async def _check_email_free(
        self, call: ScimCall, email: str, member_id: UUID | None = None
    ) -> None:
        taken = [m for m in await self._members_with_email(call, email) if m != member_id]
        if taken:
            raise UniquenessException(detail="another member of this tenant has this userName")

    async def _member_records(self, call: ScimCall, *, team: str | None) -> list[MemberRecord]:
        """Every member that was not erased (of one team), from the members read model once
        it has caught up with every event stored so far."""
        async with (
            self._read_model(call) as conn,
            conn.cursor(row_factory=class_row(MemberRecord)) as cur,
        ):
            await cur.execute(
                f"SELECT {MEMBER_COLUMNS} FROM {FROM_MEMBERS} WHERE NOT m.erased "
                "AND p.member_id IS NOT NULL "
                "AND (%(team)s::text IS NULL OR m.team = %(team)s) ORDER BY m.member_id",
                {"team": team},
            )
            return await cur.fetchall()

    @asynccontextmanager
    async def _read_model(
        self, call: ScimCall, view: Any = MEMBERS.info
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """The read model once it holds every event of the caller's tenant stored so far:
        SCIM clients read right after they write and never send ``Training-Position``. Other
        tenants' events are not waited for (ADR 0028)."""
        services = call.services
        head = await sync_to_thread(services.app.recorder.max_notification_id)
        await read_your_writes(services, [view], head or 0, call.tenant_id)
        async with services.store.session(call.tenant_id) as conn:
            yield conn

    def _user_resource(self, member: _Member) -> Resource[Any]:
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
        return self._resource("User", data)

    def _resource(self, name: str, data: dict[str, Any]) -> Resource[Any]:
        model = cast(type[Resource[Any]], self.provider.model_for(name))
        with self.provider:
            return model.model_validate(data)

    async def _execute(self, call: ScimCall, command: Any) -> Any:
        outcome = await sync_to_thread(call.services.bus.execute, call.command_context(), command)
        return outcome.result

    async def _create_user(self, call: ScimCall, resource: Resource[Any]) -> Resource[Any]:
        desired = _desired_user(resource)
        command, deactivate = registration(desired)
        assert command.email is not None
        await self._check_email_free(call, command.email)
        snapshot: MemberSnapshot = await self._execute(call, command)
        if deactivate:
            await self._execute(
                call,
                DeactivateMember(snapshot.member_id, DEACTIVATED_BY_SCIM, snapshot.version),
            )
        log.info("scim.user_provisioned", member_id=str(snapshot.member_id))
        return self._user_resource(await self._member(call, str(snapshot.member_id)))

    async def _update_user(
        self, call: ScimCall, resource: Resource[Any], expected_version: str | None
    ) -> Resource[Any]:
        current = await self._member(call, str(resource.id))
        if expected_version is not None and expected_version != version_tag(current.view.version):
            raise PreconditionFailedException(detail="the user changed since it was read")
        # A PATCH result lacks what the client removed; a PUT omits what it does not assert.
        desired = _desired_user(resource, omitted_is_removed=call.method == "PATCH")
        email = new_email(current.view, desired)
        if email is not None:
            await self._check_email_free(call, email, current.view.member_id)
        version = current.view.version
        for command in user_changes(current.view, desired):
            if command is None:
                continue
            snapshot: MemberSnapshot = await self._execute(
                call, dataclasses.replace(command, expected_version=version)
            )
            version = snapshot.version
        return self._user_resource(await self._member(call, str(resource.id)))

    async def _delete_user(
        self, call: ScimCall, resource_id: str, expected_version: str | None
    ) -> None:
        """Deprovisioning: the member is deactivated (freeing the seat) and their personal
        data erased. The history stays, anonymous; the user is gone from SCIM."""
        current = await self._member(call, resource_id)
        if expected_version is not None and expected_version != version_tag(current.view.version):
            raise PreconditionFailedException(detail="the user changed since it was read")
        member_id = current.view.member_id
        async with call.services.store.session(call.tenant_id) as conn:
            names = await names_held(conn, member_id)
        if current.view.active:
            await self._execute(
                call, DeactivateMember(member_id, DELETED_BY_SCIM, current.view.version)
            )
        await self._execute(call, ErasePersonalData(member_id))
        await call.services.idempotency.forget_mentions(call.tenant_id, names)
        log.info("scim.user_deprovisioned", member_id=str(member_id))

    # -- Groups (teams)

    def _listed_team(self, teams: Teams | None, resource_id: str | None) -> Team:
        team_id = _resource_id(resource_id)
        team = teams.teams.get(team_id) if teams is not None and team_id else None
        if team is None:
            raise NotFoundException(detail=f"Group {resource_id!r} not found")
        return team

    async def _group(self, call: ScimCall, resource_id: str | None) -> Resource[Any]:
        team = self._listed_team(await sync_to_thread(_teams_aggregate, call), resource_id)
        return self._group_resource(team, await self._member_records(call, team=team.name))

    async def _all_groups(self, call: ScimCall) -> list[Resource[Any]]:
        teams = await sync_to_thread(_teams_aggregate, call)
        if teams is None or not teams.teams:
            return []
        by_name: dict[str, list[MemberRecord]] = {}
        for record in await self._member_records(call, team=None):
            if record.team:
                by_name.setdefault(record.team, []).append(record)
        return [self._group_resource(t, by_name.get(t.name, [])) for t in teams.teams.values()]

    def _group_resource(self, team: Team, records: list[MemberRecord]) -> Resource[Any]:
        data: dict[str, Any] = {
            "schemas": [GROUP_SCHEMA],
            "id": str(team.team_id),
            "externalId": team.external_id,
            "displayName": team.name,
            "meta": {"resourceType": "Group", "version": _group_version(team, records)},
        }
        if records:
            data["members"] = [
                {"value": str(r.member_id), "$ref": f"Users/{r.member_id}", "type": "User"}
                for r in records
            ]
            data["meta"]["lastModified"] = max(r.updated_at for r in records)
        return self._resource("Group", data)

    async def _current_group(
        self, call: ScimCall, resource_id: str | None, expected_version: str | None
    ) -> tuple[Team, tuple[UUID, ...]]:
        team = self._listed_team(await sync_to_thread(_teams_aggregate, call), resource_id)
        records = await self._member_records(call, team=team.name)
        if expected_version is not None and expected_version != _group_version(team, records):
            raise PreconditionFailedException(detail="the group changed since it was read")
        return team, tuple(record.member_id for record in records)

    async def _create_group(self, call: ScimCall, resource: Resource[Any]) -> Resource[Any]:
        command = ProvisionTeam(
            name=str(getattr(resource, "display_name", None) or ""),
            external_id=getattr(resource, "external_id", None),
            members=tuple(_desired_members(resource)),
        )
        team: Team = await self._execute(call, command)
        return await self._group(call, str(team.team_id))

    async def _update_group(
        self, call: ScimCall, resource: Resource[Any], expected_version: str | None
    ) -> Resource[Any]:
        team, current = await self._current_group(call, resource.id, expected_version)
        external_id = getattr(resource, "external_id", None)
        if external_id is None and call.method == "PUT":
            external_id = team.external_id  # a PUT that omits it does not assert it
        command = ProvisionTeam(
            name=str(getattr(resource, "display_name", None) or ""),
            external_id=external_id,
            members=tuple(_desired_members(resource)),
            current_members=current,
            team_id=team.team_id,
            expected_revision=team.revision,
        )
        await self._execute(call, command)
        return await self._group(call, str(team.team_id))

    async def _delete_group(
        self, call: ScimCall, resource_id: str, expected_version: str | None
    ) -> None:
        team, current = await self._current_group(call, resource_id, expected_version)
        await self._execute(call, DisbandTeam(team.team_id, current, team.revision))

    # -- Groups (cohorts)

    async def _cohort(self, call: ScimCall, resource_id: str | None) -> Cohort:
        cohort_id = _resource_id(resource_id)
        found = await sync_to_thread(_cohort_aggregate, call, cohort_id) if cohort_id else None
        if found is None:
            raise NotFoundException(detail=f"Group {resource_id!r} not found")
        return found

    async def _all_cohorts(self, call: ScimCall) -> list[Cohort]:
        async with self._read_model(call, COHORTS.info) as conn:
            cur = await conn.execute("SELECT cohort_id FROM training.cohorts ORDER BY cohort_id")
            ids = [row[0] for row in await cur.fetchall()]
        cohorts = [await sync_to_thread(_cohort_aggregate, call, cohort_id) for cohort_id in ids]
        return [cohort for cohort in cohorts if cohort is not None]

    def _cohort_resource(self, cohort: Cohort) -> Resource[Any]:
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
            data["members"] = [
                {"value": str(m), "$ref": f"Users/{m}", "type": "User"} for m in cohort.enrolled
            ]
        return self._resource("Group", data)

    async def _update_cohort(
        self, call: ScimCall, resource: Resource[Any], expected_version: str | None
    ) -> Resource[Any]:
        """Adding a member enrols them (or puts them on the waitlist when the cohort is
        full); removing one withdraws them. The cohort's name and schedule are the
        service's: a different displayName is refused."""
        cohort = await self._cohort(call, resource.id)
        if expected_version is not None and expected_version != version_tag(cohort.version):
            raise PreconditionFailedException(detail="the group changed since it was read")
        if getattr(resource, "display_name", None) not in (None, cohort.name):
            raise MutabilityException(detail="a cohort is named in the service, not over SCIM")
        desired = _desired_members(resource)
        current = set(cohort.enrolled) | set(cohort.waitlist)
        joining = tuple(sorted(desired - current))
        if joining:
            await self._execute(call, Enrol(cohort.id, joining))
        for member_id in sorted(set(cohort.enrolled) - desired):
            await self._execute(call, Withdraw(cohort.id, member_id, WITHDRAWN_BY_SCIM))
        return self._cohort_resource(await self._cohort(call, str(cohort.id)))


def _cohort_aggregate(call: ScimCall, cohort_id: UUID) -> Cohort | None:
    try:
        cohort: object = call.services.app.repository.get(cohort_id)
    except AggregateNotFoundError:
        return None
    if not isinstance(cohort, Cohort) or cohort.tenant_id != call.tenant_id:
        return None
    return cohort


def _teams_aggregate(call: ScimCall) -> Teams | None:
    try:
        teams: object = call.services.app.repository.get(Teams.create_id(call.tenant_id))
    except AggregateNotFoundError:
        return None
    if not isinstance(teams, Teams) or teams.tenant_id != call.tenant_id:
        return None
    return teams


def _member_of_record(record: MemberRecord) -> _Member:
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
    return _Member(view, record.created_at, record.updated_at)


def _group_version(team: Team, records: list[MemberRecord]) -> str:
    """A team's revision and the versions of its members (whose team is its name)."""
    digest = hashlib.sha256(f"{team.team_id}:{team.revision}".encode())
    for record in sorted(records, key=lambda r: r.member_id):
        digest.update(f"|{record.member_id}:{record.version}".encode())
    return version_tag(f"{team.revision}-{digest.hexdigest()[:16]}")


def _resource_order(resource: Resource[Any]) -> tuple[str, str]:
    kind = resource.meta.resource_type if resource.meta else None
    return str(kind), str(resource.id)


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
        manager_id=_member_reference(manager.get("value"), manager.get("$ref")),
        omitted_is_removed=omitted_is_removed,
    )


def _desired_members(resource: Resource[Any]) -> set[UUID]:
    desired: set[UUID] = set()
    for entry in resource.model_dump().get("members") or []:
        if entry.get("type") not in (None, "User"):
            raise InvalidValueException(detail="a team's members are users: groups do not nest")
        member_id = _member_reference(entry.get("value"), entry.get("$ref"))
        if member_id is not None:
            desired.add(member_id)
    return desired


# -- Authentication and the ASGI application ------------------------------------------------


async def authenticate(call: ScimCall, authorization: str | None) -> CommandContext:
    """The caller must be an API client of the tenant in the URL, holding the scope scim."""
    services = call.services
    scheme, _, raw = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise UnauthorizedException(detail="send an access token: Authorization: Bearer <token>")
    try:
        claims = await sync_to_thread(
            verify_access_token,
            raw.strip(),
            services.keys,
            issuer=services.settings.issuer,
            audience=services.settings.audience,
        )
        principal = principal_from_claims(claims)
    except TokenRejected as error:
        raise UnauthorizedException(detail=str(error)) from None
    if principal.kind is not ActorKind.CLIENT:
        raise ForbiddenException(detail="SCIM takes the token of one of the tenant's API clients")
    refusal = await sync_to_thread(
        credentials_in_force, services.app, principal.subject, principal.tenant_id
    )
    if refusal:
        raise UnauthorizedException(detail=refusal)
    if principal.tenant_id != call.tenant_id:
        raise ForbiddenException(detail="the token belongs to another tenant")
    if not principal.has_scope(AccessScope.SCIM):
        raise ForbiddenException(detail=f"this needs the scope {str(AccessScope.SCIM)!r}")
    structlog.contextvars.bind_contextvars(
        tenant_id=str(call.tenant_id), actor=f"{principal.kind}:{principal.subject}"
    )
    return CommandContext(
        Actor(ActorKind.CLIENT, principal.subject), call.request_id, call.tenant_id
    )


class TooManyRequestsException(SCIMException):
    status = 429
    _default_detail = "Too many requests"


def rate_limited(call: ScimCall) -> ScimResponse | None:
    """A 429 with Retry-After once the client has used its share, as on the rest of the API
    (the same buckets, keyed by the same principal)."""
    if call.rate_limits is None or call.context is None:
        return None
    wait = call.rate_limits.take(str(call.context.actor))
    if wait <= 0:
        return None
    limit = call.rate_limits.limit
    error = TooManyRequestsException(
        detail=f"too many requests; at most {limit.requests} per {limit.seconds:g} s"
    )
    response = scim_app(call.mapping).service.error_response(error)
    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


class TenantScimApp(ASGIApplication):
    """scim2-server's ASGI application, served under each tenant's prefix."""

    def __init__(self, mapping: GroupMapping) -> None:
        provider = scim_provider(mapping)
        super().__init__(MemberDirectory(provider), provider)
        self.mapping = mapping

    @staticmethod
    def get_base_url(scope: dict[str, Any]) -> str:
        # The SCIM root is the tenant's prefix, /scim/v2/{tenant_id} (the root_path the mount
        # sets); scim2-server's own version would append /v2 to it.
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode()
        if not host and scope.get("server"):
            host = "{}:{}".format(*scope["server"])
        return f"{scope['scheme']}://{host}{scope.get('root_path', '')}"

    async def dispatch_request(self, request: ScimRequest) -> ScimResponse:
        call = current_call()
        try:
            operation: Operation | None = self.service.match(request).operation
        except SCIMException:
            operation = None
        if operation is not Operation.service_provider_config:
            call.context = await authenticate(call, request.header("Authorization"))
            refusal = rate_limited(call)
            if refusal is not None:
                return refusal
        return await self.handler.handle(request)


_APPS: dict[GroupMapping, TenantScimApp] = {}


def scim_app(mapping: GroupMapping) -> TenantScimApp:
    if mapping not in _APPS:
        _APPS[mapping] = TenantScimApp(mapping)
    return _APPS[mapping]


def _request_path(scope: Scope) -> str:
    raw = cast(bytes | None, scope.get("raw_path"))
    # Some servers (the test client) leave the query string in raw_path; ASGI says it is not.
    path = unquote(raw.split(b"?", 1)[0].decode("latin-1")) if raw else "/scim" + scope["path"]
    root = scope.get("root_path", "")
    return path.removeprefix(root) if root else path


@asgi("/scim", is_mount=True, copy_scope=True)
async def scim_mount(scope: Scope, receive: Receive, send: Send) -> None:
    """SCIM 2.0 at /scim/v2/{tenant_id}/: Users, Groups and discovery (RFC 7644)."""
    try:
        mapping = groups_mapping()
    except ValueError as misconfigured:
        log.error("scim.misconfigured", detail=str(misconfigured))
        app = scim_app(GroupMapping.TEAMS)
        error = SCIMException.from_error(Error(status=500, detail=str(misconfigured)))
        await app.send_response(app.service.error_response(error), cast(Any, send))
        return
    app = scim_app(mapping)
    match = SCIM_PATH.match(_request_path(scope))
    tenant_id = _resource_id(match["tenant"]) if match else None
    if match is None or tenant_id is None:
        error = NotFoundException(detail="SCIM is served at /scim/v2/{tenant_id}/")
        await app.send_response(app.service.error_response(error), cast(Any, send))
        return
    inner = dict(cast(dict[str, Any], scope))
    inner["path"] = match["rest"] or "/"
    inner["root_path"] = scope.get("root_path", "") + f"/scim/v2/{match['tenant']}"
    request_id = str(scope.get("state", {}).get("request_id", ""))
    state = scope["app"].state
    call = ScimCall(
        state.services,
        tenant_id,
        request_id,
        mapping,
        str(scope.get("method")),
        state.get("rate_limits"),
    )
    token = _CALL.set(call)
    try:
        await app(inner, cast(Any, receive), cast(Any, send))
    finally:
        _CALL.reset(token)


ROUTES: list[Any] = [scim_mount]
