"""What the cohort endpoints share: who may read or write, the caller's own member id, the
texts they accept, and a cohort as a command left it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Response
from litestar.exceptions import PermissionDeniedException

from training.cohorts.domain.cohorts import MAX_NAME
from training.cohorts.handlers.cohorts import CohortSnapshot
from training.core.access import Scope
from training.core.http.commands import answer
from training.core.http.params import text
from training.core.http.principal import Principal, requires_scope
from training.core.outcome import Outcome

# HR manages cohorts with members:write and reads them with members:read.
READ = requires_scope(Scope.MEMBERS_READ)
WRITE = requires_scope(Scope.MEMBERS_WRITE)

MAX_REASON = 500
Name = Annotated[str, text(max_length=MAX_NAME)]
Reason = Annotated[str, text(max_length=MAX_REASON)]


class CohortOut(msgspec.Struct):
    """A cohort as a command left it."""

    cohort_id: UUID
    name: str
    status: str
    capacity: int
    enrolled: int
    waitlisted: int
    version: int

    @classmethod
    def of(cls, snapshot: CohortSnapshot) -> CohortOut:
        return cls(
            snapshot.cohort_id,
            snapshot.name,
            snapshot.status,
            snapshot.capacity,
            snapshot.enrolled,
            snapshot.waitlisted,
            snapshot.version,
        )


def cohort_answer(outcome: Outcome[CohortSnapshot]) -> Response[CohortOut]:
    """The answer to a command that changed a cohort: the cohort, its version as ``ETag``."""
    body = CohortOut.of(outcome.result)
    return answer(outcome, body, version=body.version)


def own_member_id(principal: Principal) -> UUID:
    """The caller's member id: these endpoints are for a person, with their own token."""
    member_id = principal.member_id
    if member_id is None:
        raise PermissionDeniedException(detail="this is for a person: use the member's own token")
    return member_id
