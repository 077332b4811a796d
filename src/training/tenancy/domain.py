"""Tenancy: the companies that buy the service, and the API clients that act for them."""

from __future__ import annotations

import re
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from training.core.access import Scope
from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import InvalidTransition, RuleViolated

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
MAX_NAME_LENGTH = 120
MAX_SEAT_LIMIT = 1_000_000

# The operator's scope: the platform itself, never given to a tenant's client.
OPERATOR_SCOPE = "platform:operator"

# What a tenant's API client may be allowed to do.
TENANT_SCOPES: frozenset[str] = frozenset(str(scope) for scope in Scope)


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class ClientStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


def check_name(name: str, *, field: str = "name") -> str:
    cleaned = name.strip()
    if not cleaned:
        raise RuleViolated("a name cannot be blank", field=field)
    if len(cleaned) > MAX_NAME_LENGTH:
        raise RuleViolated(f"a name has at most {MAX_NAME_LENGTH} characters", field=field)
    return cleaned


def check_seat_limit(seat_limit: int) -> int:
    if not 1 <= seat_limit <= MAX_SEAT_LIMIT:
        raise RuleViolated(
            f"the seat limit must be between 1 and {MAX_SEAT_LIMIT}", field="seat_limit"
        )
    return seat_limit


class Tenant(TrainingAggregate):
    """A customer company. Its slug is its natural key and never changes."""

    TOPIC = "training.tenancy:Tenant"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.tenancy:Tenant.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.tenancy:Tenant.Created"

    class Registered(Created):
        TOPIC = "training.tenancy:Tenant.Registered"
        slug: str
        name: str
        seat_limit: int

    class Renamed(Event):
        TOPIC = "training.tenancy:Tenant.Renamed"
        name: str

    class SeatLimitChanged(Event):
        TOPIC = "training.tenancy:Tenant.SeatLimitChanged"
        seat_limit: int

    class Suspended(Event):
        TOPIC = "training.tenancy:Tenant.Suspended"
        reason: str

    class Reactivated(Event):
        TOPIC = "training.tenancy:Tenant.Reactivated"

    @staticmethod
    def create_id(slug: str) -> UUID:
        return stable_id("tenants", slug)

    @classmethod
    def register(cls, slug: str, name: str, seat_limit: int) -> Tenant:
        if not SLUG_PATTERN.match(slug):
            raise RuleViolated(
                "a slug is 1-40 lower-case letters, digits or inner hyphens", field="slug"
            )
        return cls(slug=slug, name=check_name(name), seat_limit=check_seat_limit(seat_limit))

    @event(Registered)
    def __init__(self, slug: str, name: str, seat_limit: int) -> None:
        self.slug = slug
        self.name = name
        self.seat_limit = seat_limit
        self.status = TenantStatus.ACTIVE
        self.tenant_id = self.id

    def rename(self, name: str) -> None:
        cleaned = check_name(name)
        if cleaned != self.name:
            self._renamed(name=cleaned)

    @event(Renamed)
    def _renamed(self, name: str) -> None:
        self.name = name

    def change_seat_limit(self, seat_limit: int) -> None:
        if check_seat_limit(seat_limit) != self.seat_limit:
            self._seat_limit_changed(seat_limit=seat_limit)

    @event(SeatLimitChanged)
    def _seat_limit_changed(self, seat_limit: int) -> None:
        self.seat_limit = seat_limit

    def suspend(self, reason: str) -> None:
        if self.status is TenantStatus.SUSPENDED:
            raise InvalidTransition("the tenant is already suspended")
        if not reason.strip():
            raise RuleViolated("say why the tenant is suspended", field="reason")
        self._suspended(reason=reason.strip())

    @event(Suspended)
    def _suspended(self, reason: str) -> None:
        self.status = TenantStatus.SUSPENDED

    def reactivate(self) -> None:
        if self.status is TenantStatus.ACTIVE:
            raise InvalidTransition("the tenant is already active")
        self._reactivated()

    @event(Reactivated)
    def _reactivated(self) -> None:
        self.status = TenantStatus.ACTIVE

    @property
    def is_active(self) -> bool:
        return self.status is TenantStatus.ACTIVE


class ApiClient(TrainingAggregate):
    """A machine credential: a client id, a hashed secret and the scopes it may request.

    Operator clients belong to no tenant (``tenant_id`` is ``None``) and carry only the
    operator scope; a tenant's clients carry tenant scopes only.
    """

    TOPIC = "training.tenancy:ApiClient"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.tenancy:ApiClient.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.tenancy:ApiClient.Created"

    class Registered(Created):
        TOPIC = "training.tenancy:ApiClient.Registered"
        client_id: str
        name: str
        scopes: tuple[str, ...]
        secret_hash: str

    class Revoked(Event):
        TOPIC = "training.tenancy:ApiClient.Revoked"

    @staticmethod
    def create_id(client_id: str) -> UUID:
        return stable_id("api-clients", client_id)

    @classmethod
    def register(
        cls,
        *,
        client_id: str,
        tenant_id: UUID | None,
        name: str,
        scopes: tuple[str, ...],
        secret_hash: str,
    ) -> ApiClient:
        allowed = {OPERATOR_SCOPE} if tenant_id is None else TENANT_SCOPES
        unknown = sorted(set(scopes) - allowed)
        if unknown:
            raise RuleViolated(
                f"unknown or not allowed scopes: {', '.join(unknown)}", field="scopes"
            )
        if not scopes:
            raise RuleViolated("a client needs at least one scope", field="scopes")
        return cls(
            client_id=client_id,
            name=check_name(name),
            scopes=tuple(sorted(set(scopes))),
            secret_hash=secret_hash,
            tenant_id=tenant_id,
        )

    @event(Registered)
    def __init__(
        self,
        client_id: str,
        name: str,
        scopes: tuple[str, ...],
        secret_hash: str,
        *,
        tenant_id: UUID | None = None,
    ) -> None:
        self.client_id = client_id
        self.tenant_id = tenant_id
        self.name = name
        self.scopes = scopes
        self.secret_hash = secret_hash
        self.status = ClientStatus.ACTIVE

    def revoke(self) -> None:
        if self.status is ClientStatus.REVOKED:
            raise InvalidTransition("the client is already revoked")
        self._revoked()

    @event(Revoked)
    def _revoked(self) -> None:
        self.status = ClientStatus.REVOKED

    @property
    def is_active(self) -> bool:
        return self.status is ClientStatus.ACTIVE
