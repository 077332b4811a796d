"""Listed teams: unique names (case-insensitive), mutable name and external id, revisions."""

from __future__ import annotations

import uuid

import pytest

from training.core.errors import AlreadyExists, NotFound, RuleViolated
from training.people.domain.teams import Teams


def test_a_team_is_formed_revised_and_disbanded() -> None:
    teams = Teams.open(uuid.uuid4())
    team_id = uuid.uuid4()
    formed = teams.form(team_id, " Platform ", "okta-1")
    assert (formed.name, formed.external_id, formed.revision) == ("Platform", "okta-1", 1)
    revised = teams.revise(team_id, "Platform Engineering", None)
    assert (revised.name, revised.external_id, revised.revision) == (
        "Platform Engineering",
        None,
        2,
    )
    assert teams.revise(team_id, "Platform Engineering", None).revision == 2  # no change
    assert teams.named("platform engineering") == revised
    teams.disband(team_id)
    with pytest.raises(NotFound):
        teams.team(team_id)


def test_team_names_are_unique_and_not_empty() -> None:
    teams = Teams.open(uuid.uuid4())
    teams.form(uuid.uuid4(), "Platform", None)
    other = teams.form(uuid.uuid4(), "Data", None)
    with pytest.raises(AlreadyExists):
        teams.form(uuid.uuid4(), "PLATFORM", None)
    with pytest.raises(AlreadyExists):
        teams.revise(other.team_id, "platform", None)
    with pytest.raises(RuleViolated):
        teams.form(uuid.uuid4(), "  ", None)
