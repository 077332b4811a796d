"""Teams as a tenant's identity provider knows them: SCIM Groups with an identity of their own.

A member's team is a name on the member (``Member.team``). A team listed here also has an
id that never changes, a name that may change and the identity provider's external id, so
an empty team exists, can be renamed and keeps its id. The members of a listed team are the
members whose team has its name; the commands that change a team change those members in
the same transaction. Team names are organisational, not personal, data.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import event

from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import AlreadyExists, NotFound, RuleViolated

MAX_TEAM_NAME = 120
MAX_TEAM_EXTERNAL_ID = 256


@dataclass(frozen=True)
class Team:
    team_id: UUID
    name: str
    external_id: str | None
    # Counts the team's own changes (for its ETag, with its members' versions).
    revision: int


def check_team_name(name: str | None) -> str:
    cleaned = (name or "").strip()
    if not cleaned or len(cleaned) > MAX_TEAM_NAME:
        raise RuleViolated(
            f"a team's name (a group's displayName) has 1-{MAX_TEAM_NAME} characters",
            field="displayName",
        )
    return cleaned


def check_team_external_id(external_id: str | None) -> str | None:
    if external_id is None:
        return None
    cleaned = external_id.strip()
    if len(cleaned) > MAX_TEAM_EXTERNAL_ID:
        raise RuleViolated(
            f"a team's external id has at most {MAX_TEAM_EXTERNAL_ID} characters",
            field="externalId",
        )
    return cleaned or None


class Teams(TrainingAggregate):
    """A tenant's listed teams; one aggregate, so names stay unique under concurrent writes."""

    TOPIC = "training.teams:Teams"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.teams:Teams.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.teams:Teams.Created"

    class Opened(Created):
        TOPIC = "training.teams:Teams.Opened"

    class Formed(Event):
        TOPIC = "training.teams:Teams.Formed"
        team_id: UUID
        name: str
        external_id: str | None

    class Revised(Event):
        """The team's name or external id changed."""

        TOPIC = "training.teams:Teams.Revised"
        team_id: UUID
        name: str
        external_id: str | None

    class Disbanded(Event):
        TOPIC = "training.teams:Teams.Disbanded"
        team_id: UUID

    @staticmethod
    def create_id(tenant_id: UUID) -> UUID:
        return stable_id("tenants", tenant_id, "teams")

    @classmethod
    def open(cls, tenant_id: UUID) -> Teams:
        return cls(tenant_id=tenant_id)

    @event(Opened)
    def __init__(self, *, tenant_id: UUID | None = None) -> None:
        self.tenant_id = tenant_id
        self.teams: dict[UUID, Team] = {}

    def team(self, team_id: UUID) -> Team:
        found = self.teams.get(team_id)
        if found is None:
            raise NotFound(f"team {team_id} not found")
        return found

    def named(self, name: str) -> Team | None:
        wanted = name.casefold()
        return next((t for t in self.teams.values() if t.name.casefold() == wanted), None)

    def _check_name_free(self, name: str, team_id: UUID | None) -> None:
        other = self.named(name)
        if other is not None and other.team_id != team_id:
            raise AlreadyExists(f"the team {other.name!r} exists", field="displayName")

    def form(self, team_id: UUID, name: str, external_id: str | None) -> Team:
        if team_id in self.teams:
            raise AlreadyExists(f"team {team_id} exists")
        name = check_team_name(name)
        self._check_name_free(name, None)
        self._formed(team_id=team_id, name=name, external_id=check_team_external_id(external_id))
        return self.teams[team_id]

    @event(Formed)
    def _formed(self, team_id: UUID, name: str, external_id: str | None) -> None:
        self.teams[team_id] = Team(team_id, name, external_id, 1)

    def revise(self, team_id: UUID, name: str, external_id: str | None) -> Team:
        current = self.team(team_id)
        name = check_team_name(name)
        external_id = check_team_external_id(external_id)
        self._check_name_free(name, team_id)
        if (name, external_id) != (current.name, current.external_id):
            self._revised(team_id=team_id, name=name, external_id=external_id)
        return self.teams[team_id]

    @event(Revised)
    def _revised(self, team_id: UUID, name: str, external_id: str | None) -> None:
        current = self.teams[team_id]
        self.teams[team_id] = Team(team_id, name, external_id, current.revision + 1)

    def disband(self, team_id: UUID) -> Team:
        current = self.team(team_id)
        self._disbanded(team_id=team_id)
        return current

    @event(Disbanded)
    def _disbanded(self, team_id: UUID) -> None:
        del self.teams[team_id]
