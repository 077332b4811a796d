"""Rotating the signing key keeps tokens signed just before the rotation valid."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from tests.conftest import TEST_ISSUER, make_settings
from tests.helpers import bearer, fetch_token, register_operator
from training.bootstrap import Services
from training.identity.authentication import verify_access_token
from training.identity.keys import KeyRing, rotate_signing_key
from training.infra.secretbox import SecretBox


def kids(client: TestClient[Any]) -> list[str]:
    return [key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]]


def test_the_previous_key_stays_published_until_the_next_rotation(
    client: TestClient[Any], services: Services
) -> None:
    box = SecretBox.from_settings(make_settings())
    operator = register_operator(services)
    old_token = fetch_token(client, operator)
    [old_kid] = kids(client)

    new_kid = rotate_signing_key(services.database.admin_url, box)
    services.keys.reload()  # what the cache does within a minute
    assert sorted(kids(client)) == sorted([old_kid, new_kid])
    assert client.get("/v1/tenants", headers=bearer(old_token)).status_code == 200
    new_token = fetch_token(client, operator)
    assert client.get("/v1/tenants", headers=bearer(new_token)).status_code == 200

    newest_kid = rotate_signing_key(services.database.admin_url, box)
    services.keys.reload()
    assert sorted(kids(client)) == sorted([new_kid, newest_kid])
    refused = client.get("/v1/tenants", headers=bearer(old_token))
    assert refused.status_code == 401
    assert client.get("/v1/tenants", headers=bearer(new_token)).status_code == 200


def test_a_verifier_with_a_stale_cache_learns_a_new_kid_at_once(
    client: TestClient[Any], services: Services
) -> None:
    box = SecretBox.from_settings(make_settings())
    # Another API process: it loaded the keys before the rotation and caches them.
    other_process = KeyRing(services.database.app_url, box)
    stale_kids = {key.kid for key in other_process.current().public_keys.keys}

    new_kid = rotate_signing_key(services.database.admin_url, box)
    services.keys.reload()
    token = fetch_token(client, register_operator(services))
    assert new_kid not in stale_kids

    claims = verify_access_token(
        token, other_process, issuer=TEST_ISSUER, audience=services.settings.audience
    )
    assert claims["client_id"].startswith("op_")
    assert new_kid in {key.kid for key in other_process.current().public_keys.keys}
