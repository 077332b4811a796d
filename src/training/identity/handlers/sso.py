"""Single sign-on use cases: configure a tenant's IdP, find who signs in, provision them.

The client secret reaches the command already sealed (the API seals it with the service's
``SecretBox``, bound to the tenant), so neither the command bus nor any event sees it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from training.core.application import TrainingApplication
from training.core.bus import Handler, UnitOfWork
from training.core.errors import NotFound, RuleViolated
from training.identity.domain import SsoConnection
from training.people.domain.members import EXTERNAL_ID_PATTERN
from training.people.queries import member_in_force
from training.tenancy.domain import Tenant
from training.tenancy.queries import tenant_is_active

# The session a successful sign-in starts, and the sign-in in progress (both sealed cookies).
SESSION_COOKIE = "training_session"
SESSION_PURPOSE = "session"
SESSION_TTL = 8 * 3600
PENDING_COOKIE = "training_sso_pending"
PENDING_PURPOSE = "pending-sign-in"
PENDING_TTL = 600

SSO_TOPICS = (SsoConnection.Configured.TOPIC, SsoConnection.Reconfigured.TOPIC)


@dataclass(frozen=True)
class ConfigureSso:
    """``sealed_secret`` None keeps the secret already configured."""

    issuer: str
    client_id: str
    sealed_secret: str | None
    allowed_domains: tuple[str, ...]
    jit: bool
    group_roles: dict[str, tuple[str, ...]]
    audience: str | None = None
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class SsoSnapshot:
    tenant_id: UUID
    issuer: str
    client_id: str
    allowed_domains: tuple[str, ...]
    jit: bool
    group_roles: dict[str, tuple[str, ...]]
    audience: str | None
    allowed_hosts: tuple[str, ...]
    version: int

    @classmethod
    def of(cls, connection: SsoConnection) -> SsoSnapshot:
        assert connection.tenant_id is not None
        return cls(
            connection.tenant_id,
            connection.issuer,
            connection.client_id,
            connection.allowed_domains,
            connection.jit,
            dict(connection.group_roles),
            connection.audience,
            connection.allowed_hosts,
            connection.version,
        )


def configure_sso(command: ConfigureSso, uow: UnitOfWork) -> SsoSnapshot:
    tenant_id = uow.require_tenant()
    connection_id = SsoConnection.create_id(tenant_id)
    if uow.exists(connection_id):
        connection = uow.get(SsoConnection, connection_id)
        connection.reconfigure(
            issuer=command.issuer,
            client_id=command.client_id,
            sealed_secret=command.sealed_secret or connection.sealed_secret,
            allowed_domains=command.allowed_domains,
            jit=command.jit,
            group_roles=command.group_roles,
            audience=command.audience,
            allowed_hosts=command.allowed_hosts,
        )
    else:
        if not command.sealed_secret:
            raise RuleViolated("the client secret is required", field="client_secret")
        connection = SsoConnection.configure(
            tenant_id=tenant_id,
            issuer=command.issuer,
            client_id=command.client_id,
            sealed_secret=command.sealed_secret,
            allowed_domains=command.allowed_domains,
            jit=command.jit,
            group_roles=command.group_roles,
            audience=command.audience,
            allowed_hosts=command.allowed_hosts,
        )
        uow.add(connection)
    return SsoSnapshot.of(connection)


HANDLERS: dict[type, Handler] = {ConfigureSso: configure_sso}


# Queries on the write model, like credentials: a change is in force as soon as it is saved.


def sso_connection(app: TrainingApplication, tenant_id: UUID) -> SsoConnection | None:
    """The tenant's connection, if it has one and the tenant is active."""
    try:
        found: object = app.repository.get(SsoConnection.create_id(tenant_id))
    except AggregateNotFoundError:
        return None
    if not isinstance(found, SsoConnection) or found.tenant_id != tenant_id:
        return None
    if not tenant_is_active(app, tenant_id):
        return None
    return found


def require_connection(app: TrainingApplication, tenant_id: UUID) -> SsoConnection:
    found = sso_connection(app, tenant_id)
    if found is None:
        raise NotFound("single sign-on is not configured for this tenant")
    return found


def tenant_slug(app: TrainingApplication, tenant_id: UUID) -> str:
    """The slug of an existing tenant: it names the tenant's sign-in URLs."""
    tenant: object = app.repository.get(tenant_id)
    assert isinstance(tenant, Tenant)
    return tenant.slug


class SsoDirectory:
    """Which tenants trust an issuer: the allow-list for bearer tokens from tenants' IdPs.

    It follows the event store's notification log (only SSO topics), so it sees every
    tenant's configuration, including ones saved by another process, within ``refresh``
    seconds. It remembers the connections it last found for each configured issuer, so the
    calls to that issuer which follow know which tenants they are for and which hosts
    those tenants allow.
    """

    def __init__(self, refresh: float = 2.0) -> None:
        self.refresh = refresh
        self._lock = threading.Lock()
        self._connection_ids: set[UUID] = set()
        self._position = 0
        self._checked_at = float("-inf")
        self._found: dict[str, list[SsoConnection]] = {}

    def _catch_up(self, app: TrainingApplication) -> None:
        while True:
            batch = app.recorder.select_notifications(self._position + 1, 500, topics=SSO_TOPICS)
            if not batch:
                return
            for notification in batch:
                self._connection_ids.add(UUID(str(notification.originator_id)))
            self._position = batch[-1].id

    def invalidate(self) -> None:
        with self._lock:
            self._checked_at = float("-inf")

    def connections_for(self, app: TrainingApplication, issuer: str) -> list[SsoConnection]:
        """The active tenants' connections whose issuer is ``issuer``."""
        with self._lock:
            if time.monotonic() - self._checked_at >= self.refresh:
                self._catch_up(app)
                self._checked_at = time.monotonic()
            ids = list(self._connection_ids)
        issuer = issuer.rstrip("/")
        found = []
        for connection_id in ids:
            try:
                connection: object = app.repository.get(connection_id)
            except AggregateNotFoundError:
                continue
            if (
                isinstance(connection, SsoConnection)
                and connection.issuer == issuer
                and connection.tenant_id is not None
                and tenant_is_active(app, connection.tenant_id)
            ):
                found.append(connection)
        with self._lock:
            # Only issuers some tenant trusts are kept: any token can name any issuer.
            if found:
                self._found[issuer] = found
            else:
                self._found.pop(issuer, None)
        return found

    def last_found(self, issuer: str) -> list[SsoConnection]:
        """The connections ``connections_for`` last found for ``issuer`` (no database read)."""
        with self._lock:
            return list(self._found.get(issuer.rstrip("/"), ()))


def jit_external_id(sub: str) -> str:
    """A provisioned member's external id: ``sso:`` and the IdP's subject (hashed if odd)."""
    candidate = f"sso:{sub}"
    if EXTERNAL_ID_PATTERN.match(candidate):
        return candidate
    return "sso:" + hashlib.sha256(sub.encode()).hexdigest()


def first_member_in_force(
    app: TrainingApplication, tenant_id: UUID, candidates: list[UUID]
) -> tuple[UUID | None, str | None]:
    """The first candidate who may act now; else why the last one may not."""
    refusal = None
    for member_id in candidates:
        standing = member_in_force(app, tenant_id, member_id)
        if standing.refusal is None:
            return member_id, None
        refusal = standing.refusal
    return None, refusal
