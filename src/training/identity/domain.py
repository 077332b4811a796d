"""Single sign-on: one OpenID Connect identity provider per tenant.

The client secret is never held in plain text here: the application seals it (AES-GCM, see
``infra.secretbox``) and the aggregate, so its events, keep only the ciphertext.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import event

from training.core.access import Role
from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import RuleViolated

DOMAIN_PATTERN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
MAX_DOMAINS = 50
MAX_GROUPS = 200
MAX_TEXT = 512
MAX_ALLOWED_HOSTS = 10
# Plain HTTP only for an identity provider on this machine (development and tests); the
# service's outbound policy refuses it, and any non-public address, outside development.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOST_PATTERN = re.compile(rf"^(?=.{{1,253}}$){HOST_LABEL}(?:\.{HOST_LABEL})*$")


ISSUER_PATTERN = re.compile(
    r"^(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]+|\[::1\])(?::[0-9]{1,5})?(?:/[\x21-\x7e]*)?$"
)


def check_issuer(issuer: str) -> str:
    cleaned = issuer.strip().rstrip("/")
    found = ISSUER_PATTERN.match(cleaned)
    if not found or len(cleaned) > MAX_TEXT or "?" in cleaned or "#" in cleaned:
        raise RuleViolated("the issuer is an absolute URL without query", field="issuer")
    host = found["host"].strip("[]").lower()
    if found["scheme"] != "https" and host not in LOCAL_HOSTS:
        raise RuleViolated("the issuer must use https", field="issuer")
    return cleaned


def check_text(value: str, field: str) -> str:
    cleaned = value.strip()
    if not cleaned or len(cleaned) > MAX_TEXT:
        raise RuleViolated(f"{field} has 1-{MAX_TEXT} characters", field=field)
    return cleaned


def check_domains(domains: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    cleaned = tuple(sorted({d.strip().lower().lstrip("@") for d in domains}))
    if not cleaned:
        raise RuleViolated("allow at least one email domain", field="allowed_domains")
    if len(cleaned) > MAX_DOMAINS:
        raise RuleViolated(f"at most {MAX_DOMAINS} email domains", field="allowed_domains")
    for domain in cleaned:
        if not DOMAIN_PATTERN.match(domain):
            raise RuleViolated(f"not a domain name: {domain!r}", field="allowed_domains")
    return cleaned


def check_allowed_hosts(hosts: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Host names (not addresses, no port) the IdP's endpoints may be on besides the issuer's."""
    cleaned = tuple(sorted({h.strip().lower().rstrip(".") for h in hosts}))
    if len(cleaned) > MAX_ALLOWED_HOSTS:
        raise RuleViolated(f"at most {MAX_ALLOWED_HOSTS} allowed hosts", field="allowed_hosts")
    for host in cleaned:
        # A last label of digits only is an IPv4 address, not a name.
        if not HOST_PATTERN.match(host) or host.rpartition(".")[2].isdigit():
            raise RuleViolated(f"not a host name: {host!r}", field="allowed_hosts")
    return cleaned


def check_group_roles(
    group_roles: dict[str, tuple[str, ...]] | dict[str, list[str]],
) -> dict[str, tuple[str, ...]]:
    if len(group_roles) > MAX_GROUPS:
        raise RuleViolated(f"at most {MAX_GROUPS} group mappings", field="group_roles")
    known = {str(role) for role in Role}
    cleaned: dict[str, tuple[str, ...]] = {}
    for group, roles in group_roles.items():
        name = check_text(group, "group_roles")
        if not roles:
            raise RuleViolated(f"group {name!r} maps to no role", field="group_roles")
        unknown = sorted({str(r) for r in roles} - known)
        if unknown:
            raise RuleViolated(f"unknown roles: {', '.join(unknown)}", field="group_roles")
        cleaned[name] = tuple(sorted({str(r) for r in roles}))
    return dict(sorted(cleaned.items()))


class SsoConnection(TrainingAggregate):
    """How a tenant's people sign in: its identity provider and what to do with them."""

    TOPIC = "training.sso:SsoConnection"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.sso:SsoConnection.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.sso:SsoConnection.Created"

    class Configured(Created):
        TOPIC = "training.sso:SsoConnection.Configured"
        issuer: str
        client_id: str
        sealed_secret: str  # base64 of the SecretBox ciphertext, never the secret
        allowed_domains: tuple[str, ...]
        jit: bool
        group_roles: dict[str, tuple[str, ...]]
        audience: str | None
        allowed_hosts: tuple[str, ...]

        # v2 added allowed_hosts: connections configured before list none.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["allowed_hosts"] = []

    class Reconfigured(Event):
        TOPIC = "training.sso:SsoConnection.Reconfigured"
        issuer: str
        client_id: str
        sealed_secret: str
        allowed_domains: tuple[str, ...]
        jit: bool
        group_roles: dict[str, tuple[str, ...]]
        audience: str | None
        allowed_hosts: tuple[str, ...]

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["allowed_hosts"] = []

    @staticmethod
    def create_id(tenant_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "sso")

    @classmethod
    def configure(
        cls,
        *,
        tenant_id: UUID,
        issuer: str,
        client_id: str,
        sealed_secret: str,
        allowed_domains: tuple[str, ...],
        jit: bool,
        group_roles: dict[str, tuple[str, ...]],
        audience: str | None = None,
        allowed_hosts: tuple[str, ...] = (),
    ) -> SsoConnection:
        checked = _Checked.of(
            issuer, client_id, sealed_secret, allowed_domains, group_roles, audience, allowed_hosts
        )
        return cls(
            checked.issuer,
            checked.client_id,
            checked.sealed_secret,
            checked.allowed_domains,
            jit,
            checked.group_roles,
            checked.audience,
            checked.allowed_hosts,
            tenant_id=tenant_id,
        )

    @event(Configured)
    def __init__(
        self,
        issuer: str,
        client_id: str,
        sealed_secret: str,
        allowed_domains: tuple[str, ...],
        jit: bool,
        group_roles: dict[str, tuple[str, ...]],
        audience: str | None,
        allowed_hosts: tuple[str, ...],
        *,
        tenant_id: UUID | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self._apply(
            issuer,
            client_id,
            sealed_secret,
            allowed_domains,
            jit,
            group_roles,
            audience,
            allowed_hosts,
        )

    def reconfigure(
        self,
        *,
        issuer: str,
        client_id: str,
        sealed_secret: str,
        allowed_domains: tuple[str, ...],
        jit: bool,
        group_roles: dict[str, tuple[str, ...]],
        audience: str | None = None,
        allowed_hosts: tuple[str, ...] = (),
    ) -> None:
        checked = _Checked.of(
            issuer, client_id, sealed_secret, allowed_domains, group_roles, audience, allowed_hosts
        )
        self._reconfigured(
            checked.issuer,
            checked.client_id,
            checked.sealed_secret,
            checked.allowed_domains,
            jit,
            checked.group_roles,
            checked.audience,
            checked.allowed_hosts,
        )

    @event(Reconfigured)
    def _reconfigured(
        self,
        issuer: str,
        client_id: str,
        sealed_secret: str,
        allowed_domains: tuple[str, ...],
        jit: bool,
        group_roles: dict[str, tuple[str, ...]],
        audience: str | None,
        allowed_hosts: tuple[str, ...],
    ) -> None:
        self._apply(
            issuer,
            client_id,
            sealed_secret,
            allowed_domains,
            jit,
            group_roles,
            audience,
            allowed_hosts,
        )

    def _apply(
        self,
        issuer: str,
        client_id: str,
        sealed_secret: str,
        allowed_domains: tuple[str, ...],
        jit: bool,
        group_roles: dict[str, tuple[str, ...]],
        audience: str | None,
        allowed_hosts: tuple[str, ...],
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.sealed_secret = sealed_secret
        self.allowed_domains = tuple(allowed_domains)
        self.jit = jit
        self.group_roles = {k: tuple(v) for k, v in group_roles.items()}
        self.audience = audience
        self.allowed_hosts = tuple(allowed_hosts)

    @property
    def token_audience(self) -> str:
        """What the ``aud`` of the IdP's access tokens must name."""
        return self.audience or self.client_id

    def allows_email(self, email: str) -> bool:
        local, at, domain = email.strip().lower().rpartition("@")
        return bool(local and at and domain) and domain in self.allowed_domains

    def roles_for(self, groups: list[str] | tuple[str, ...]) -> tuple[Role, ...]:
        """The roles the IdP's groups grant; engineer when none is mapped."""
        roles = {Role(r) for g in groups for r in self.group_roles.get(str(g), ())}
        return tuple(sorted(roles)) or (Role.ENGINEER,)


@dataclass(frozen=True)
class _Checked:
    issuer: str
    client_id: str
    sealed_secret: str
    allowed_domains: tuple[str, ...]
    group_roles: dict[str, tuple[str, ...]]
    audience: str | None
    allowed_hosts: tuple[str, ...]

    @classmethod
    def of(
        cls,
        issuer: str,
        client_id: str,
        sealed_secret: str,
        allowed_domains: tuple[str, ...],
        group_roles: dict[str, tuple[str, ...]],
        audience: str | None,
        allowed_hosts: tuple[str, ...],
    ) -> _Checked:
        if not sealed_secret:
            raise RuleViolated("the client secret is required", field="client_secret")
        return cls(
            check_issuer(issuer),
            check_text(client_id, "client_id"),
            sealed_secret,
            check_domains(allowed_domains),
            check_group_roles(group_roles),
            check_text(audience, "audience") if audience else None,
            check_allowed_hosts(allowed_hosts),
        )
