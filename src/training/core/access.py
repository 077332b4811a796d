"""What each kind of caller may do: scopes for API clients, roles for people.

A scope names one capability. An API client holds scopes directly; a member's roles grant
scopes through ``ROLE_SCOPES``. Checks compare scopes only, so a client and a person with
the same capability pass the same guard.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    TENANT_READ = "tenant:read"
    CLIENTS_READ = "clients:read"  # the tenant's integration clients: administrators only
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    PERSONAL_DATA = "people:personal-data"  # export and erase one person's data
    SKILLS_READ = "skills:read"
    SKILLS_WRITE = "skills:write"
    CURRICULA_READ = "curricula:read"
    CURRICULA_WRITE = "curricula:write"
    AUDIT_READ = "audit:read"
    SCIM = "scim"  # provisioning from the tenant's identity provider
    SSO_ADMIN = "sso:admin"  # configure sign-in with the tenant's identity provider


class Role(StrEnum):
    ENGINEER = "engineer"
    MANAGER = "manager"
    HR_MANAGER = "hr_manager"
    TENANT_ADMIN = "tenant_admin"


_EVERYONE = frozenset({Scope.TENANT_READ, Scope.SKILLS_READ, Scope.CURRICULA_READ})

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.ENGINEER: _EVERYONE,
    # Managers see their own reports through a dedicated check, not the members list.
    Role.MANAGER: _EVERYONE,
    Role.HR_MANAGER: _EVERYONE
    | {Scope.MEMBERS_READ, Scope.MEMBERS_WRITE, Scope.SKILLS_WRITE, Scope.CURRICULA_WRITE},
    Role.TENANT_ADMIN: frozenset(Scope),
}


def scopes_of(roles: frozenset[Role] | tuple[Role, ...]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= {str(scope) for scope in ROLE_SCOPES[role]}
    return frozenset(granted)
