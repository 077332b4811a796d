"""What other contexts may ask of tenancy: questions over its aggregates, read inside their unit
of work."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from training.core.application import TrainingApplication
from training.tenancy.domain import ApiClient, Tenant


def find_client(app: TrainingApplication, client_id: str) -> ApiClient | None:
    try:
        client: object = app.repository.get(ApiClient.create_id(client_id))
    except AggregateNotFoundError:
        return None
    return client if isinstance(client, ApiClient) else None


def tenant_is_active(app: TrainingApplication, tenant_id: UUID) -> bool:
    try:
        tenant: object = app.repository.get(tenant_id)
    except AggregateNotFoundError:
        return False
    return isinstance(tenant, Tenant) and tenant.is_active


def credentials_in_force(
    app: TrainingApplication, client_id: str, tenant_id: UUID | None
) -> str | None:
    """Why a client's credentials must be refused now, or None when they are good."""
    client = find_client(app, client_id)
    if client is None or client.tenant_id != tenant_id:
        return "the client is unknown"
    if not client.is_active:
        return "the client was revoked"
    if tenant_id is not None and not tenant_is_active(app, tenant_id):
        return "the tenant is suspended"
    return None
