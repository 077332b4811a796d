"""Cohorts, enrolment, waitlists, sessions and progress, without infrastructure."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from training.cohorts.domain.calendar import CalendarFeed, FeedKind
from training.cohorts.domain.cohorts import Attendance, Cohort, CohortStatus, Placement, Session
from training.cohorts.domain.participation import CurriculumEnrolments
from training.cohorts.domain.policy import TrainingPolicy
from training.core.errors import AlreadyExists, InvalidTransition, NotFound, RuleViolated

TENANT = uuid.uuid4()
CURRICULUM = uuid.uuid4()
UTC = dt.UTC


def cohort(capacity: int = 2, **overrides: object) -> Cohort:
    values: dict[str, object] = {
        "tenant_id": TENANT,
        "name": "Platform Spring",
        "curriculum_id": CURRICULUM,
        "curriculum_version": 1,
        "module_keys": ("intro", "deep-dive", "capstone"),
        "starts_on": dt.date(2026, 12, 1),
        "ends_on": dt.date(2027, 2, 28),
        "timezone": "Europe/Berlin",
        "capacity": capacity,
        "facilitators": (),
    }
    values.update(overrides)
    return Cohort.schedule(**values)  # type: ignore[arg-type]


def people(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": " "}, "name"),
        ({"ends_on": dt.date(2026, 11, 1)}, "ends_on"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"capacity": 0}, "capacity"),
        ({"module_keys": ()}, "curriculum_version"),
    ],
)
def test_a_cohort_is_scheduled_with_sane_values(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(RuleViolated) as raised:
        cohort(**overrides)
    assert raised.value.field == field


def test_the_lifecycle_moves_forward_only() -> None:
    c = cohort()
    with pytest.raises(InvalidTransition):
        c.complete()
    c.start()
    assert c.status is CohortStatus.RUNNING
    with pytest.raises(InvalidTransition):
        c.start()
    c.complete()
    with pytest.raises(InvalidTransition):
        c.enrol(tuple(people(1)))
    with pytest.raises(InvalidTransition):
        c.cancel("late")


def test_a_full_cohort_waitlists_and_a_withdrawal_promotes_in_order() -> None:
    c = cohort(capacity=2)
    a, b, x, y = people(4)
    placed = c.enrol((a, b, x, y))
    assert placed == {
        a: Placement.ENROLLED,
        b: Placement.ENROLLED,
        x: Placement.WAITLISTED,
        y: Placement.WAITLISTED,
    }
    withdrawal = c.withdraw(a, "  changed team ")
    assert withdrawal.promoted == x
    # The reason is answered for keeping beside the events, with the Withdrawn event's version.
    assert withdrawal.reason == "changed team"
    withdrawn = [e for e in c.collect_events() if isinstance(e, Cohort.Withdrawn)]
    assert [(e.member_id, e.originator_version) for e in withdrawn] == [(a, withdrawal.version)]
    assert "changed team" not in repr(withdrawn)
    assert c.enrolled == [b, x]
    assert c.waitlist == [y]
    with pytest.raises(AlreadyExists):
        c.enrol((b,))
    with pytest.raises(NotFound):
        c.withdraw(uuid.uuid4(), "who?")


def test_raising_capacity_promotes_and_lowering_below_enrolled_is_refused() -> None:
    c = cohort(capacity=1)
    a, b, d = people(3)
    c.enrol((a, b, d))
    c.change_capacity(2)
    assert c.enrolled == [a, b]
    assert c.waitlist == [d]
    with pytest.raises(RuleViolated):
        c.change_capacity(1)


def test_cancelling_withdraws_everyone_and_leaves_the_reason_to_keep_beside() -> None:
    c = cohort(capacity=1)
    a, b = people(2)
    c.enrol((a, b))
    with pytest.raises(RuleViolated):
        c.cancel("   ")
    assert c.cancel("trainer unavailable") == (a, b)
    events = c.collect_events()
    cancelled = events[-1]
    assert isinstance(cancelled, Cohort.Cancelled)
    assert not hasattr(cancelled, "reason")
    assert cancelled.originator_version == c.version
    assert cancelled.withdrawn == (a, b)
    assert c.enrolled == []
    assert c.waitlist == []


def test_sessions_attendance_and_feedback() -> None:
    c = cohort(capacity=2)
    a, b, outsider = people(3)
    c.enrol((a, b))
    session = Session(
        uuid.uuid4(),
        "Kick-off",
        dt.datetime(2026, 12, 2, 9, tzinfo=UTC),
        60,
        "https://meet.example/k",
    )
    c.schedule_session(session)
    with pytest.raises(RuleViolated) as raised:
        c.schedule_session(
            Session(uuid.uuid4(), "x", dt.datetime(2026, 12, 2, 9), 60, "https://meet.example/k")
        )
    assert raised.value.field == "starts_at"
    with pytest.raises(RuleViolated) as raised:
        c.schedule_session(
            Session(
                uuid.uuid4(), "x", dt.datetime(2026, 12, 2, 9, tzinfo=UTC), 60, "http://insecure"
            )
        )
    assert raised.value.field == "join_url"
    start = dt.datetime(2026, 12, 2, 9, tzinfo=UTC)
    c.record_attendance(
        session.session_id, (Attendance(a, start, start + dt.timedelta(minutes=55)),), 3, 2, 7
    )
    with pytest.raises(RuleViolated):
        c.record_attendance(session.session_id, (Attendance(outsider, start, start),), 0, 0, 0)
    c.give_feedback(session.session_id, a, 5, 4, 3)
    with pytest.raises(RuleViolated) as raised:
        c.give_feedback(session.session_id, b, 6, 4, 3)
    assert raised.value.field == "content"
    with pytest.raises(NotFound):
        c.give_feedback(uuid.uuid4(), a, 5, 5, 5)


def test_module_completion_counts_once_and_only_for_the_pinned_version() -> None:
    c = cohort()
    (a,) = people(1)
    c.enrol((a,))
    c.complete_module(a, "intro", dt.date(2026, 12, 5))
    c.complete_module(a, "intro", dt.date(2026, 12, 6))
    assert c.completed[a] == {"intro"}
    with pytest.raises(RuleViolated):
        c.complete_module(a, "not-in-version", dt.date(2026, 12, 6))


def test_one_open_cohort_per_curriculum() -> None:
    registry = CurriculumEnrolments.open(TENANT, CURRICULUM)
    first, second = uuid.uuid4(), uuid.uuid4()
    a, b = people(2)
    assert registry.join(first, (a,)) == []
    assert registry.join(second, (a, b)) == [a]
    registry.leave((a,))
    assert registry.join(second, (a,)) == []
    assert registry.cohort_of == {a: second, b: second}


def test_a_cohort_is_rebuilt_from_its_events() -> None:
    c = cohort(capacity=1)
    a, b = people(2)
    c.enrol((a, b))
    c.withdraw(a, "left")
    copy = None
    for event in c.collect_events():
        copy = event.mutate(copy)
    assert isinstance(copy, Cohort)
    assert (copy.enrolled, copy.waitlist, copy.version) == ([b], [], c.version)


def test_the_training_policy_bounds_its_values() -> None:
    policy = TrainingPolicy.adopt_defaults(TENANT)
    assert (policy.at_risk_threshold, policy.retake_cooldown_days) == (20, 14)
    policy.change(30, 7)
    with pytest.raises(RuleViolated):
        policy.change(0, 7)
    with pytest.raises(RuleViolated):
        policy.change(30, 400)


def test_a_calendar_feed_keeps_only_a_hash() -> None:
    feed = CalendarFeed.issue(TENANT, FeedKind.COHORT, uuid.uuid4(), "sha256$abc")
    feed.rotate("sha256$def")
    assert feed.token_hash == "sha256$def"
    assert feed.id == CalendarFeed.create_id(TENANT, FeedKind.COHORT, feed.subject_id)
