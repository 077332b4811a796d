"""Calendar feeds: issue or rotate a cohort's or a person's secret calendar URL, and find the
feed a calendar application's request names.

The secret is shown once, in the URL the rotation answers; only its hash is kept, and a
rotation makes the previous URL stop working.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from training.cohorts.domain.calendar import CalendarFeed, FeedKind
from training.cohorts.domain.cohorts import Cohort
from training.core.application import TrainingApplication
from training.core.bus import Handler, UnitOfWork
from training.core.credentials import hash_secret, new_secret, verify_secret
from training.people.queries import member_in_force
from training.tenancy.queries import tenant_is_active


@dataclass(frozen=True)
class RotateCalendarFeed:
    kind: FeedKind
    subject_id: UUID


@dataclass(frozen=True)
class IssuedFeed:
    """The feed and its new secret, to put in the URL: it is kept nowhere else."""

    feed_id: UUID
    token: str


def rotate_calendar_feed(command: RotateCalendarFeed, uow: UnitOfWork) -> IssuedFeed:
    tenant_id = uow.require_tenant()
    if command.kind is FeedKind.COHORT:
        uow.get(Cohort, command.subject_id)  # the cohort exists in this tenant
    token = new_secret()
    feed_id = CalendarFeed.create_id(tenant_id, command.kind, command.subject_id)
    if uow.exists(feed_id):
        uow.get(CalendarFeed, feed_id).rotate(hash_secret(token))
    else:
        uow.add(CalendarFeed.issue(tenant_id, command.kind, command.subject_id, hash_secret(token)))
    return IssuedFeed(feed_id, token)


# -- queries ---------------------------------------------------------------------------------


def feed_in_force(
    app: TrainingApplication, tenant_id: UUID, feed_id: UUID, token: str
) -> CalendarFeed | None:
    """The feed when the URL is right and its owner still in force; None for any failure."""
    try:
        feed: object = app.repository.get(feed_id)
    except AggregateNotFoundError:
        return None
    if not isinstance(feed, CalendarFeed) or feed.tenant_id != tenant_id:
        return None
    if not verify_secret(token, feed.token_hash):
        return None
    if feed.kind is FeedKind.MEMBER:
        if member_in_force(app, tenant_id, feed.subject_id).refusal:
            return None
    elif not tenant_is_active(app, tenant_id):
        return None
    return feed


HANDLERS: dict[type, Handler] = {RotateCalendarFeed: rotate_calendar_feed}
