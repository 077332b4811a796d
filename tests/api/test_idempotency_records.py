"""Idempotency-Key replays of responses that carry a secret: the same answer on a retry,
never the secret in clear at rest, and nothing replayed after the window."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from litestar.testing import TestClient

from tests.helpers import TenantUnderTest, bearer, member_token
from training.bootstrap import Services


def stored_bodies(services: Services, key: str) -> list[bytes]:
    with psycopg.connect(services.database.admin_url) as conn:
        rows = conn.execute(
            "SELECT response_body FROM training.idempotency_keys WHERE key = %s", (key,)
        ).fetchall()
    return [bytes(row[0]) for row in rows if row[0] is not None]


def expire(services: Services, key: str) -> None:
    with psycopg.connect(services.database.admin_url) as conn:
        conn.execute(
            "UPDATE training.idempotency_keys SET expires_at = now() - interval '1 second' "
            "WHERE key = %s",
            (key,),
        )


def test_a_new_clients_secret_is_replayed_but_never_stored_in_clear(
    client: TestClient[Any], services: Services, operator_token: str
) -> None:
    tenant = TenantUnderTest(client, services)
    key = f"clients-{uuid.uuid4().hex}"
    headers = {**bearer(operator_token), "Idempotency-Key": key}
    url = f"/v1/tenants/{tenant.tenant_id}/clients"
    body = {"name": "HRIS", "scopes": ["tenant:read"]}
    first = client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["client_secret"]

    retry = client.post(url, json=body, headers=headers)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()

    [stored] = stored_bodies(services, key)
    assert secret.encode() not in stored
    assert first.json()["client_id"].encode() not in stored

    # After the window the record is not replayed, even before the purge deletes it.
    expire(services, key)
    again = client.post(url, json=body, headers=headers)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["client_id"] != first.json()["client_id"]


def test_a_calendar_url_is_replayed_but_never_stored_in_clear(
    client: TestClient[Any], services: Services
) -> None:
    tenant = TenantUnderTest(client, services)
    member = tenant.add(f"IDEM-{uuid.uuid4().hex[:6]}").json()
    token = member_token(services, tenant.tenant_id, uuid.UUID(member["member_id"]))
    key = f"calendar-{uuid.uuid4().hex}"
    headers = {**bearer(token), "Idempotency-Key": key}
    first = client.post("/v1/me/calendar", headers=headers)
    assert first.status_code == 200, first.text
    feed_url = first.json()["url"]
    secret = feed_url.rsplit("/", 1)[1].removesuffix(".ics")

    retry = client.post("/v1/me/calendar", headers=headers)
    assert retry.json() == {"url": feed_url}
    assert retry.headers["idempotent-replayed"] == "true"
    [stored] = stored_bodies(services, key)
    assert secret.encode() not in stored
    assert b"/calendar/" not in stored
