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
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from tests.api.test_email_race import PROBLEM, Served, Tenant, at_once
from tests.conftest import make_settings
from tests.helpers import ALL_SCOPES, basic, register_tenant_with_client
from training.api.app import create_app
from training.bootstrap import build_services
from training.infra.database import Database
from training.projections.rebuild import rebuild

START_TIMEOUT = 30.0
ROUNDS = 12
SCIM_JSON = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
Request = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
def served(database: Database) -> Iterator[Served]:
    """The API without the projection runners: the members view is built by the rebuild at
    the end, from the events the race left."""
    services = build_services(make_settings(), database, run_projections=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(services), lifespan="on", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
        services.app.close()


def new_tenant(served: Served) -> Tenant:
    tenant_id, credentials = register_tenant_with_client(
        served.services, f"extid-{uuid.uuid4().hex[:8]}", (*ALL_SCOPES, "scim")
    )
    with httpx.Client(base_url=served.base_url, timeout=30.0) as http:
        issued = http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
        )
    assert issued.status_code == 200, issued.text
    return Tenant(tenant_id, str(issued.json()["access_token"]))


def patch_external_id(tenant: Tenant, member_id: str, wanted: str) -> Request:
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


def register(tenant: Tenant, wanted: str, name: str) -> Request:
    return (
        "POST",
        "/v1/members",
        {
            "json": {"external_id": wanted, "display_name": name, "roles": ["engineer"]},
            "headers": tenant.headers(),
        },
    )


def registered(served: Served, tenant: Tenant) -> str:
    with httpx.Client(base_url=served.base_url, headers=tenant.headers(), timeout=30.0) as http:
        created = http.post(
            "/v1/members",
            json={"external_id": "ANN-1", "display_name": "Ann", "roles": ["engineer"]},
        )
    assert created.status_code == 201, created.text
    return str(created.json()["member_id"])


def test_a_scim_patch_and_a_registration_racing_for_one_external_id_make_one_holder(
    served: Served, database: Database
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
