"""One external id, one member, over real HTTP: a SCIM PATCH giving a member external id "z"
racing ``POST /v1/members`` registering "z", against uvicorn on loopback.

Before, a registration of an id that nobody had changed did not write the tenant's
``ExternalIds``, so both commands saved: two members held "z", and the members view's
unique index refused the second (the event was quarantined, its tenant's view degraded, and a
rebuild hit it again). Now both write ``ExternalIds``: exactly one succeeds, the other answers
409 naming the external id, and the members view rebuilds from the events without setting
anything aside.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.api.races import Request, at_once
from tests.helpers import ALL_SCOPES, PROBLEM
from tests.live_server import LiveServer, TenantToken, live_server, tenant_with_token
from training.infra.database import Database
from training.maintenance.rebuild import rebuild

ROUNDS = 12
SCIM_JSON = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture(scope="module")
def served(database: Database) -> Iterator[LiveServer]:
    """The API without the projection runners: the members view is built by the rebuild at
    the end, from the events the race left."""
    with live_server(database, run_projections=False) as server:
        yield server


def new_tenant(served: LiveServer) -> TenantToken:
    return tenant_with_token(served, "extid", (*ALL_SCOPES, "scim"))


def patch_external_id(tenant: TenantToken, member_id: str, wanted: str) -> Request:
    return (
        "PATCH",
        f"/scim/v2/{tenant.tenant_id}/Users/{member_id}",
        {
            "json": {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "externalId", "value": wanted}],
            },
            "headers": {**tenant.headers(), "Content-Type": SCIM_JSON},
        },
    )


def register(tenant: TenantToken, wanted: str, name: str) -> Request:
    return (
        "POST",
        "/v1/members",
        {
            "json": {"external_id": wanted, "display_name": name, "roles": ["engineer"]},
            "headers": tenant.headers(),
        },
    )


def registered(served: LiveServer, tenant: TenantToken) -> str:
    with httpx.Client(base_url=served.base_url, headers=tenant.headers(), timeout=30.0) as http:
        created = http.post(
            "/v1/members",
            json={"external_id": "ANN-1", "display_name": "Ann", "roles": ["engineer"]},
        )
    assert created.status_code == 201, created.text
    return str(created.json()["member_id"])


def test_a_scim_patch_and_a_registration_racing_for_one_external_id_make_one_holder(
    served: LiveServer, database: Database
) -> None:
    contested: dict[str, uuid.UUID] = {}
    for round_ in range(ROUNDS):
        # Each round in a tenant whose external ids never changed: where a registration did
        # not write ExternalIds before.
        tenant = new_tenant(served)
        ann = registered(served, tenant)
        wanted = f"z-{round_}-{uuid.uuid4().hex[:6]}"
        contested[wanted] = tenant.tenant_id
        patch, registration = asyncio.run(
            at_once(
                served.base_url,
                [patch_external_id(tenant, ann, wanted), register(tenant, wanted, "Zed")],
            )
        )
        answers = [(patch.status_code, patch.text), (registration.status_code, registration.text)]
        if registration.status_code == 201:
            assert patch.status_code == 409, (round_, answers)
            assert patch.json()["scimType"] == "uniqueness", patch.text
        else:
            # A PATCH answers the resource (200) or nothing (204).
            assert patch.status_code in (200, 204), (round_, answers)
            assert registration.status_code == 409, (round_, answers)
            assert registration.headers["content-type"].startswith(PROBLEM)
            assert registration.json()["errors"][0]["field"] == "external_id"

    # The members view, built from these events, sets nothing aside: one holder per id.
    assert rebuild(database, "members", lambda done, total: None) > 0
    tenants = list(set(contested.values()))
    with psycopg.connect(database.admin_url) as conn:
        held = conn.execute(
            "SELECT count(*) FROM training.projection_quarantine "
            "WHERE view_name = 'members' AND tenant_id = ANY(%s)",
            (tenants,),
        ).fetchone()
        holders = conn.execute(
            "SELECT external_id, tenant_id FROM training.members "
            "WHERE tenant_id = ANY(%s) AND external_id = ANY(%s)",
            (tenants, list(contested)),
        ).fetchall()
    assert held == (0,)
    # Each round's id is held by exactly the one who won it (a member moved to it, or a
    # newcomer), in its tenant.
    assert sorted(holders) == sorted(contested.items())
