"""A small demo tenant for a newcomer's first start."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from training.application.bus import CommandBus
from training.application.context import CommandContext
from training.application.tenancy import IssuedCredentials, RegisterApiClient, RegisterTenant
from training.domain.tenancy import Tenant

DEMO_SLUG = "acme"


@dataclass(frozen=True)
class DemoLoaded:
    tenant_id: uuid.UUID
    client: IssuedCredentials


def demo_exists(bus: CommandBus) -> bool:
    return Tenant.create_id(DEMO_SLUG) in bus.app.repository


def load_demo(bus: CommandBus) -> DemoLoaded | None:
    """Loads the demo tenant unless it exists; returns what was created."""
    if demo_exists(bus):
        return None
    context = CommandContext.system("demo", request_id=f"demo-{uuid.uuid4().hex[:12]}")
    tenant = bus.execute(context, RegisterTenant(DEMO_SLUG, "Acme Software", 250)).result
    client = bus.execute(
        context, RegisterApiClient(tenant.tenant_id, "Acme HR integration", ("tenant:read",))
    ).result
    return DemoLoaded(tenant.tenant_id, client)
