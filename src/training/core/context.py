"""Who is acting, for which tenant, in which request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class ActorKind(StrEnum):
    OPERATOR = "operator"
    CLIENT = "client"
    MEMBER = "member"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Passed with every command. ``tenant_id`` is ``None`` only for the platform operator."""

    actor: Actor
    request_id: str
    tenant_id: UUID | None

    @property
    def is_platform(self) -> bool:
        """The operator, or a system task acting for the platform: may touch any tenant."""
        return self.tenant_id is None

    @classmethod
    def system(cls, name: str, request_id: str, tenant_id: UUID | None = None) -> CommandContext:
        return cls(Actor(ActorKind.SYSTEM, name), request_id, tenant_id)
