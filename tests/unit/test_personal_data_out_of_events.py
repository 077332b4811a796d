"""No event keeps personal data: external ids are never emails, review text and a
deactivation reason live beside the events, and events stored the old way are upcast."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from eventsourcing.persistence import StoredEvent

from training.core.access import Role
from training.core.errors import InvalidTransition, RuleViolated
from training.core.mapper import MsgspecMapper, PassThroughTranscoder
from training.people.domain.members import Member, check_external_id, generated_external_id
from training.reviews.domain import Goal, PerformanceReview, ReviewContent, SkillRating

TENANT = uuid.uuid4()
SKILLS = frozenset({"python", "sql"})


def mapper() -> MsgspecMapper:
    return MsgspecMapper(transcoder=PassThroughTranscoder())


@pytest.mark.parametrize("external_id", ["ann@example.com", "sso:ann@example.com", "a@b"])
def test_an_external_id_with_an_email_is_refused(external_id: str) -> None:
    with pytest.raises(RuleViolated) as raised:
        Member.register(tenant_id=TENANT, external_id=external_id, roles=(Role.ENGINEER,))
    assert raised.value.field == "external_id"
    assert "@" in raised.value.detail
    with pytest.raises(RuleViolated) as raised:
        check_external_id(external_id, "manager_external_id")
    assert raised.value.field == "manager_external_id"


def test_a_generated_external_id_is_opaque_and_fresh() -> None:
    first, second = generated_external_id(), generated_external_id()
    assert re.fullmatch(r"member-[0-9a-f]{32}", first)
    assert first != second
    assert check_external_id(first) == first


def test_an_erased_member_still_takes_an_opaque_external_id() -> None:
    member = Member.register(tenant_id=TENANT, external_id="E1", roles=(Role.ENGINEER,))
    member.erase()
    with pytest.raises(InvalidTransition):
        member.change_external_id("E2")
    member.replace_external_id("member-" + "0" * 32)
    assert member.external_id == "member-" + "0" * 32


def test_a_deactivation_reason_is_answered_not_recorded() -> None:
    member = Member.register(tenant_id=TENANT, external_id="E1", roles=(Role.ENGINEER,))
    member.collect_events()
    assert member.deactivate("  left for Globex with Ann Example ") == (
        "left for Globex with Ann Example"
    )
    [deactivated] = member.collect_events()
    stored = mapper().to_stored_event(deactivated)
    assert b"Ann Example" not in stored.state
    assert b'"class_version":2' in stored.state


def test_a_deactivation_stored_with_its_reason_is_read_without_it() -> None:
    stored = StoredEvent(
        originator_id=uuid.uuid4(),
        originator_version=2,
        topic="training.people:Member.Deactivated",
        state=b'{"timestamp":"2026-11-01T09:00:00Z","actor":"client:x","request_id":"r",'
        b'"tenant_id":null,"reason":"moved to Ann Example\'s team"}',
    )
    event = mapper().to_domain_event(stored)
    assert isinstance(event, Member.Deactivated)
    assert "reason" not in vars(event)
    assert b"Ann Example" not in mapper().to_stored_event(event).state


def content(level: int = 2) -> ReviewContent:
    return ReviewContent(
        ratings=(SkillRating("python", level),),
        overall_rating=3,
        goals=(Goal("G1", "sql", 4, dt.date(2027, 6, 30)),),
        target_role_profile=None,
    )


def review() -> PerformanceReview:
    return PerformanceReview.draft(
        tenant_id=TENANT,
        external_id="R1",
        cycle="2026-H2",
        member_id=uuid.uuid4(),
        reviewer_id=None,
        content=content(),
        usable_skills=SKILLS,
    )


def test_review_text_changes_are_events_that_name_the_field_only() -> None:
    drafted = review()
    drafted.revise(content(), SKILLS)
    assert [type(e).__name__ for e in drafted.collect_events()] == ["Drafted"]
    drafted.revise(content(), SKILLS, strengths_changed=True)
    [revised] = drafted.collect_events()
    assert isinstance(revised, PerformanceReview.Revised)
    assert revised.texts == ("strengths",)
    drafted.finalise()
    with pytest.raises(InvalidTransition):
        drafted.amend(content(), "no change", SKILLS)
    with pytest.raises(RuleViolated):
        drafted.amend(content(3), "  ", SKILLS)
    assert drafted.amend(content(), " ask Ann Example ", SKILLS, strengths_changed=True) == (
        "ask Ann Example"
    )
    events = drafted.collect_events()
    amended = events[-1]
    assert isinstance(amended, PerformanceReview.Amended)
    assert amended.texts == ("reason", "strengths")
    for event in events:
        assert b"Ann Example" not in mapper().to_stored_event(event).state


def test_an_email_as_a_review_key_is_refused() -> None:
    with pytest.raises(RuleViolated) as raised:
        PerformanceReview.draft(
            tenant_id=TENANT,
            external_id="ann@example.com-2026",
            cycle="2026-H2",
            member_id=uuid.uuid4(),
            reviewer_id=None,
            content=content(),
            usable_skills=SKILLS,
        )
    assert raised.value.field == "external_id"


OLD_CONTENT = (
    b'"content":{"ratings":[{"skill":"python","level":2}],"overall_rating":3,'
    b'"strengths":["mentors Ann Example"],"goals":[{"goal_id":"G1","skill":"sql",'
    b'"target_level":4,"due":"2027-06-30"}],"target_role_profile":null}'
)
STAMPS = b'"timestamp":"2026-11-01T09:00:00Z","actor":"client:x","request_id":"r"'


@pytest.mark.parametrize(
    ("topic", "fields", "cls"),
    [
        (
            "training.reviews:PerformanceReview.Drafted",
            b',"external_id":"R1","cycle":"2026-H2","member_id":"'
            + str(uuid.UUID(int=1)).encode()
            + b'","reviewer_id":null,"originator_topic":"training.reviews:PerformanceReview"',
            PerformanceReview.Drafted,
        ),
        ("training.reviews:PerformanceReview.Revised", b"", PerformanceReview.Revised),
        (
            "training.reviews:PerformanceReview.Finalised",
            b',"member_id":"' + str(uuid.UUID(int=1)).encode() + b'","cycle":"2026-H2"',
            PerformanceReview.Finalised,
        ),
        (
            "training.reviews:PerformanceReview.Amended",
            b',"member_id":"'
            + str(uuid.UUID(int=1)).encode()
            + b'","reason":"Ann Example asked for it"',
            PerformanceReview.Amended,
        ),
    ],
)
def test_review_events_stored_with_their_text_are_read_without_it(
    topic: str, fields: bytes, cls: type
) -> None:
    tenant = b',"tenant_id":"' + str(TENANT).encode() + b'"'
    stored = StoredEvent(
        originator_id=uuid.uuid4(),
        originator_version=1 if cls is PerformanceReview.Drafted else 2,
        topic=topic,
        state=b"{" + STAMPS + tenant + b"," + OLD_CONTENT + fields + b"}",
    )
    event = mapper().to_domain_event(stored)
    assert isinstance(event, cls)
    assert event.content == content()  # type: ignore[attr-defined]
    if cls is PerformanceReview.Amended:
        assert event.texts == ("reason",)  # type: ignore[attr-defined]
    if cls is PerformanceReview.Revised:
        assert event.texts == ()  # type: ignore[attr-defined]
    rewritten = mapper().to_stored_event(event).state
    assert b"Ann Example" not in rewritten
    assert b'"class_version":2' in rewritten
