"""Signing in as a person of the demo tenant without an identity provider.

The demo tenant has no identity provider, yet a newcomer wants to try what an engineer or a
manager sees: assessments, the training track, the team. ``training demo --sign-in EMAIL``
signs a short-lived access token for that person, of the same shape as the member tokens
the API accepts. Whoever can run ``training`` against the service's database holds its
signing keys anyway; the command still refuses every tenant but the demo one, so it cannot
stand in for a real company's sign-in.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from uuid import UUID

import psycopg
from joserfc import jwt

from training.core.access import Role
from training.demo.world import DEMO_SLUG
from training.identity.keys import KeyRing
from training.infra.database import Database
from training.infra.secretbox import SecretBox
from training.infra.settings import Settings
from training.tenancy.domain import Tenant

# The member may act as themselves for this long; a new command gives a new token.
TOKEN_SECONDS = 900


@dataclass(frozen=True)
class DemoPerson:
    member_id: UUID
    name: str
    email: str
    roles: tuple[Role, ...]


def demo_people(database: Database) -> list[DemoPerson]:
    """The demo tenant's active people, engineers first (empty when it is not loaded)."""
    tenant_id = Tenant.create_id(DEMO_SLUG)
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT p.member_id, p.display_name, p.email, m.roles FROM training.people p "
            "JOIN training.members m ON m.member_id = p.member_id "
            "WHERE p.tenant_id = %s AND m.status = 'active' AND p.email IS NOT NULL "
            "ORDER BY p.display_name",
            (tenant_id,),
        ).fetchall()
    people = [
        DemoPerson(row[0], str(row[1]), str(row[2]), tuple(Role(r) for r in row[3] or ()))
        for row in rows
    ]
    return sorted(people, key=lambda p: (Role.ENGINEER not in p.roles, p.name))


def demo_member_token(database: Database, settings: Settings, member_id: UUID) -> str:
    """An access token for ``member_id`` of the demo tenant, signed with the active key."""
    keys = KeyRing(database.app_url, SecretBox.from_settings(settings)).current()
    now = int(time.time())
    header = {"alg": "RS256", "typ": "at+jwt", "kid": keys.signing_key.kid}
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": str(member_id),
        "member_id": str(member_id),
        "tenant_id": str(Tenant.create_id(DEMO_SLUG)),
        "client_id": "training-demo-sign-in",
        "iat": now,
        "exp": now + TOKEN_SECONDS,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(header, claims, keys.signing_key)


def find_demo_person(people: list[DemoPerson], email: str) -> DemoPerson | None:
    wanted = email.strip().lower()
    return next((p for p in people if p.email.lower() == wanted), None)
