"""The tenancy endpoints, their conventions and the ways they refuse bad requests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import TEST_ISSUER
from tests.helpers import (
    PROBLEM,
    TenantUnderTest,
    basic,
    bearer,
    fetch_token,
    forge_tokens,
    member_token,
    register_operator,
    register_tenant_with_client,
)
from training.bootstrap import Services
from training.registry import PROJECTIONS
from training.tenancy.domain import OPERATOR_SCOPE


def slug() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def create_tenant(client: TestClient[Any], token: str, **overrides: Any) -> Any:
    body = {"slug": slug(), "name": "Initech", "seat_limit": 25, **overrides}
    return client.post("/v1/tenants", json=body, headers=bearer(token))


def event_count(services: Services) -> int:
    return int(services.app.recorder.max_notification_id() or 0)


def test_operator_registers_and_reads_a_tenant(
    client: TestClient[Any], operator_token: str
) -> None:
    created = create_tenant(client, operator_token, name="Initech")
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "Initech"
    assert body["status"] == "active"
    assert created.headers["etag"] == '"1"'
    assert created.headers["location"] == f"/v1/tenants/{body['tenant_id']}"
    position = created.headers["training-position"]

    read = client.get(
        created.headers["location"],
        headers={**bearer(operator_token), "Training-Position": position},
    )
    assert read.status_code == 200
    assert read.json()["slug"] == body["slug"]
    assert read.headers["etag"] == '"1"'


def test_a_slug_is_unique(client: TestClient[Any], operator_token: str) -> None:
    taken = slug()
    assert create_tenant(client, operator_token, slug=taken).status_code == 201
    again = create_tenant(client, operator_token, slug=taken)
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert again.json()["errors"][0]["field"] == "slug"


def test_rename_suspend_and_reactivate(client: TestClient[Any], operator_token: str) -> None:
    tenant = create_tenant(client, operator_token).json()
    url = f"/v1/tenants/{tenant['tenant_id']}"
    renamed = client.patch(
        url, json={"name": "Initrode"}, headers={**bearer(operator_token), "If-Match": '"1"'}
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Initrode"
    assert renamed.headers["etag"] == '"2"'

    suspended = client.post(
        f"{url}/suspend", json={"reason": "unpaid invoice"}, headers=bearer(operator_token)
    )
    assert suspended.json()["status"] == "suspended"
    twice = client.post(f"{url}/suspend", json={"reason": "again"}, headers=bearer(operator_token))
    assert twice.status_code == 409
    assert twice.headers["content-type"] == PROBLEM

    reactivated = client.post(f"{url}/reactivate", json={}, headers=bearer(operator_token))
    assert reactivated.status_code == 200
    assert reactivated.json()["status"] == "active"
    read = client.get(
        url,
        headers={
            **bearer(operator_token),
            "Training-Position": reactivated.headers["training-position"],
        },
    )
    assert read.json()["name"] == "Initrode"
    assert read.json()["version"] == 4


def test_a_stale_if_match_is_refused_and_writes_nothing(
    client: TestClient[Any], operator_token: str, services: Services
) -> None:
    tenant = create_tenant(client, operator_token).json()
    url = f"/v1/tenants/{tenant['tenant_id']}"
    assert (
        client.patch(
            url, json={"name": "First"}, headers={**bearer(operator_token), "If-Match": '"1"'}
        ).status_code
        == 200
    )
    before = event_count(services)
    stale = client.patch(
        url, json={"name": "Second"}, headers={**bearer(operator_token), "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == PROBLEM
    assert event_count(services) == before
    malformed = client.patch(
        url, json={"name": "Third"}, headers={**bearer(operator_token), "If-Match": "yesterday"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["errors"][0]["field"] == "If-Match"


def test_idempotency_key_replays_the_first_response(
    client: TestClient[Any], operator_token: str, services: Services
) -> None:
    body = {"slug": slug(), "name": "Umbrella", "seat_limit": 5}
    headers = {**bearer(operator_token), "Idempotency-Key": uuid.uuid4().hex}
    first = client.post("/v1/tenants", json=body, headers=headers)
    assert first.status_code == 201
    before = event_count(services)

    replay = client.post("/v1/tenants", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.content == first.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["etag"] == first.headers["etag"]
    assert event_count(services) == before

    different = client.post("/v1/tenants", json={**body, "name": "Other"}, headers=headers)
    assert different.status_code == 422
    assert different.headers["content-type"] == PROBLEM
    assert event_count(services) == before


def test_lists_are_paginated_with_a_stable_cursor(
    client: TestClient[Any], operator_token: str
) -> None:
    prefix = f"p{uuid.uuid4().hex[:6]}"
    last = None
    for index in range(5):
        last = create_tenant(client, operator_token, slug=f"{prefix}-{index}")
    assert last is not None
    headers = {**bearer(operator_token), "Training-Position": last.headers["training-position"]}
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/tenants", params=params, headers=headers).json()
        assert len(page["items"]) <= 2
        seen.extend(item["slug"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))
    assert [s for s in seen if s.startswith(prefix)] == [f"{prefix}-{i}" for i in range(5)]

    bad = client.get(
        "/v1/tenants", params={"cursor": "not-a-cursor"}, headers=bearer(operator_token)
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "cursor"
    too_big = client.get("/v1/tenants", params={"limit": 100000}, headers=bearer(operator_token))
    assert too_big.status_code == 400


def test_clients_are_registered_listed_and_revoked(
    client: TestClient[Any], operator_token: str, services: Services
) -> None:
    tenant = create_tenant(client, operator_token).json()
    url = f"/v1/tenants/{tenant['tenant_id']}/clients"
    created = client.post(
        url, json={"name": "HRIS", "scopes": ["tenant:read"]}, headers=bearer(operator_token)
    )
    assert created.status_code == 201
    credentials = created.json()
    assert credentials["client_secret"]
    assert created.headers["cache-control"] == "no-store"

    token = client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )
    assert token.status_code == 200
    tenant_token = token.json()["access_token"]
    own = client.get(
        f"/v1/tenants/{tenant['tenant_id']}",
        headers={**bearer(tenant_token), "Training-Position": created.headers["training-position"]},
    )
    assert own.status_code == 200

    listed = client.get(
        url,
        headers={
            **bearer(operator_token),
            "Training-Position": created.headers["training-position"],
        },
    )
    assert [c["client_id"] for c in listed.json()["items"]] == [credentials["client_id"]]
    assert "client_secret" not in listed.text
    assert credentials["client_secret"] not in listed.text

    revoked = client.delete(f"{url}/{credentials['client_id']}", headers=bearer(operator_token))
    assert revoked.status_code == 204
    refused = client.get(f"/v1/tenants/{tenant['tenant_id']}", headers=bearer(tenant_token))
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM
    again = client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )
    assert again.status_code == 400  # client_secret_post: RFC 6749 §5.2 answers 400
    assert again.json()["error"] == "invalid_client"


def test_a_suspended_tenants_tokens_are_refused(
    client: TestClient[Any], operator_token: str, services: Services
) -> None:
    tenant_id, credentials = register_tenant_with_client(services, slug())
    token = fetch_token(client, credentials)
    assert client.get(f"/v1/tenants/{tenant_id}", headers=bearer(token)).status_code in (200, 404)
    client.post(
        f"/v1/tenants/{tenant_id}/suspend",
        json={"reason": "contract ended"},
        headers=bearer(operator_token),
    )
    refused = client.get(f"/v1/tenants/{tenant_id}", headers=bearer(token))
    assert refused.status_code == 401
    assert "suspended" in refused.json()["detail"]
    no_new_token = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
    )
    assert no_new_token.status_code == 401  # HTTP Basic: RFC 6749 §5.2 answers 401
    assert no_new_token.json()["error"] == "invalid_client"


def test_another_tenants_resources_are_not_found(
    client: TestClient[Any], operator_token: str, services: Services
) -> None:
    mine, my_client = register_tenant_with_client(services, slug(), ("tenant:read", "clients:read"))
    theirs, _ = register_tenant_with_client(services, slug())
    token = fetch_token(client, my_client)
    for path in (f"/v1/tenants/{theirs}", f"/v1/tenants/{theirs}/clients"):
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 404, path
        assert response.headers["content-type"] == PROBLEM
        assert str(theirs) in response.json()["detail"]
        assert "slug" not in response.json()
    assert (
        client.get(f"/v1/tenants/{uuid.uuid4()}", headers=bearer(operator_token)).status_code == 404
    )
    own = client.get(f"/v1/tenants/{mine}/clients", headers=bearer(token))
    assert own.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/tenants"),
        ("post", "/v1/tenants"),
        ("patch", "/v1/tenants/{tenant}"),
        ("post", "/v1/tenants/{tenant}/suspend"),
        ("post", "/v1/tenants/{tenant}/reactivate"),
        ("post", "/v1/tenants/{tenant}/clients"),
        ("delete", "/v1/tenants/{tenant}/clients/tc_x"),
    ],
)
def test_a_tenant_client_cannot_use_operator_endpoints(
    client: TestClient[Any], services: Services, method: str, path: str
) -> None:
    tenant_id, credentials = register_tenant_with_client(services, slug())
    token = fetch_token(client, credentials)
    kwargs: dict[str, Any] = {"headers": bearer(token)}
    if method in ("post", "patch"):
        kwargs["json"] = {}
    response = getattr(client, method)(path.format(tenant=tenant_id), **kwargs)
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM


def test_too_few_scopes_is_forbidden(client: TestClient[Any], services: Services) -> None:
    tenant_id, credentials = register_tenant_with_client(services, slug())
    token = forge_tokens(services, credentials, TEST_ISSUER).without_scopes
    for path, scope in (
        (f"/v1/tenants/{tenant_id}", "tenant:read"),
        (f"/v1/tenants/{tenant_id}/clients", "clients:read"),
    ):
        forbidden = client.get(path, headers=bearer(token))
        assert forbidden.status_code == 403, path
        assert forbidden.headers["content-type"] == PROBLEM
        assert scope in forbidden.json()["detail"]


def test_a_client_cannot_ask_for_a_scope_it_does_not_hold(
    client: TestClient[Any], services: Services
) -> None:
    _, credentials = register_tenant_with_client(services, slug())
    response = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": OPERATOR_SCOPE},
        headers={"Authorization": basic(credentials.client_id, credentials.client_secret)},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["error"] == "invalid_scope"
    assert OPERATOR_SCOPE in response.json()["detail"]


def test_bad_tokens_are_refused(client: TestClient[Any], services: Services) -> None:
    tenant_id, credentials = register_tenant_with_client(services, slug())
    forged = forge_tokens(services, credentials, TEST_ISSUER)
    url = f"/v1/tenants/{tenant_id}"
    cases = {
        "missing": {},
        "not a bearer": {"Authorization": "Basic abc"},
        "garbage": bearer("not.a.jwt"),
        "expired": bearer(forged.expired),
        "wrong audience": bearer(forged.wrong_audience),
        "wrong signature": bearer(forged.wrong_signature),
        "wrong issuer": bearer(forged.wrong_issuer),
    }
    for case, headers in cases.items():
        response = client.get(url, headers=headers)
        assert response.status_code == 401, case
        assert response.headers["content-type"] == PROBLEM, case
        assert response.headers["www-authenticate"].startswith("Bearer"), case


def test_malformed_bodies_name_the_field_and_write_nothing(
    client: TestClient[Any], operator_token: str, services: Services
) -> None:
    before = event_count(services)
    cases = [
        ({"slug": "UPPER", "name": "x", "seat_limit": 1}, "slug"),
        ({"slug": slug(), "name": "", "seat_limit": 1}, "name"),
        ({"slug": slug(), "name": "x", "seat_limit": 0}, "seat_limit"),
        ({"slug": slug(), "name": "x", "seat_limit": "many"}, "seat_limit"),
        ({"slug": slug(), "name": "x"}, "seat_limit"),
        ({"slug": slug(), "name": "x", "seat_limit": 1, "extra": True}, "extra"),
        ({"slug": slug(), "name": "x\x00", "seat_limit": 1}, "name"),
    ]
    for body, field in cases:
        response = client.post("/v1/tenants", json=body, headers=bearer(operator_token))
        assert response.status_code == 400, body
        assert response.headers["content-type"] == PROBLEM
        assert field in {e.get("field") for e in response.json()["errors"]}, response.json()
    not_json = client.post(
        "/v1/tenants",
        content=b"{",
        headers={**bearer(operator_token), "content-type": "application/json"},
    )
    assert not_json.status_code == 400
    assert not_json.headers["content-type"] == PROBLEM
    blank = client.post(
        "/v1/tenants",
        json={"slug": slug(), "name": "   ", "seat_limit": 3},
        headers=bearer(operator_token),
    )
    assert blank.status_code == 422
    assert blank.json()["errors"][0]["field"] == "name"
    assert event_count(services) == before


def test_unknown_routes_and_methods_are_problems(
    client: TestClient[Any], operator_token: str
) -> None:
    missing = client.get("/v1/nothing-here", headers=bearer(operator_token))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    wrong_method = client.put("/v1/tenants", headers=bearer(operator_token))
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == PROBLEM


def test_token_endpoint_refuses_bad_requests(client: TestClient[Any], services: Services) -> None:
    operator = register_operator(services)
    wrong_secret = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(operator.client_id, "nope")},
    )
    assert wrong_secret.status_code == 401
    assert wrong_secret.headers["content-type"] == PROBLEM
    assert wrong_secret.json()["error"] == "invalid_client"
    wrong_grant = client.post(
        "/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": operator.client_id,
            "client_secret": operator.client_secret,
        },
    )
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] in ("unsupported_grant_type", "unauthorized_client")
    as_json = client.post("/oauth2/token", json={"grant_type": "client_credentials"})
    assert as_json.status_code == 400
    assert as_json.headers["content-type"] == PROBLEM


def test_jwks_and_metadata_are_public(client: TestClient[Any]) -> None:
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys
    assert all("d" not in key for key in keys)  # never a private part
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == TEST_ISSUER
    assert metadata["grant_types_supported"] == ["client_credentials"]


def test_health_and_readiness(client: TestClient[Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["database"] == "ok"
    assert body["migrations"] == "ok"
    assert {p["name"] for p in body["projections"]} == {s.name for s in PROJECTIONS} | {
        "report_triggers"
    }


def test_nul_characters_in_a_query_are_refused(
    client: TestClient[Any], operator_token: str
) -> None:
    response = client.get("/v1/tenants?status=%00", headers=bearer(operator_token))
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM


def test_a_tenant_administrator_registers_and_revokes_their_own_clients(
    client: TestClient[Any], services: Services
) -> None:
    tenant = TenantUnderTest(client, services)
    other = TenantUnderTest(client, services)
    admin = tenant.add(f"TA{uuid.uuid4().hex[:6]}", roles=["tenant_admin"]).json()["member_id"]
    engineer = tenant.add(f"TE{uuid.uuid4().hex[:6]}").json()["member_id"]
    admin_token = bearer(member_token(services, tenant.tenant_id, uuid.UUID(admin)))
    url = f"/v1/tenants/{tenant.tenant_id}/clients"
    created = client.post(
        url, json={"name": "HRIS", "scopes": ["members:read"]}, headers=admin_token
    )
    assert created.status_code == 201, created.text
    issued = created.json()
    assert issued["client_secret"]
    granted = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(issued["client_id"], issued["client_secret"])},
    )
    assert granted.status_code == 200, granted.text
    # Not another tenant's, not as an engineer, and not as an integration client.
    theirs = f"/v1/tenants/{other.tenant_id}/clients"
    assert (
        client.post(
            theirs, json={"name": "x", "scopes": ["members:read"]}, headers=admin_token
        ).status_code
        == 404
    )
    engineer_token = bearer(member_token(services, tenant.tenant_id, uuid.UUID(engineer)))
    assert (
        client.post(
            url, json={"name": "x", "scopes": ["members:read"]}, headers=engineer_token
        ).status_code
        == 403
    )
    assert (
        client.post(
            url, json={"name": "x", "scopes": ["members:read"]}, headers=tenant.headers()
        ).status_code
        == 403
    )
    assert client.delete(f"{theirs}/{issued['client_id']}", headers=admin_token).status_code == 404
    revoked = client.delete(f"{url}/{issued['client_id']}", headers=admin_token)
    assert revoked.status_code == 204, revoked.text
    refused = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(issued["client_id"], issued["client_secret"])},
    )
    assert refused.status_code in (400, 401)
