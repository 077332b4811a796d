"""The one-time step that takes personal data out of events stored before this release.

The events are stored here exactly as the previous release stored them (version 1 shapes,
emails as external ids, free text inside), then ``training migrate``'s step runs.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.integration.previous_release import PreviousReleaseStore
from training.core.bus import CommandBus
from training.core.personal_data import MemberDataChange, PersonalData
from training.infra.database import Database
from training.people.domain.external_ids import ExternalIds
from training.people.domain.members import Member, is_generated_external_id
from training.people.queries import member_with_external_id
from training.reviews.domain import PerformanceReview
from training.upgrades.event_rewrite import NAME, move_personal_data_out_of_events

TENANT = uuid.uuid4()
SECRETS = (
    "ann.ext@example.test",
    "ann.new@example.test",
    "sam@example.test",
    "eve@example.test",
    "Eve secret praise",
    "mentors Bob",
    "Ann asked for it",
    "ask Bob Reviewer",
)
CONTENT: dict[str, Any] = {
    "ratings": [{"skill": "python", "level": 2}],
    "overall_rating": 3,
    "goals": [],
    "target_role_profile": None,
}


class OldStore(PreviousReleaseStore):
    """Writes events the way the previous release stored them."""

    def __init__(self, bus: CommandBus) -> None:
        super().__init__(bus, TENANT, "client:old-scim")

    def member(self, external_id: str, name: str | None, email: str | None) -> uuid.UUID:
        member_id = Member.create_id(TENANT, external_id)
        people = ()
        if name is not None:
            data = PersonalData(name, email)
            people = (MemberDataChange(member_id, TENANT, data),)
        self.event(
            member_id,
            "training.people:Member.Registered",
            {
                "originator_topic": "training.people:Member",
                "external_id": external_id,
                "roles": ["engineer"],
                "manager_id": None,
                "team": "Core",
                "job_title": None,
            },
            people,
        )
        return member_id


@pytest.fixture(scope="module")
def old(bus: CommandBus) -> dict[str, uuid.UUID]:
    store = OldStore(bus)
    # A SCIM user registered without externalId (it defaulted to the email), whose userName
    # then changed (the external id followed it), deactivated with a reason naming someone.
    ann = store.member("ann.ext@example.test", "Ann Old", "ann.ext@example.test")
    keys = ExternalIds.create_id(TENANT)
    store.event(keys, "training.people:ExternalIds.Opened", {"originator_topic": ExternalIds.TOPIC})
    store.event(
        keys,
        "training.people:ExternalIds.Assigned",
        {"external_id": "ann.ext@example.test", "member_id": None},
    )
    store.event(
        keys,
        "training.people:ExternalIds.Assigned",
        {"external_id": "ann.new@example.test", "member_id": str(ann)},
    )
    store.event(ann, Member.ExternalIdChanged.TOPIC, {"external_id": "ann.new@example.test"})
    store.event(ann, Member.Deactivated.TOPIC, {"reason": "left; ask Bob Reviewer"})
    # Provisioned at sign-in when the IdP's subject was an email.
    sam = store.member("sso:sam@example.test", "Sam", "sam@example.test")
    # Erased before this release: the external id still held the email.
    eve = store.member("eve@example.test", None, None)
    store.event(eve, Member.Erased.TOPIC, {})
    clean = store.member("hr-1", "Carl Clean", "carl@example.test")
    # Reviews with their free text inside.
    ann_review, eve_review = uuid.uuid4(), uuid.uuid4()
    for review_id, member_id, strengths in (
        (ann_review, ann, ["mentors Bob"]),
        (eve_review, eve, ["Eve secret praise"]),
    ):
        store.event(
            review_id,
            PerformanceReview.Drafted.TOPIC,
            {
                "originator_topic": PerformanceReview.TOPIC,
                "external_id": f"R-{review_id.hex[:6]}",
                "cycle": "2026-H1",
                "member_id": str(member_id),
                "reviewer_id": str(clean),
                "content": {**CONTENT, "strengths": strengths},
            },
        )
        store.event(
            review_id,
            PerformanceReview.Finalised.TOPIC,
            {
                "member_id": str(member_id),
                "cycle": "2026-H1",
                "content": {**CONTENT, "strengths": strengths},
            },
        )
    store.event(
        ann_review,
        PerformanceReview.Amended.TOPIC,
        {
            "member_id": str(ann),
            "reason": "Ann asked for it",
            "content": {**CONTENT, "overall_rating": 4, "strengths": ["mentors Bob", "kind"]},
        },
    )
    return {"ann": ann, "sam": sam, "eve": eve, "clean": clean, "review": ann_review}


def stored_states(database: Database) -> list[tuple[uuid.UUID, int, int, bytes]]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT originator_id, originator_version, notification_id, state "
            "FROM training.training_events ORDER BY notification_id"
        ).fetchall()
    return [(r[0], int(r[1]), int(r[2]), bytes(r[3])) for r in rows]


def test_the_step_takes_personal_data_out_and_keeps_history(
    bus: CommandBus, database: Database, old: dict[str, uuid.UUID]
) -> None:
    before = stored_states(database)
    assert any(secret.encode() in state for *_, state in before for secret in SECRETS)

    report = move_personal_data_out_of_events(database.admin_url, bus)

    assert report is not None
    assert sorted(report.rekeyed_members) == sorted(str(old[k]) for k in ("ann", "sam", "eve"))
    after = stored_states(database)
    # History keeps its shape: the same events, versions and positions, plus the re-keys.
    assert [e[:3] for e in after[: len(before)]] == [e[:3] for e in before]
    for originator_id, version, _, state in after:
        for secret in SECRETS:
            assert secret.encode() not in state, (originator_id, version, secret)
        assert b"@" not in state
    app = bus.app
    ann = app.repository.get(old["ann"])
    assert isinstance(ann, Member)
    assert is_generated_external_id(ann.external_id)
    assert member_with_external_id(app, TENANT, ann.external_id) == old["ann"]
    for gone in ("ann.ext@example.test", "ann.new@example.test"):
        assert member_with_external_id(app, TENANT, gone) is None
    eve = app.repository.get(old["eve"])
    assert isinstance(eve, Member)
    assert eve.erased
    assert is_generated_external_id(eve.external_id)
    # Every event still reads, in its current shape.
    review = app.repository.get(old["review"])
    assert isinstance(review, PerformanceReview)
    assert review.content.overall_rating == 4
    assert review.amendments == 1
    events = list(app.events.get(old["ann"]))
    assert [type(e).__name__ for e in events][-1] == "ExternalIdChanged"
    assert events[-1].actor == "system:migrate"
    with psycopg.connect(database.admin_url) as conn:
        texts = conn.execute(
            "SELECT review_id, member_id, strengths, amendment_reasons FROM training.review_texts"
        ).fetchall()
        people = dict(
            conn.execute(
                "SELECT member_id, (deactivation_reason, sso_subject) FROM training.people"
            ).fetchall()
        )
        trigger = conn.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'training_events_immutable'"
        ).fetchone()
        ledger = conn.execute(
            "SELECT report FROM public.training_data_migrations WHERE name = %s", (NAME,)
        ).fetchone()
    # Free text lives beside the events now, except what belonged to an erased person.
    assert texts == [(old["review"], old["ann"], ["mentors Bob", "kind"], ["Ann asked for it"])]
    assert people[old["ann"]] == ("left; ask Bob Reviewer", None)
    assert people[old["sam"]] == (None, "sam@example.test")
    assert trigger == ("O",)
    assert ledger is not None
    assert "@" not in str(ledger[0])


def test_the_step_runs_once(bus: CommandBus, database: Database, old: dict[str, uuid.UUID]) -> None:
    move_personal_data_out_of_events(database.admin_url, bus)
    before = stored_states(database)
    assert move_personal_data_out_of_events(database.admin_url, bus) is None
    assert stored_states(database) == before
