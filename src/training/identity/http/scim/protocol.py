"""SCIM's own terms, shared by Users and Groups: schema URNs, SCIM errors (RFC 7644 §3.12, not
problem documents), versions, ids and references, and the one filter answered at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import urlsplit
from uuid import UUID

from scim2_models import (
    ConflictException,
    ForbiddenException,
    InvalidValueException,
    MutabilityException,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    SCIMException,
    ScimFilter,
    ScimProvider,
    UniquenessException,
)
from scim2_models.path import AttrPath, CompareOperator, Comparison

from training.core.bus import ConcurrentModification
from training.core.errors import (
    AlreadyExists,
    Forbidden,
    InvalidTransition,
    LimitReached,
    NotFound,
    RuleViolated,
    StaleVersion,
)
from training.core.read_store import ViewBehind

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


class ServiceUnavailableException(SCIMException):
    status = 503
    _default_detail = "The service is busy; retry shortly"


class TooManyRequestsException(SCIMException):
    status = 429
    _default_detail = "Too many requests"


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
    """``meta.version`` (and so the ``ETag``): a weak tag of the version."""
    return f'W/"{version}"'


def check_version(expected_version: str | None, current: str, what: str) -> None:
    """412 when the client's ``If-Match`` names another version than the current one."""
    if expected_version is not None and expected_version != current:
        raise PreconditionFailedException(detail=f"the {what} changed since it was read")


def parse_id(resource_id: str | None) -> UUID | None:
    """The id of a resource, None when it is not one of ours (so: not found)."""
    try:
        return UUID(str(resource_id))
    except ValueError:
        return None


def member_reference(value: Any, reference: Any) -> UUID | None:
    """The member a ``{value, $ref}`` pair names (the id, or the last segment of the URL)."""
    if value:
        found = parse_id(value)
    elif reference:
        found = parse_id(urlsplit(str(reference)).path.rstrip("/").rsplit("/", 1)[-1])
    else:
        return None
    if found is None:
        raise InvalidValueException(detail=f"{value or reference!r} is not a member id")
    return found


def desired_members(resource: Resource[Any]) -> set[UUID]:
    """The members a Group resource lists: users only, groups do not nest."""
    desired: set[UUID] = set()
    for entry in resource.model_dump().get("members") or []:
        if entry.get("type") not in (None, "User"):
            raise InvalidValueException(detail="a team's members are users: groups do not nest")
        member_id = member_reference(entry.get("value"), entry.get("$ref"))
        if member_id is not None:
            desired.add(member_id)
    return desired


def user_lookup(scim_filter: ScimFilter[Any] | None) -> tuple[str, str] | None:
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


def resource_of(provider: ScimProvider, name: str, data: dict[str, Any]) -> Resource[Any]:
    """``data`` as the provider's model of resource type ``name`` (User or Group)."""
    model = cast(type[Resource[Any]], provider.model_for(name))
    with provider:
        return model.model_validate(data)


def resource_order(resource: Resource[Any]) -> tuple[str, str]:
    """Search results in a stable order: by resource type, then id."""
    kind = resource.meta.resource_type if resource.meta else None
    return str(kind), str(resource.id)
