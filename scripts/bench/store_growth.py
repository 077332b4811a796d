"""Store growth benchmark (issue #14): does a command or a read cost more as the store grows?

Two parts, each on a fresh embedded PostgreSQL behind ``training serve --no-demo``, measured
over HTTP by one client sending one request at a time:

A. **Other tenants' history.** The store is filled step by step to ``--other-events`` events
   (default 10,000, 250,000 and 1,000,000), nearly all of them other tenants'. At each step a
   new small tenant registers ``--small-members`` members (unmeasured; they warm the path up
   and are the members changed below), then the bench measures ``--samples`` of each of:
   registering one member (``POST /v1/members``), changing one (``PATCH /v1/members/{id}``,
   its job title, round robin over the small members) and listing the tenant's first page
   (``GET /v1/members?limit=50``, without ``Training-Position``: the read alone), and, for
   reference, ``GET /healthz`` (no authentication, no database: on a shared machine its
   latency shows what the other load does, which the store's size cannot). A new small
   tenant per step keeps the measured tenant the same at every step: only the rest of the
   store grows.
B. **The tenant's own size.** One tenant grows to each of ``--own-members`` members (default
   1,000, 10,000, 50,000 and 100,000); at each step, the same three measurements on it (its
   ``--small-members`` new members, registered first, are the ones changed).

It prints Markdown tables on stdout (progress on stderr): how each step was filled and how
long the views took to catch up, then rate, p50 and p99 per operation and step, and the ratio
of the last step's rate to the first's. A measurement, not a test: no pass or fail.

How the store is filled
-----------------------
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
its stored version: for when the import is too slow (the fill table
shows its rate).

After each fill and catch-up the bench runs ``VACUUM (ANALYZE)`` and a ``CHECKPOINT``, as
autovacuum and the checkpointer would have done long before a real store reached that size,
so the measurement meets a settled store rather than one bulk-loaded a moment ago (the time
it took is in the fill table). The service runs with its rate limits lifted
(``harness.BENCH_LIMITS``); a failed request is counted by status (or exception class) and
shown instead of a rate.

Usage::

    PYTHONPATH=src .venv/bin/python scripts/bench/store_growth.py \\
        [--other-events 10000 250000 1000000] [--own-members 1000 10000 50000 100000] \\
        [--samples 300] [--warmup 20] [--small-members 50] [--tenant-members 10000] \\
        [--other-fill bulk|recorder] [--own-fill import|direct]

``--other-events`` or ``--own-members`` with no value skips that part. A quick run:
``--other-events 5000 20000 --own-members 500 2000 --samples 50``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
import psycopg
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from harness import (
    HTTP_TIMEOUT,
    Errors,
    Server,
    Stopwatch,
    Window,
    create_operator_client,
    fetch_token,
    machine_facts,
    postgres_facts,
    progress,
    running_server,
)
from psycopg import sql

from training.audit.views import AUDIT
from training.core.access import Role, Scope
from training.core.aggregate import TrainingAggregate
from training.core.application import TrainingApplication
from training.core.context import Actor, ActorKind
from training.core.personal_data import MemberDataChange, PersonalData
from training.infra.database import Database, database_for
from training.infra.recorder import TrainingRecorder
from training.infra.settings import Settings
from training.people.domain.external_ids import ExternalIdKey
from training.people.domain.members import Member
from training.people.domain.seats import SeatRoster
from training.people.handlers.import_files import MAX_ROWS
from training.people.handlers.imports import BATCH_SIZE
from training.people.views import MEMBERS
from training.registry import PROJECTIONS
from training.reports.trigger import REPORT_TRIGGERS

A = TypeVar("A", bound=TrainingAggregate)

FILL_ACTOR = str(Actor(ActorKind.SYSTEM, "store-growth-fill"))
LIST_LIMIT = 50
POLL_SECONDS = 0.5
READY_POLL_SECONDS = 2.0
# A token lives 900 s (TRAINING_TOKEN_TTL); a step of a long run may take longer.
TOKEN_REFRESH_SECONDS = 600.0
# What a registering tenant's seat limit leaves spare beyond the members the run gives it.
SPARE_SEATS = 100


# --- talking to the service -----------------------------------------------------------------------


def checked(response: httpx.Response) -> httpx.Response:
    """A setup request must succeed: without it there is nothing to measure."""
    if response.status_code >= 400:
        request = response.request
        msg = f"{request.method} {request.url.path}: {response.status_code} {response.text[:500]}"
        raise RuntimeError(msg)
    return response


@dataclass
class Tenant:
    """A tenant the bench measures: its id, seat limit and an integration client's token."""

    server: Server
    tenant_id: uuid.UUID
    slug: str
    seat_limit: int
    credentials: tuple[str, str]
    _token: str = ""
    _token_at: float = 0.0

    def token(self) -> str:
        if time.monotonic() - self._token_at > TOKEN_REFRESH_SECONDS:
            self._token = fetch_token(self.server, self.credentials)
            self._token_at = time.monotonic()
        return self._token

    def client(self) -> httpx.Client:
        """One keep-alive connection, as one integration client holds."""
        return httpx.Client(
            base_url=self.server.base_url,
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=HTTP_TIMEOUT,
        )


class Operator:
    """The platform operator: registers tenants."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.credentials = create_operator_client(server)
        self._token = ""
        self._token_at = 0.0

    def attach(self, server: Server) -> None:
        """Talks to a new start of serve: on another port, so another issuer, so a new token."""
        self.server = server
        self._token_at = 0.0

    def headers(self) -> dict[str, str]:
        if time.monotonic() - self._token_at > TOKEN_REFRESH_SECONDS:
            self._token = fetch_token(self.server, self.credentials)
            self._token_at = time.monotonic()
        return {"Authorization": f"Bearer {self._token}"}

    def register_tenant(self, http: httpx.Client, slug: str, seat_limit: int) -> uuid.UUID:
        body = {"slug": slug, "name": f"Bench {slug}", "seat_limit": seat_limit}
        response = checked(http.post("/v1/tenants", json=body, headers=self.headers()))
        return uuid.UUID(response.json()["tenant_id"])

    def measured_tenant(self, http: httpx.Client, slug: str, seat_limit: int) -> Tenant:
        tenant_id = self.register_tenant(http, slug, seat_limit)
        body = {"name": "HRIS", "scopes": [str(Scope.MEMBERS_READ), str(Scope.MEMBERS_WRITE)]}
        created = checked(
            http.post(f"/v1/tenants/{tenant_id}/clients", json=body, headers=self.headers())
        ).json()
        credentials = (str(created["client_id"]), str(created["client_secret"]))
        return Tenant(self.server, tenant_id, slug, seat_limit, credentials)


def wait_for_views(server: Server, label: str) -> float:
    """Seconds until ``/readyz`` shows every view and the planning process without a lag."""
    started = time.perf_counter()
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as http:
        while True:
            body = checked(http.get("/readyz")).json()
            stopped = [p["name"] for p in body["projections"] if p["status"] != "ok"]
            if stopped:
                # A view that quarantined filler events would mean the filler is not valid.
                raise RuntimeError(f"{label}: views not ok: {stopped}: {body}")
            behind = {p["name"]: p["lag"] for p in body["projections"] if p["lag"]}
            if not behind:
                return time.perf_counter() - started
            lags = ", ".join(f"{name} {lag:,}" for name, lag in sorted(behind.items()))
            progress(f"{label}: views catching up ({lags} events behind; 100,000 at most shown)")
            time.sleep(READY_POLL_SECONDS)


# --- filling the store ----------------------------------------------------------------------------


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


@dataclass
class Fill:
    """How one step's store was filled, and what it holds once settled."""

    part: str
    step: str
    method: str
    written: int  # events (A) or members (B) the fill wrote
    unit: str
    fill_seconds: float
    catch_up_seconds: float
    vacuum_seconds: float
    store_events: int = 0
    tenant_members: int = 0
    table_mb: dict[str, float] = field(default_factory=dict)
    load: float = 0.0

    @property
    def rate(self) -> float:
        return self.written / self.fill_seconds if self.fill_seconds else 0.0


def settle(database: Database) -> float:
    """VACUUM (ANALYZE) of the whole database, then a CHECKPOINT: visibility and statistics as
    autovacuum would have left them in a store that grew over months, and the pages the fill
    dirtied written out, so the checkpointer does not write a gigabyte during the measurement
    (it slowed even ``/healthz`` by a quarter at the 1M step)."""
    started = time.perf_counter()
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")
    return time.perf_counter() - started


SIZED_TABLES = ("training_events", "members", "people", "audit_log")


def describe_store(database: Database, fill: Fill, tenant_id: uuid.UUID | None) -> None:
    """Events in the store, the measured tenant's members and the biggest tables' sizes
    (read as the admin role, which row-level security does not restrict)."""
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute("SELECT count(*) FROM training.training_events").fetchone()
        fill.store_events = int(row[0]) if row else 0
        if tenant_id is not None:
            row = conn.execute(
                "SELECT count(*) FROM training.members WHERE tenant_id = %s", (tenant_id,)
            ).fetchone()
            fill.tenant_members = int(row[0]) if row else 0
        for table in SIZED_TABLES:
            row = conn.execute(
                "SELECT pg_total_relation_size(%s::regclass)", (f"training.{table}",)
            ).fetchone()
            fill.table_mb[table] = (int(row[0]) if row else 0) / 2**20
    fill.load = os.getloadavg()[0]


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Measured:
    part: str
    step: str
    operation: str
    latencies_ms: list[float]
    errors: Errors
    window: Window
    store_events: int
    tenant_members: int
    load: float

    @property
    def rate(self) -> float:
        done = len(self.latencies_ms)
        return done / self.window.seconds if self.window.seconds else 0.0

    def percentile(self, fraction: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


Request = tuple[str, str, dict[str, Any] | None, int]  # method, path, JSON body, expected status


def send_all(
    http: httpx.Client, requests: Iterator[Request], count: int, server: Server | None = None
) -> tuple[list[float], Errors, Window | None, list[httpx.Response]]:
    """Sends ``count`` requests one at a time; with ``server``, times them as a window."""
    latencies: list[float] = []
    errors = Errors()
    answers: list[httpx.Response] = []
    watch = Stopwatch(server.meter) if server is not None else None
    for _ in range(count):
        method, path, body, expected = next(requests)
        started = time.perf_counter()
        try:
            response = http.request(method, path, json=body)
        except httpx.HTTPError as error:
            errors.add(error)
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != expected:
            errors.add(response.status_code)
            continue
        latencies.append(elapsed)
        answers.append(response)
    return latencies, errors, watch.stop() if watch is not None else None, answers


def registrations(prefix: str) -> Iterator[Request]:
    number = 0
    while True:
        external_id = f"{prefix}{number:06d}"
        body = {
            "external_id": external_id,
            "display_name": f"Engineer {external_id}",
            "email": f"{external_id.lower()}@measure.example",
            "roles": ["engineer"],
        }
        yield ("POST", "/v1/members", body, 201)
        number += 1


def updates(member_ids: Sequence[str]) -> Iterator[Request]:
    """Round robin over the members, each PATCH a real change: the job title flips."""
    titles = dict.fromkeys(member_ids, "Engineer")
    while True:
        for member_id in member_ids:
            titles[member_id] = "Engineer A" if titles[member_id] != "Engineer A" else "Engineer B"
            body = {"job_title": titles[member_id]}
            yield ("PATCH", f"/v1/members/{member_id}", body, 200)


def lists() -> Iterator[Request]:
    while True:
        yield ("GET", f"/v1/members?limit={LIST_LIMIT}", None, 200)


def health() -> Iterator[Request]:
    while True:
        yield ("GET", "/healthz", None, 200)


REFERENCE = "GET /healthz (reference)"
OPERATIONS = (
    "POST /v1/members",
    "PATCH /v1/members/{id}",
    f"GET /v1/members?limit={LIST_LIMIT}",
    # No authentication and no database: what the machine's other load does to a request
    # that the store's size cannot change. On a shared machine it tells noise from growth.
    REFERENCE,
)


def measure_step(
    server: Server,
    tenant: Tenant,
    fill: Fill,
    args: argparse.Namespace,
    tag: str,
) -> list[Measured]:
    """Registers the step's ``--small-members`` (unmeasured), then measures the three
    operations, ``--samples`` each, after ``--warmup`` unmeasured requests of each."""
    results: list[Measured] = []
    with tenant.client() as http:
        _, errors, _, answers = send_all(http, registrations(f"S{tag}-"), args.small_members)
        if errors:
            raise RuntimeError(f"registering the step's members failed: {errors.summary()}")
        member_ids = [str(answer.json()["member_id"]) for answer in answers]
        fill.tenant_members += len(member_ids)  # the tenant's size as the measuring begins
        streams = (registrations(f"P{tag}-"), updates(member_ids), lists(), health())
        for operation, stream in zip(OPERATIONS, streams, strict=True):
            send_all(http, stream, args.warmup)
            progress(f"{fill.part} {fill.step}: {args.samples} x {operation}")
            latencies, errors, window, _ = send_all(http, stream, args.samples, server)
            assert window is not None
            result = Measured(
                fill.part,
                fill.step,
                operation,
                latencies,
                errors,
                window,
                fill.store_events,
                fill.tenant_members,
                os.getloadavg()[0],
            )
            progress(
                f"  {errors.or_rate(f'{result.rate:.0f}/s')}, p50 {fmt(result.percentile(0.5))} "
                f"ms, p99 {fmt(result.percentile(0.99))} ms"
            )
            results.append(result)
    return results


# --- part A: other tenants' history ---------------------------------------------------------------


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


def part_other_tenants(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[Fill], list[Measured], list[str], str]:
    """Part A. ``serve`` runs twice per step: once to register the step's tenants (and, with
    ``--other-fill recorder``, to apply their members as they are saved), then, after a bulk
    fill made while it was down, to measure. The bench keeps the embedded PostgreSQL up in
    between (``database_for``), so its caches stay as warm as a running service's."""
    data_dir = workdir / "other"
    data_dir.mkdir()
    fills: list[Fill] = []
    measured: list[Measured] = []
    notes: list[str] = []
    log_path = workdir / "other-serve.log"
    bulk = args.other_fill == "bulk"
    with (
        log_path.open("wb") as log,
        database_for(Settings(data_dir=data_dir)) as database,
    ):
        with running_server(data_dir, log, log) as server:
            # Its first start migrates the database, which the fill's application needs.
            operator = Operator(server)
        app = fill_application(database)
        others = OtherTenants(app, args.tenant_members)
        try:
            for number, target in enumerate(sorted(args.other_events)):
                step = f"{target:,} events"
                with running_server(data_dir, log, log) as server:
                    operator.attach(server)
                    if bulk and number == 0:
                        control_people = others.save_control(operator, server)
                    missing = target - store_events(database)
                    others.register(operator, server, others.tenants_needed(missing))
                    progress(f"A: filling the store to {target:,} events ({args.other_fill})")
                    started = time.perf_counter()
                    written = 0
                    if not bulk:
                        missing = target - store_events(database)
                        for writer, members in others.chunks(missing):
                            written += writer.save(members)
                            progress(f"A: {written:,} of {missing:,} events written")
                        fill_seconds = time.perf_counter() - started
                    catch_up = wait_for_views(server, f"A {step}")
                if bulk:
                    # serve is down: nothing else writes while the rows are copied in.
                    started = time.perf_counter()
                    missing = target - store_events(database)
                    for writer, members in others.chunks(missing):
                        written += bulk_write(database, app, writer.batches_of(members))
                        progress(f"A: {written:,} of {missing:,} events copied in")
                    fill_seconds = time.perf_counter() - started
                with running_server(data_dir, log, log) as server:
                    operator.attach(server)
                    if bulk:
                        # Nothing to apply: the bulk fill moved the views' positions.
                        catch_up += wait_for_views(server, f"A {step}")
                        if others.control is not None and number == 0:
                            notes.append(
                                compare_with_views(database, app, others.control, control_people)
                            )
                    vacuum = settle(database)
                    method = f"{others.tenants} other tenants' members, " + (
                        "copied in with their view rows" if bulk else "through the recorder"
                    )
                    fill = Fill(
                        "A", step, method, written, "events", fill_seconds, catch_up, vacuum
                    )
                    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as http:
                        seats = args.small_members + 2 * (args.samples + args.warmup) + SPARE_SEATS
                        slug = f"small-{others.run}-{number}"
                        tenant = operator.measured_tenant(http, slug, seats)
                    describe_store(database, fill, tenant.tenant_id)
                    fills.append(fill)
                    measured += measure_step(server, tenant, fill, args, f"a{number}")
        finally:
            app.close()
        postgres = postgres_facts(database.admin_url)
    return fills, measured, notes, postgres


# --- part B: the tenant's own size ----------------------------------------------------------------


def members_csv(first: int, count: int) -> bytes:
    lines = ["external_id,display_name,email,roles,team,job_title"]
    for index in range(first, first + count):
        external_id = f"M{index:07d}"
        lines.append(
            f"{external_id},Person {external_id},{external_id.lower()}@import.example,engineer,"
            f"Team {index // 100:04d},Engineer"
        )
    return ("\n".join(lines) + "\n").encode()


def import_members(tenant: Tenant, first: int, count: int) -> None:
    """CSV imports over HTTP, at most MAX_ROWS rows each, each awaited to its end."""
    for start in range(first, first + count, MAX_ROWS):
        rows = min(MAX_ROWS, first + count - start)
        with tenant.client() as http:
            accepted = checked(
                http.post(
                    "/v1/member-imports",
                    content=members_csv(start, rows),
                    headers={"Content-Type": "text/csv"},
                )
            )
            url = accepted.headers["location"]
            while True:
                job = checked(http.get(url)).json()
                if job["status"] in ("completed", "failed"):
                    break
                progress(f"B: import {job['processed_rows']:,}/{job['total_rows'] or '?'} rows")
                time.sleep(POLL_SECONDS)
        if job["status"] != "completed" or job["created"] != rows:
            raise RuntimeError(f"the import did not complete cleanly: {job}")


def part_own_size(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[Fill], list[Measured], str]:
    data_dir = workdir / "own"
    data_dir.mkdir()
    fills: list[Fill] = []
    measured: list[Measured] = []
    steps = sorted(args.own_members)
    # Each step adds its members, the small members and the measured registrations.
    extra = len(steps) * (args.small_members + args.samples + args.warmup)
    with (
        (workdir / "own-serve.log").open("wb") as log,
        running_server(data_dir, log, log) as server,
        database_for(Settings.from_env(dict(server.env))) as database,
    ):
        operator = Operator(server)
        app = fill_application(database)
        try:
            with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as http:
                slug = f"own-{uuid.uuid4().hex[:6]}"
                tenant = operator.measured_tenant(http, slug, steps[-1] + extra + SPARE_SEATS)
            next_index = 0  # of the members the fill gives the tenant: M0000000, M0000001, ...
            for number, target in enumerate(steps):
                step = f"{target:,} members"
                with psycopg.connect(database.admin_url) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM training.members WHERE tenant_id = %s",
                        (tenant.tenant_id,),
                    ).fetchone()
                have = int(row[0]) if row else 0
                wanted = max(0, target - have)
                progress(f"B: growing the tenant from {have:,} to {target:,} members")
                started = time.perf_counter()
                if args.own_fill == "import":
                    import_members(tenant, next_index, wanted)
                    method = "CSV imports over HTTP"
                else:
                    # Loaded afresh at each step: the measured registrations changed them.
                    writer = MemberWriter(
                        app, tenant.tenant_id, tenant.seat_limit, "M", first_index=next_index
                    )
                    writer.save(wanted)
                    method = "members through the recorder"
                next_index += wanted
                fill_seconds = time.perf_counter() - started
                catch_up = wait_for_views(server, f"B {step}")
                vacuum = settle(database)
                fill = Fill("B", step, method, wanted, "members", fill_seconds, catch_up, vacuum)
                describe_store(database, fill, tenant.tenant_id)
                fills.append(fill)
                measured += measure_step(server, tenant, fill, args, f"b{number}")
        finally:
            app.close()
        postgres = postgres_facts(database.admin_url)
    return fills, measured, postgres


# --- the report -----------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def fill_table(fills: Sequence[Fill]) -> list[str]:
    lines = [
        "| part | step | filled by | written | fill s | per s | views caught up s "
        "| VACUUM ANALYZE s | events in store | tenant members | MB events / members / people "
        "/ audit_log |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for fill in fills:
        sizes = " / ".join(f"{fill.table_mb[t]:.0f}" for t in SIZED_TABLES)
        lines.append(
            f"| {fill.part} | {fill.step} | {fill.method} | {fill.written:,} {fill.unit} "
            f"| {fill.fill_seconds:.1f} | {fill.rate:,.0f} | {fill.catch_up_seconds:.1f} "
            f"| {fill.vacuum_seconds:.1f} | {fill.store_events:,} | {fill.tenant_members:,} "
            f"| {sizes} |"
        )
    return lines


def measured_table(results: Sequence[Measured]) -> list[str]:
    lines = [
        "| part | step | events in store | tenant members | operation | n | per second "
        "| p50 ms | p99 ms | errors | load 1m | CPU % bench / serve / pg |",
        "|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        cpu = " / ".join(f"{share * 100:.0f}" for share in r.window.cpu)
        lines.append(
            f"| {r.part} | {r.step} | {r.store_events:,} | {r.tenant_members:,} | {r.operation} "
            f"| {len(r.latencies_ms)} | {r.errors.or_rate(f'{r.rate:.0f}')} "
            f"| {fmt(r.percentile(0.5))} | {fmt(r.percentile(0.99))} | {r.errors.summary()} "
            f"| {r.load:.2f} | {cpu} |"
        )
    return lines


def ratios(part: str, results: Sequence[Measured], target: str) -> list[str]:
    lines = []
    for operation in OPERATIONS:
        rows = [r for r in results if r.part == part and r.operation == operation]
        if len(rows) < 2:
            continue
        first, last = rows[0], rows[-1]
        if first.errors or last.errors:
            lines.append(f"- {part}, {operation}: not computed, a step had errors")
            continue
        ratio = last.rate / first.rate if first.rate else 0.0
        p50_first, p50_last = first.percentile(0.5), last.percentile(0.5)
        lines.append(
            f"- {part}, {operation}: rate({last.step}) / rate({first.step}) = "
            f"{last.rate:.0f} / {first.rate:.0f} = **{ratio:.2f}**"
            f"{'' if operation == REFERENCE else target}; "
            f"p50 {fmt(p50_first)} -> {fmt(p50_last)} ms"
        )
    return lines


def run(args: argparse.Namespace, workdir: Path) -> str:
    load_before = os.getloadavg()
    fills: list[Fill] = []
    measured: list[Measured] = []
    notes: list[str] = []
    postgres = ""
    if args.other_events:
        part_fills, part_measured, notes, postgres = part_other_tenants(args, workdir)
        fills += part_fills
        measured += part_measured
    if args.own_members:
        part_fills, part_measured, postgres = part_own_size(args, workdir)
        fills += part_fills
        measured += part_measured
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    lines = [
        f"Store growth benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"Command: `{command}`",
        f"One client, one request at a time; {args.samples} measured requests per operation "
        f"and step after {args.warmup} unmeasured; A: a new tenant of {args.small_members} "
        f"members per step, other tenants of up to {args.tenant_members:,} members each; "
        f"fill: A {args.other_fill}, B {args.own_fill}.",
        "",
        *fill_table(fills),
        *[f"- {note}" for note in notes],
        "",
        *measured_table(measured),
        "",
        *ratios("A", measured, " (target >= 0.9)"),
        *ratios("B", measured, ""),
        "",
        *[f"- {fact}" for fact in machine_facts(postgres, load_before)],
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--other-events",
        type=int,
        nargs="*",
        default=[10_000, 250_000, 1_000_000],
        help="A: events in the store at each step (none: skip A)",
    )
    parser.add_argument(
        "--own-members",
        type=int,
        nargs="*",
        default=[1_000, 10_000, 50_000, 100_000],
        help="B: the measured tenant's members at each step (none: skip B)",
    )
    parser.add_argument("--samples", type=int, default=300, help="measured requests per step")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests before")
    parser.add_argument(
        "--small-members", type=int, default=50, help="members each step's tenant registers"
    )
    parser.add_argument(
        "--tenant-members", type=int, default=10_000, help="A: members of each other tenant"
    )
    parser.add_argument(
        "--other-fill",
        choices=("bulk", "recorder"),
        default="bulk",
        help="A: copy other tenants' events and view rows in while serve is down, or save "
        "them through the recorder for the running views to apply (about 500 events/s here)",
    )
    parser.add_argument(
        "--own-fill",
        choices=("import", "direct"),
        default="import",
        help="B: grow the tenant by CSV imports over HTTP, or through the recorder directly",
    )
    args = parser.parse_args(argv)
    if min(args.samples, args.small_members, args.tenant_members) < 1 or args.warmup < 0:
        parser.error("--samples, --small-members, --tenant-members >= 1; --warmup >= 0")
    if not args.other_events and not args.own_members:
        parser.error("nothing to do: give --other-events or --own-members some sizes")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # PostgreSQL runs as pgserver's system user and must reach its data directory in here.
    workdir = Path(tempfile.mkdtemp(prefix="training-bench-growth-", dir="/tmp"))
    workdir.chmod(0o755)
    try:
        print(run(args, workdir))
    except RuntimeError as error:
        progress(f"stopped: {error}")
        for log in sorted(workdir.glob("*-serve.log")):
            tail = log.read_text(errors="replace").splitlines()[-10:]
            progress(f"{log.name}, last lines:")
            for line in tail:
                print(f"    {line[:400]}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
