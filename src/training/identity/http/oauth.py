"""OAuth2 client-credentials grant (RFC 6749 §4.4) issuing RFC 9068 JWT access tokens.

authlib's framework-neutral ``AuthorizationServer`` does the protocol work: client
authentication (``client_secret_basic`` or ``client_secret_post``), grant and scope checks
and the token response. Errors keep OAuth2's ``error`` member and are also problem details.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
import structlog
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import KeySet
from litestar import Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.datastructures import State
from litestar.di import NamedDependency

from training.core.application import TrainingApplication
from training.core.credentials import verify_secret
from training.core.http.problems import problem_response
from training.identity.keys import KeyRing, LoadedKeys
from training.infra.settings import Settings
from training.tenancy.domain import OPERATOR_SCOPE, TENANT_SCOPES, ApiClient
from training.tenancy.queries import find_client, tenant_is_active

log = structlog.get_logger(__name__)

AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class RegisteredClient(ClientMixin):  # type: ignore[misc]
    """An ``ApiClient`` aggregate seen through authlib's client interface."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.tenant_id: UUID | None = client.tenant_id

    def get_client_id(self) -> str:
        return str(self.client.client_id)

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        granted = set(self.client.scopes)
        if not scope:
            return " ".join(sorted(granted))
        return " ".join(sorted(s for s in scope.split() if s in granted))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return verify_secret(client_secret, self.client.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class AccessTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    def __init__(self, settings: Settings, keys: KeyRing) -> None:
        super().__init__(
            issuer=settings.issuer,
            alg="RS256",
            expires_generator=lambda _client, _grant_type: settings.token_ttl,
        )
        self.audience = settings.audience
        self.keys = keys

    def get_jwks(self) -> KeySet:
        # Only the active key signs; joserfc puts its kid in the header.
        return KeySet([self.keys.current().signing_key])

    def get_audiences(self, client: RegisteredClient, user: Any, scope: str) -> list[str]:
        return [self.audience]

    def get_extra_claims(
        self, client: RegisteredClient, grant_type: str, user: Any, scope: str
    ) -> dict[str, Any]:
        return {"tenant_id": str(client.tenant_id)} if client.tenant_id else {}


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """authlib reads ``client_secret_post`` credentials from ``request.form``."""

    def __init__(self, uri: str, headers: Any, form: dict[str, str]) -> None:
        super().__init__("POST", uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)
        self._form = form

    @property
    def form(self) -> dict[str, str]:
        return self._form


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        # A client asking for a scope it does not hold gets an error, not a token without it.
        requested = set((self.request.payload.scope or "").split())
        missing = sorted(requested - set(self.request.client.client.scopes))
        if missing:
            raise InvalidScopeError(description=f"the client does not hold: {' '.join(missing)}")


class TokenServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, app: TrainingApplication, settings: Settings, keys: KeyRing) -> None:
        super().__init__(scopes_supported=sorted(TENANT_SCOPES | {OPERATOR_SCOPE}))
        self.app = app
        self.token_url = f"{settings.issuer}/oauth2/token"
        self.register_grant(ClientCredentials)
        self.register_token_generator("default", AccessTokenGenerator(settings, keys))

    def query_client(self, client_id: str) -> RegisteredClient | None:
        client = find_client(self.app, client_id)
        if client is None or not client.is_active:
            return None
        if client.tenant_id is not None and not tenant_is_active(self.app, client.tenant_id):
            return None
        return RegisteredClient(client)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        # Tokens are self-contained JWTs: nothing to store. Log the fact, never the token.
        client: RegisteredClient = request.client
        log.info(
            "token.issued",
            client_id=client.get_client_id(),
            tenant_id=str(client.tenant_id) if client.tenant_id else None,
            scope=token.get("scope"),
        )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: tuple[Any, dict[str, str]]) -> OAuth2Request:
        headers, form = request
        return FormRequest(self.token_url, headers, form)

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers


def issue_token(
    server: TokenServer, headers: Any, form: dict[str, str]
) -> tuple[int, Any, list[tuple[str, str]]]:
    result: tuple[int, Any, list[tuple[str, str]]] = server.create_token_response((headers, form))
    return result


@post(
    "/oauth2/token",
    status_code=200,
    tags=["OAuth2"],
    summary="Client-credentials grant",
    description=(
        "Form-encoded `grant_type=client_credentials` with the client id and secret in HTTP "
        "Basic (or `client_id`/`client_secret` form fields). Answers an RFC 9068 JWT access "
        "token for `Authorization: Bearer`."
    ),
    operation_id="issueToken",
    exclude_from_auth=True,
)
async def token_endpoint(
    request: Request[Any, Any, State], token_server: NamedDependency[TokenServer]
) -> Response[bytes]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return problem_response(
            request,
            400,
            code="invalid-request",
            detail="send the token request as application/x-www-form-urlencoded",
            extensions={"error": "invalid_request"},
        )
    form = {key: str(value) for key, value in (await request.form()).items()}
    status, body, _headers = await sync_to_thread(issue_token, token_server, request.headers, form)
    if status >= 400:
        error = body if isinstance(body, dict) else {}
        response = problem_response(
            request,
            status,
            code=str(error.get("error", "invalid_request")).replace("_", "-"),
            detail=error.get("error_description") or str(error.get("error", "")),
            extensions={k: v for k, v in error.items() if k in ("error", "error_description")},
        )
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="training"'
        return response
    return Response(
        content=msgspec.json.encode(body),
        status_code=200,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@get(
    "/.well-known/jwks.json",
    tags=["OAuth2"],
    summary="Public keys that verify our access tokens",
    operation_id="getJwks",
    exclude_from_auth=True,
)
async def jwks(key_ring: NamedDependency[KeyRing]) -> dict[str, Any]:
    keys: LoadedKeys = await sync_to_thread(key_ring.current)
    return keys.jwks()


@get(
    "/.well-known/oauth-authorization-server",
    tags=["OAuth2"],
    summary="Authorization server metadata (RFC 8414)",
    operation_id="getAuthorizationServerMetadata",
    exclude_from_auth=True,
)
async def metadata(settings: NamedDependency[Settings]) -> dict[str, Any]:
    return {
        "issuer": settings.issuer,
        "token_endpoint": f"{settings.issuer}/oauth2/token",
        "jwks_uri": f"{settings.issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": sorted(TENANT_SCOPES | {OPERATOR_SCOPE}),
    }


ROUTES = [token_endpoint, jwks, metadata]
