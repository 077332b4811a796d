"""Takes personal data out of events stored before it was kept beside them (ADR 0020).

Events recorded before this release may hold personal data in three places:

* an external id that is an email address (SCIM users registered without ``externalId``,
  members provisioned at sign-in as ``sso:<email>``): in ``Member.Registered``,
  ``Member.ExternalIdChanged`` and ``ExternalIds.Assigned``;
* a review's free text: the strengths in the content of ``PerformanceReview`` events
  (version 1) and the reason of ``Amended``;
* why a member was deactivated: the reason of ``Member.Deactivated`` (version 1).

``training migrate`` (and ``training serve``, which migrates first) runs this step once and
records it in ``public.training_data_migrations``. It works in two phases:

1. **Through the domain.** Each member whose current external id holds an email gets a
   generated one (``GiveOpaqueExternalId``): a normal command, so the members view follows
   its ``ExternalIdChanged`` event and the audit log shows it, done by ``system:migrate``.
   A subject that was part of an ``sso:`` id goes to the personal data.
2. **In the stored events, in one transaction.** Free text moves to where it lives now (the
   current strengths and every amendment's reason to ``review_texts``, the last deactivation
   reason to ``people``), except for members whose personal data was erased: theirs is
   dropped. Then each affected event is stored again in its current shape (what its
   upcaster reads), and every email that was an external id is replaced in the stored
   events by a placeholder, the same placeholder for the same email of a tenant, so the
   history keeps its shape (an id given up and taken again still reads so). Stored events are
   immutable to the service's role and guarded by a trigger: the migrating role lifts the
   trigger for this transaction only.

Nothing else in history changes: versions, positions, timestamps, actors stay as they were.

A second step (``FREE_TEXT``, recorded under its own name, run after the first) does the same
for free text that stayed in events after it: why an engineer skipped a module
(``LearningRecord.ModuleProgressed`` and the planning process's ``TrainingTrack.
ProgressNoted``, which copied it), why a cohort was cancelled (``Cohort.Cancelled``) and why a
person was withdrawn (``Cohort.Withdrawn``). The text goes to ``learning_notes`` and
``cohort_reasons``, keyed by the event's aggregate and version as the recorder keys new ones,
except an erased person's own notes and withdrawal reasons, which are dropped; each event is
stored again in its version 2 shape, in both events tables, in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import Mapper
from psycopg import sql
from psycopg.types.json import Jsonb

from training.cohorts.domain.cohorts import Cohort
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.core.tenant_scope import scope_to
from training.people.domain.external_ids import ExternalIds
from training.people.domain.members import Member, generated_external_id
from training.people.handlers.members import GiveOpaqueExternalId
from training.planning.domain.learning import LearningRecord
from training.planning.domain.tracks import TrainingTrack
from training.reviews.domain import PerformanceReview

NAME = "0020-personal-data-out-of-events"
FREE_TEXT = "0028-free-text-out-of-events"
STEPS = (NAME, FREE_TEXT)
LEDGER = """
CREATE TABLE IF NOT EXISTS public.training_data_migrations (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    report jsonb NOT NULL
)
"""
SSO_PREFIX = "sso:"

REGISTERED = Member.Registered.TOPIC
EXTERNAL_ID_CHANGED = Member.ExternalIdChanged.TOPIC
DEACTIVATED = Member.Deactivated.TOPIC
ASSIGNED = ExternalIds.Assigned.TOPIC
DRAFTED = PerformanceReview.Drafted.TOPIC
REVISED = PerformanceReview.Revised.TOPIC
FINALISED = PerformanceReview.Finalised.TOPIC
AMENDED = PerformanceReview.Amended.TOPIC
MODULE_PROGRESSED = LearningRecord.ModuleProgressed.TOPIC
CANCELLED = Cohort.Cancelled.TOPIC
WITHDRAWN = Cohort.Withdrawn.TOPIC
PROGRESS_NOTED = TrainingTrack.ProgressNoted.TOPIC
TRAINING_EVENTS = "training_events"
PLANNING_EVENTS = "planning_events"
WITH_EXTERNAL_IDS = (REGISTERED, EXTERNAL_ID_CHANGED, ASSIGNED)
WITH_TEXT = (DEACTIVATED, DRAFTED, REVISED, FINALISED, AMENDED)
UPCAST: dict[str, Any] = {
    DEACTIVATED: Member.Deactivated,
    DRAFTED: PerformanceReview.Drafted,
    REVISED: PerformanceReview.Revised,
    FINALISED: PerformanceReview.Finalised,
    AMENDED: PerformanceReview.Amended,
}


@dataclass
class Report:
    """What the step did (recorded in the ledger: counts and ids, never a value)."""

    external_ids_replaced: int = 0
    events_rewritten: int = 0
    review_texts_kept: int = 0
    deactivation_reasons_kept: int = 0
    texts_dropped_for_erased: int = 0
    rekeyed_members: list[str] = field(default_factory=list)
    learning_notes_kept: int = 0
    cohort_reasons_kept: int = 0


@dataclass
class _Event:
    originator_id: UUID
    version: int
    topic: str
    state: dict[str, Any]


def _done(admin_url: str) -> set[str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(LEDGER)
        rows = conn.execute(
            "SELECT name FROM public.training_data_migrations WHERE name = ANY(%s)", (list(STEPS),)
        ).fetchall()
    return {str(row[0]) for row in rows}


def already_done(admin_url: str) -> bool:
    """Whether both steps are recorded as done."""
    return _done(admin_url) == set(STEPS)


def move_personal_data_out_of_events(admin_url: str, bus: CommandBus) -> Report | None:
    """Runs the steps not recorded as done, in order; answers what they did (None: both were
    done before)."""
    done = _done(admin_url)
    report = Report()
    ran = False
    if NAME not in done:
        ran |= _take_personal_data_out(admin_url, bus, report)
    if FREE_TEXT not in done:
        ran |= _take_free_text_out(admin_url, bus, report)
    return report if ran else None


def _take_personal_data_out(admin_url: str, bus: CommandBus, report: Report) -> bool:
    mapper = bus.app.mapper
    with psycopg.connect(admin_url) as conn:
        _give_opaque_external_ids(conn, mapper, bus, report)
    with psycopg.connect(admin_url) as conn, conn.transaction():
        if not _claim(conn, NAME):
            return False
        _rewrite(conn, mapper, bus, report)
        _record(conn, NAME, msgspec.to_builtins(report))
    return True


def _claim(conn: psycopg.Connection[Any], name: str) -> bool:
    """Takes the step's lock for the transaction; False when another process did it."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
    done = conn.execute(
        "SELECT 1 FROM public.training_data_migrations WHERE name = %s", (name,)
    ).fetchone()
    return done is None


def _record(conn: psycopg.Connection[Any], name: str, report: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO public.training_data_migrations (name, report) VALUES (%s, %s)",
        (name, Jsonb(report)),
    )


# -- reading and writing stored states ----------------------------------------------------------


def _decode(mapper: Mapper[UUID], data: bytes) -> dict[str, Any]:
    if mapper.cipher:
        data = mapper.cipher.decrypt(data)
    if mapper.compressor:
        data = mapper.compressor.decompress(data)
    state: dict[str, Any] = msgspec.json.decode(data)
    return state


def _encode(mapper: Mapper[UUID], state: dict[str, Any]) -> bytes:
    data = msgspec.json.encode(state)
    if mapper.compressor:
        data = mapper.compressor.compress(data)
    if mapper.cipher:
        data = mapper.cipher.encrypt(data)
    return data


def _events(
    conn: psycopg.Connection[Any],
    mapper: Mapper[UUID],
    topics: tuple[str, ...],
    table: str = TRAINING_EVENTS,
) -> Iterator[_Event]:
    with conn.cursor(name=f"events_{uuid.uuid4().hex}") as cur:
        cur.execute(
            sql.SQL(
                "SELECT originator_id, originator_version, topic, state "
                "FROM training.{} WHERE topic = ANY(%s) ORDER BY notification_id"
            ).format(sql.Identifier(table)),
            (list(topics),),
        )
        for originator_id, version, topic, state in cur:
            yield _Event(originator_id, int(version), str(topic), _decode(mapper, bytes(state)))


def _holds_email(value: object) -> bool:
    return isinstance(value, str) and "@" in value


# -- phase 1: members whose external id holds an email get a generated one -----------------------


def _give_opaque_external_ids(
    conn: psycopg.Connection[Any], mapper: Mapper[UUID], bus: CommandBus, report: Report
) -> None:
    candidates: dict[UUID, UUID] = {}
    for event in _events(conn, mapper, (REGISTERED, EXTERNAL_ID_CHANGED)):
        tenant = event.state.get("tenant_id")
        if _holds_email(event.state.get("external_id")) and tenant:
            candidates[event.originator_id] = UUID(str(tenant))
    conn.rollback()
    for member_id, tenant_id in candidates.items():
        member: object = bus.app.repository.get(member_id)
        if not isinstance(member, Member) or not _holds_email(member.external_id):
            continue
        old = member.external_id
        subject = old.removeprefix(SSO_PREFIX) if old.startswith(SSO_PREFIX) else None
        context = CommandContext(
            Actor(ActorKind.SYSTEM, "migrate"), f"migrate-{uuid.uuid4().hex[:12]}", tenant_id
        )
        bus.execute(context, GiveOpaqueExternalId(member_id, generated_external_id(), subject))
        report.rekeyed_members.append(str(member_id))


# -- phase 2: the stored events -------------------------------------------------------------------


@dataclass
class _ReviewText:
    tenant_id: UUID
    member_id: UUID
    strengths: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def _rewrite(
    conn: psycopg.Connection[Any], mapper: Mapper[UUID], bus: CommandBus, report: Report
) -> None:
    placeholders: dict[tuple[str, str], str] = {}
    texts: dict[UUID, _ReviewText] = {}
    reasons: dict[UUID, tuple[UUID, str]] = {}
    rewritten: list[tuple[bytes, UUID, int]] = []
    erased = _Erased(bus)
    for event in _events(conn, mapper, (*WITH_EXTERNAL_IDS, *WITH_TEXT)):
        state = event.state
        changed = False
        if event.topic in WITH_EXTERNAL_IDS and _holds_email(state.get("external_id")):
            key = (str(state.get("tenant_id")), str(state["external_id"]))
            if key not in placeholders:
                placeholders[key] = f"redacted-{uuid.uuid4().hex}"
            state["external_id"] = placeholders[key]
            report.external_ids_replaced += 1
            changed = True
        cls = UPCAST.get(event.topic)
        if cls is not None and state.get("class_version", 1) < cls.class_version:
            _collect_text(event, texts, reasons)
            _upcast(cls, state)
            changed = True
        if changed:
            rewritten.append((_encode(mapper, state), event.originator_id, event.version))
    for review_id, text in texts.items():
        if erased(text.member_id):
            report.texts_dropped_for_erased += 1
            continue
        _keep_review_text(conn, review_id, text)
        report.review_texts_kept += 1
    for member_id, (tenant_id, reason) in reasons.items():
        if erased(member_id):
            report.texts_dropped_for_erased += 1
            continue
        _in_tenant(conn, tenant_id)
        kept = conn.execute(
            "UPDATE training.people SET deactivation_reason = %s WHERE member_id = %s "
            "AND deactivation_reason IS NULL",
            (reason, member_id),
        ).rowcount
        report.deactivation_reasons_kept += kept
    _store_again(conn, TRAINING_EVENTS, rewritten)
    report.events_rewritten = len(rewritten)


def _store_again(
    conn: psycopg.Connection[Any], table: str, rewritten: list[tuple[bytes, UUID, int]]
) -> None:
    """Stores the events' new states, lifting the table's immutability for this transaction
    only (the trigger is ``<table>_immutable``)."""
    if not rewritten:
        return
    events = sql.Identifier(table)
    trigger = sql.Identifier(f"{table}_immutable")
    conn.execute(sql.SQL("ALTER TABLE training.{} DISABLE TRIGGER {}").format(events, trigger))
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL(
                "UPDATE training.{} SET state = %s "
                "WHERE originator_id = %s AND originator_version = %s"
            ).format(events),
            rewritten,
        )
    conn.execute(sql.SQL("ALTER TABLE training.{} ENABLE TRIGGER {}").format(events, trigger))


def _collect_text(
    event: _Event, texts: dict[UUID, _ReviewText], reasons: dict[UUID, tuple[UUID, str]]
) -> None:
    """Remembers the free text of a version 1 event before its upcaster drops it."""
    state = event.state
    tenant = UUID(str(state["tenant_id"])) if state.get("tenant_id") else None
    if tenant is None:
        return
    if event.topic == DEACTIVATED:
        reason = str(state.get("reason") or "").strip()
        if reason:
            reasons[event.originator_id] = (tenant, reason)  # the last one stays
        return
    if event.topic == DRAFTED:
        texts[event.originator_id] = _ReviewText(tenant, UUID(str(state["member_id"])))
    text = texts.get(event.originator_id)
    if text is None:
        return
    content = state.get("content")
    if isinstance(content, dict) and event.topic != FINALISED:
        text.strengths = [str(s) for s in content.get("strengths") or []]
    if event.topic == AMENDED and state.get("reason"):
        text.reasons.append(str(state["reason"]))


def _upcast(cls: Any, state: dict[str, Any]) -> None:
    """The state as the current class version stores it (what its upcasters read)."""
    version = state.pop("class_version", 1)
    while version < cls.class_version:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
        version += 1
    state["class_version"] = cls.class_version


def _in_tenant(conn: psycopg.Connection[Any], tenant_id: UUID) -> None:
    # Row-level security is forced on these tables, for a migrating role without BYPASSRLS too.
    scope_to(conn, tenant_id)


def _keep_review_text(conn: psycopg.Connection[Any], review_id: UUID, text: _ReviewText) -> None:
    _in_tenant(conn, text.tenant_id)
    conn.execute(
        "INSERT INTO training.review_texts (review_id, tenant_id, member_id, strengths, "
        "amendment_reasons, updated_at) VALUES (%s, %s, %s, %s, %s, now()) "
        "ON CONFLICT (review_id) DO NOTHING",
        (review_id, text.tenant_id, text.member_id, text.strengths, text.reasons),
    )


class _Erased:
    """Whether a member's personal data was erased (read from the event store, cached)."""

    def __init__(self, bus: CommandBus) -> None:
        self.bus = bus
        self.known: dict[UUID, bool] = {}

    def __call__(self, member_id: UUID) -> bool:
        if member_id not in self.known:
            try:
                member: object = self.bus.app.repository.get(member_id)
            except AggregateNotFoundError:  # an unknown member: nothing to keep for them
                self.known[member_id] = True
            else:
                self.known[member_id] = not isinstance(member, Member) or member.erased
        return self.known[member_id]


# -- the second step: learning notes and cohort reasons -------------------------------------------

FREE_TEXT_UPCAST: dict[str, Any] = {
    MODULE_PROGRESSED: LearningRecord.ModuleProgressed,
    CANCELLED: Cohort.Cancelled,
    WITHDRAWN: Cohort.Withdrawn,
}


def _take_free_text_out(admin_url: str, bus: CommandBus, report: Report) -> bool:
    mapper = bus.app.mapper
    with psycopg.connect(admin_url) as conn, conn.transaction():
        if not _claim(conn, FREE_TEXT):
            return False
        before = (report.events_rewritten, report.texts_dropped_for_erased)
        erased = _Erased(bus)
        rewritten: list[tuple[bytes, UUID, int]] = []
        for event in _events(conn, mapper, tuple(FREE_TEXT_UPCAST)):
            cls = FREE_TEXT_UPCAST[event.topic]
            if event.state.get("class_version", 1) >= cls.class_version:
                continue
            _keep_free_text(conn, event, erased, report)
            _upcast(cls, event.state)
            rewritten.append((_encode(mapper, event.state), event.originator_id, event.version))
        _store_again(conn, TRAINING_EVENTS, rewritten)
        # The planning process copied the note into its track's events (same mapper).
        copied: list[tuple[bytes, UUID, int]] = []
        noted = TrainingTrack.ProgressNoted
        for event in _events(conn, mapper, (PROGRESS_NOTED,), PLANNING_EVENTS):
            if event.state.get("class_version", 1) < noted.class_version:
                _upcast(noted, event.state)
                copied.append((_encode(mapper, event.state), event.originator_id, event.version))
        _store_again(conn, PLANNING_EVENTS, copied)
        report.events_rewritten += len(rewritten) + len(copied)
        _record(
            conn,
            FREE_TEXT,
            {
                "events_rewritten": report.events_rewritten - before[0],
                "learning_notes_kept": report.learning_notes_kept,
                "cohort_reasons_kept": report.cohort_reasons_kept,
                "texts_dropped_for_erased": report.texts_dropped_for_erased - before[1],
            },
        )
    return True


def _keep_free_text(
    conn: psycopg.Connection[Any], event: _Event, erased: _Erased, report: Report
) -> None:
    """Writes a version 1 event's text where the recorder writes it now, keyed alike (the
    event's aggregate and version); an erased person's own text is dropped."""
    state = event.state
    tenant = state.get("tenant_id")
    text = str(state.get("note" if event.topic == MODULE_PROGRESSED else "reason") or "").strip()
    if not tenant or not text:
        return
    tenant_id = UUID(str(tenant))
    person = UUID(str(state["member_id"])) if state.get("member_id") else None
    if person is not None and erased(person):
        report.texts_dropped_for_erased += 1
        return
    _in_tenant(conn, tenant_id)
    if event.topic == MODULE_PROGRESSED:
        kept = conn.execute(
            "INSERT INTO training.learning_notes (record_id, version, tenant_id, member_id, "
            "curriculum_id, module_key, note, noted_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (
                event.originator_id,
                event.version,
                tenant_id,
                person,
                str(state.get("curriculum_id", "")),
                str(state.get("key", "")),
                text,
                state["timestamp"],
            ),
        ).rowcount
        report.learning_notes_kept += kept
        return
    withdrawn = (
        [str(m) for m in state.get("withdrawn") or []] if event.topic == CANCELLED else [person]
    )
    kept = conn.execute(
        "INSERT INTO training.cohort_reasons (cohort_id, version, tenant_id, member_id, "
        "withdrawn, reason, given_at) VALUES (%s, %s, %s, %s, %s::uuid[], %s, %s) "
        "ON CONFLICT DO NOTHING",
        (
            event.originator_id,
            event.version,
            tenant_id,
            person,
            withdrawn,
            text,
            state["timestamp"],
        ),
    ).rowcount
    report.cohort_reasons_kept += kept
