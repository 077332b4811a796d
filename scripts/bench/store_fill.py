"""Filling the store for ``store_growth.py``: members made with the domain model, saved
through the service's recorder or copied in with their view rows.

*Other tenants (A).* Each is registered over HTTP (``POST /v1/tenants``, which writes
``Tenant.Registered`` and ``SkillFramework.Started``), then gets up to ``--tenant-members``
members as the member import gives them: batches of 500 ``Member.Registered``, each batch
each member with its external id's ``ExternalIdKey.Claimed``, and one
``SeatRoster.SeatsTaken`` naming the batch's members (the first batch also opens the roster),
and each member's name and email in ``training.people``. The events come from the domain
model (``Member.register``, ``ExternalIdKey.claim``, ``SeatRoster.take``), carry the actor
``system:store-growth-fill``, a request id and the tenant as the command bus stamps them, and
are serialised by the service's own mapper. They are stored one of two ways:

- ``--other-fill bulk`` (the default): while ``training serve`` is stopped (the bench keeps
  the embedded PostgreSQL up), one transaction per tenant as the admin role takes the
  library's ``LOCK TABLE training.training_events IN EXCLUSIVE MODE``, draws the events'
  notification ids from the table's own sequence, and ``COPY``s in the events, their
  ``people`` rows, the rows the two views that follow these topics write for them
  (``MembersView.insert_member``: ``training.members``; ``AuditView.record``:
  ``training.audit_log``), and moves those two views' tracking positions to the last event
  (both had applied every earlier event: the bench waited for them). Each fill checks that no
  other view or process follows these topics. So the store is what the running service would
  have made of the same events, without a transaction per event per view. That is checked:
  before the first fill one control tenant of 500 members is saved through the recorder
  (below) and applied by the running views, and afterwards the rows the bulk fill derives from
  the control's stored events must equal the views' rows and the recorder's people rows, or
  the run stops. When serve starts again, ``/readyz`` must show no view behind.
- ``--other-fill recorder``: saved by the service's own ``TrainingApplication`` with its
  ``TrainingRecorder``, in this process, connected as ``training_app``:
  ``app.save(*events, personal_data=...)``, the call the command bus makes (the library's
  lock, NOTIFY and insert; the people rows under row-level security in the same transaction),
  and applied by the running projections, which the bench waits for (``/readyz``). On two
  cores the views apply about 500 such events a second: a million take over half an hour.

*The measured tenant (B).* Registered over HTTP with an integration client, then grown by
CSV imports over HTTP (``POST /v1/member-imports``, at most 50,000 rows each, the import's
own limit), as ``member_import.py`` drives them: the product's path, paced to the views
(ADR 0028). ``--own-fill direct`` saves its members through the recorder instead, the way
``--other-fill recorder`` saves other tenants', continuing the tenant's ``SeatRoster`` from
its stored version: for when the import is too slow (the fill table shows its rate).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import httpx
import psycopg
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from harness import (
    HTTP_TIMEOUT,
    Server,
)
from psycopg import sql
from tenants import Operator

from training.audit.views import AUDIT
from training.core.access import Role
from training.core.aggregate import TrainingAggregate
from training.core.application import TrainingApplication
from training.core.context import Actor, ActorKind
from training.core.personal_data import MemberDataChange, PersonalData
from training.infra.database import Database
from training.infra.recorder import TrainingRecorder
from training.people.domain.external_ids import ExternalIdKey
from training.people.domain.members import Member
from training.people.domain.seats import SeatRoster
from training.people.handlers.imports import BATCH_SIZE
from training.people.views import MEMBERS
from training.registry import PROJECTIONS
from training.reports.trigger import REPORT_TRIGGERS

A = TypeVar("A", bound=TrainingAggregate)

FILL_ACTOR = str(Actor(ActorKind.SYSTEM, "store-growth-fill"))


def fill_application(database: Database) -> TrainingApplication:
    """The service's application and recorder, as ``bootstrap.training_application`` builds
    them, with a pool of one connection: the fill writes from one thread."""
    env = database.eventsourcing_env(pool_size=1, max_overflow=1)
    env["APPLICATION_RECORDER_TOPIC"] = get_topic(TrainingRecorder)
    return TrainingApplication(env=env)


def stored_or_opened(
    app: TrainingApplication, cls: type[A], aggregate_id: uuid.UUID, open_: Callable[[], A]
) -> A:
    """The tenant's aggregate as stored, or a new one (saved with the first batch)."""
    try:
        found: object = app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return open_()
    assert isinstance(found, cls)
    return found


@dataclass(frozen=True)
class Batch:
    """What one batch of the member import writes in one transaction: its events, stamped
    as the command bus stamps them, and the members' names and emails."""

    events: list[TrainingAggregate.Event]
    people: list[MemberDataChange]


class MemberWriter:
    """Makes one tenant's members as the member import makes them, with the domain model:
    per batch of 500, the members' ``Registered`` and their external ids' keys
    (``ExternalIdKey.Claimed``), one ``SeatRoster.SeatsTaken`` naming them, and their
    personal data."""

    def __init__(
        self,
        app: TrainingApplication,
        tenant_id: uuid.UUID,
        seat_limit: int,
        prefix: str,
        first_index: int = 0,
    ) -> None:
        """Loads the tenant's ``SeatRoster`` as stored now: nothing else may write it while
        this writer is in use (its versions would conflict)."""
        self.app = app
        self.tenant_id = tenant_id
        self.seat_limit = seat_limit
        self.prefix = prefix
        self.first_index = first_index
        self.roster = stored_or_opened(
            app, SeatRoster, SeatRoster.create_id(tenant_id), lambda: SeatRoster.open(tenant_id)
        )
        self.written = 0  # members
        self.batches = 0
        self.aggregate_ids: list[uuid.UUID] = [self.roster.id]

    @property
    def room(self) -> int:
        return self.seat_limit - self.roster.taken

    def save(self, count: int, people: list[MemberDataChange] | None = None) -> int:
        """Saves ``count`` more members through the service's recorder, a transaction per
        batch (the call the command bus makes); answers how many events it saved. ``people``
        collects the personal data saved."""
        saved = 0
        for batch in self.batches_of(count):
            self.app.save(*batch.events, personal_data=tuple(batch.people))
            saved += len(batch.events)
            if people is not None:
                people += batch.people
        return saved

    def batches_of(self, count: int) -> Iterator[Batch]:
        while count > 0:
            size = min(count, BATCH_SIZE)
            yield self._batch(size)
            count -= size

    def _batch(self, size: int) -> Batch:
        members: list[Member] = []
        changes: list[MemberDataChange] = []
        first = self.first_index + self.written
        for index in range(first, first + size):
            external_id = f"{self.prefix}{index:07d}"
            member = Member.register(
                tenant_id=self.tenant_id,
                member_id=Member.create_id(self.tenant_id, external_id),
                external_id=external_id,
                roles=(Role.ENGINEER,),
                team=f"Team {index // 100:04d}",
                job_title="Engineer",
            )
            members.append(member)
            # Names and emails as an import brings them; stored beside the events.
            email = f"{external_id.lower()}@fill.example"
            data = PersonalData(f"Person {external_id}", email)
            changes.append(MemberDataChange(member.id, self.tenant_id, data))
        keys = [ExternalIdKey.claim(self.tenant_id, m.external_id, m.id) for m in members]
        self.roster.take(tuple(m.id for m in members), self.seat_limit)
        self.batches += 1
        self.written += size
        self.aggregate_ids += [key.id for key in keys] + [m.id for m in members]
        request_id = f"store-growth-fill-{self.tenant_id}-{self.batches}"
        # In the order the import's unit of work holds them: roster, members, external ids.
        events = [
            dataclasses.replace(
                cast(Any, pending),  # a frozen dataclass: replace() copies it with the stamps
                actor=FILL_ACTOR,
                request_id=request_id,
                tenant_id=aggregate.tenant_id,
            )
            for aggregate in (self.roster, *members, *keys)
            for pending in aggregate.collect_events()
        ]
        return Batch(events, changes)


# --- the bulk fill: what the recorder and the views would write, copied in while serve is down ---

MemberRow = tuple[Any, ...]
AuditRow = tuple[Any, ...]
PersonRow = tuple[Any, ...]
MEMBER_COLUMNS = (
    "member_id, tenant_id, external_id, roles, manager_id, team, job_title, status, erased, "
    "version, created_at, updated_at"
)
AUDIT_COLUMNS = (
    "notification_id, tenant_id, recorded_at, actor, request_id, event_type, subject_type, "
    "subject_id, subject_version"
)
PERSON_COLUMNS = "member_id, tenant_id, display_name, email, sso_subject, deactivation_reason"


def view_rows(event: Any, notification_id: int) -> tuple[MemberRow | None, AuditRow]:
    """The rows the members and audit projections write for one of the fill's events
    (``MembersView.insert_member`` and ``AuditView.record``): no other view follows them."""
    topic = get_topic(type(event))
    audit = (
        notification_id,
        event.tenant_id,
        event.timestamp,
        event.actor or "unknown",
        event.request_id or "",
        topic,
        topic.split(":")[1].split(".")[0],
        event.originator_id,
        event.originator_version,
    )
    if not isinstance(event, Member.Registered):
        return None, audit
    member = (
        event.originator_id,
        event.tenant_id,
        event.external_id,
        [str(role) for role in event.roles],
        event.manager_id,
        event.team,
        event.job_title,
        "active",
        False,
        event.originator_version,
        event.timestamp,
        event.timestamp,
    )
    return member, audit


def person_row(change: MemberDataChange) -> PersonRow:
    data = change.data
    return (
        change.member_id,
        change.tenant_id,
        data.display_name,
        data.email,
        data.sso_subject,
        data.deactivation_reason,
    )


FOLLOWING_VIEWS = (MEMBERS.info, AUDIT.info)


def check_views_follow_only(events: Sequence[Any]) -> None:
    """The bulk fill writes the rows of the members and audit views only: no other view or
    process may follow the fill's topics (a new projection would make this fail, not lie)."""
    topics = {get_topic(type(event)) for event in events}
    for spec in (*PROJECTIONS, REPORT_TRIGGERS):
        if spec.info in FOLLOWING_VIEWS:
            continue
        followed = topics & set(spec.info.topics)
        if followed:
            raise RuntimeError(f"the bulk fill cannot write {spec.name}'s rows for {followed}")


def bulk_write(database: Database, app: TrainingApplication, batches: Iterable[Batch]) -> int:
    """One transaction, as the admin role, while no ``training serve`` runs: the events (under
    the library's table lock, their notification ids drawn from the table's sequence), the
    people rows, the members and audit views' rows for them, and those two views' tracking
    positions, moved to the last event (both had applied every earlier event they follow:
    the bench waited for them). Answers how many events it wrote."""
    made = list(batches)
    events = [event for batch in made for event in batch.events]
    people = [person_row(change) for batch in made for change in batch.people]
    if not events:
        return 0
    check_views_follow_only(events)
    now = datetime.now(UTC)
    with psycopg.connect(database.admin_url) as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute("LOCK TABLE training.training_events IN EXCLUSIVE MODE")
        row = cur.execute(
            "SELECT nextval('training.training_events_notification_id_seq')"
        ).fetchone()
        assert row is not None
        first_id = int(row[0])
        last_id = first_id + len(events) - 1
        cur.execute("SELECT setval('training.training_events_notification_id_seq', %s)", (last_id,))
        members: list[MemberRow] = []
        audit: list[AuditRow] = []
        with cur.copy(
            "COPY training.training_events "
            "(originator_id, originator_version, topic, state, notification_id) FROM STDIN"
        ) as copy:
            for notification_id, event in enumerate(events, start=first_id):
                stored = app.mapper.to_stored_event(event)
                copy.write_row(
                    (
                        stored.originator_id,
                        stored.originator_version,
                        stored.topic,
                        stored.state,
                        notification_id,
                    )
                )
                member, audit_row = view_rows(event, notification_id)
                if member is not None:
                    members.append(member)
                audit.append(audit_row)
        with cur.copy(f"COPY training.people ({PERSON_COLUMNS}, updated_at) FROM STDIN") as copy:
            for person in people:
                copy.write_row((*person, now))
        with cur.copy(f"COPY training.members ({MEMBER_COLUMNS}) FROM STDIN") as copy:
            for member in members:
                copy.write_row(member)
        with cur.copy(f"COPY training.audit_log ({AUDIT_COLUMNS}) FROM STDIN") as copy:
            for audit_row in audit:
                copy.write_row(audit_row)
        for view in FOLLOWING_VIEWS:
            cur.execute(
                sql.SQL(
                    "INSERT INTO {} (application_name, notification_id) VALUES (%s, %s) "
                    "ON CONFLICT (application_name) DO UPDATE "
                    "SET notification_id = EXCLUDED.notification_id"
                ).format(view.tracking_table),
                (view.upstream, last_id),
            )
    return len(events)


def hashable(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(tuple(value) if isinstance(value, list) else value for value in row)


def compare_with_views(
    database: Database,
    app: TrainingApplication,
    writer: MemberWriter,
    people: Sequence[MemberDataChange],
) -> str:
    """Checks ``view_rows`` and ``person_row`` against what the recorder and the running
    projections wrote for a tenant filled through the recorder: ``bulk_write`` writes those
    same rows for the other tenants. Raises when a row differs."""
    with psycopg.connect(database.admin_url) as conn:
        stored = conn.execute(
            "SELECT originator_id, originator_version, topic, state, notification_id "
            "FROM training.training_events WHERE originator_id = ANY(%s) "
            "ORDER BY notification_id",
            (writer.aggregate_ids,),
        ).fetchall()
        expected_members: set[MemberRow] = set()
        expected_audit: set[AuditRow] = set()
        for originator_id, version, topic, state, notification_id in stored:
            event = app.mapper.to_domain_event(StoredEvent(originator_id, version, topic, state))
            member, audit_row = view_rows(event, notification_id)
            if member is not None:
                expected_members.add(hashable(member))
            expected_audit.add(audit_row)
        held_members = {
            hashable(tuple(row))
            for row in conn.execute(
                f"SELECT {MEMBER_COLUMNS} FROM training.members WHERE tenant_id = %s",
                (writer.tenant_id,),
            ).fetchall()
        }
        held_audit = set(
            conn.execute(
                f"SELECT {AUDIT_COLUMNS} FROM training.audit_log WHERE notification_id = ANY(%s)",
                ([row[4] for row in stored],),
            ).fetchall()
        )
        held_people = set(
            conn.execute(
                f"SELECT {PERSON_COLUMNS} FROM training.people WHERE tenant_id = %s",
                (writer.tenant_id,),
            ).fetchall()
        )
    expected_people = {person_row(change) for change in people}
    differences = {
        "members": expected_members ^ held_members,
        "audit": expected_audit ^ held_audit,
        "people": expected_people ^ held_people,
    }
    if any(differences.values()):
        sample = {name: sorted(map(str, rows))[:3] for name, rows in differences.items() if rows}
        raise RuntimeError(f"the bulk fill's rows differ from the views': {sample}")
    return (
        f"bulk rows checked against the views' own: {len(stored)} events of a tenant filled "
        f"through the recorder ({len(held_members)} members rows, {len(held_audit)} audit rows, "
        f"{len(held_people)} people rows), identical"
    )


def store_events(database: Database) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute("SELECT count(*) FROM training.training_events").fetchone()
    return int(row[0]) if row else 0


def events_for(members: int, opening: bool) -> int:
    """Events a writer saves for ``members``: theirs, two per batch (claims and seats), and
    two more when it opens the tenant's aggregates."""
    return members + 2 * -(-members // BATCH_SIZE) + (2 if opening else 0)


class OtherTenants:
    """Other tenants, registered over HTTP, and their members, tenant after tenant."""

    def __init__(self, app: TrainingApplication, per_tenant: int) -> None:
        self.app = app
        self.per_tenant = per_tenant
        self.run = uuid.uuid4().hex[:6]
        self.writers: list[MemberWriter] = []
        self.control: MemberWriter | None = None

    def register(self, operator: Operator, server: Server, count: int) -> None:
        with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as http:
            for _ in range(count):
                slug = f"other-{self.run}-{len(self.writers) + 1}"
                tenant_id = operator.register_tenant(http, slug, self.per_tenant)
                self.writers.append(MemberWriter(self.app, tenant_id, self.per_tenant, "O"))

    def save_control(self, operator: Operator, server: Server) -> list[MemberDataChange]:
        """A tenant of one batch through the recorder, for the running views to apply: the
        bulk fill's rows are checked against theirs. Its seats are all taken, so the bulk
        fill adds nothing to it. Answers the personal data saved."""
        with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as http:
            tenant_id = operator.register_tenant(http, f"control-{self.run}", BATCH_SIZE)
        self.control = MemberWriter(self.app, tenant_id, BATCH_SIZE, "C")
        people: list[MemberDataChange] = []
        self.control.save(BATCH_SIZE, people)
        return people

    def chunks(self, events: int) -> Iterator[tuple[MemberWriter, int]]:
        """(writer, members) to write about ``events`` more events, filling each tenant in
        turn; registers none (``register`` first)."""
        for writer in self.writers:
            while events > 0 and writer.room > 0:
                opening = writer.written == 0
                members = min(writer.room, max(1, events - (2 if opening else 0)))
                # Two events per batch on top of the members: trim to the events left.
                while members > 1 and events_for(members, opening) > events:
                    members -= 1 + members // 100
                yield writer, members
                events -= events_for(members, opening)
            if events <= 0:
                return

    def tenants_needed(self, events: int) -> int:
        """How many more tenants ``events`` more events need beyond the registered ones."""
        room = sum(events_for(w.room, w.written == 0) for w in self.writers if w.room > 0)
        missing = max(0, events - room)
        return -(-missing // events_for(self.per_tenant, True))

    @property
    def tenants(self) -> int:
        return sum(1 for writer in self.writers if writer.written) + (self.control is not None)
