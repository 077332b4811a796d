"""What the assessments' resources share: the skill code, an option as shown, the tenant."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar.exceptions import PermissionDeniedException
from litestar.params import QueryParameter

from training.core.http.principal import Principal

SKILL_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
SkillCode = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=SKILL_PATTERN)]
SkillQuery = Annotated[
    str | None, QueryParameter(name="skill", max_length=64, pattern=SKILL_PATTERN)
]


class OptionOut(msgspec.Struct):
    id: str
    text: str


def tenant_of(principal: Principal) -> UUID:
    """The caller's tenant: items, calibrations and attempts all belong to one."""
    if principal.tenant_id is None:
        raise PermissionDeniedException(detail="this needs a tenant's credentials")
    return principal.tenant_id
