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
from psycopg.types.json import Jsonb

from training.application.bus import CommandBus
from training.application.context import Actor, ActorKind, CommandContext
from training.application.people import GiveOpaqueExternalId
from training.domain.people import ExternalIds, Member, generated_external_id
from training.domain.reviews import PerformanceReview

NAME = "0020-personal-data-out-of-events"
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


@dataclass
class _Event:
    originator_id: UUID
    version: int
    topic: str
    state: dict[str, Any]


def already_done(admin_url: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(LEDGER)
        row = conn.execute(
            "SELECT 1 FROM public.training_data_migrations WHERE name = %s", (NAME,)
        ).fetchone()
    return row is not None


def move_personal_data_out_of_events(admin_url: str, bus: CommandBus) -> Report | None:
    """Runs the step unless it is recorded as done; answers what it did (None: done before)."""
    if already_done(admin_url):
        return None
    mapper = bus.app.mapper
    report = Report()
    with psycopg.connect(admin_url) as conn:
        _give_opaque_external_ids(conn, mapper, bus, report)
    with psycopg.connect(admin_url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (NAME,))
        done = conn.execute(
            "SELECT 1 FROM public.training_data_migrations WHERE name = %s", (NAME,)
        ).fetchone()
        if done:  # another process finished it meanwhile
            return None
        _rewrite(conn, mapper, bus, report)
        conn.execute(
            "INSERT INTO public.training_data_migrations (name, report) VALUES (%s, %s)",
            (NAME, Jsonb(msgspec.to_builtins(report))),
        )
    return report


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
    conn: psycopg.Connection[Any], mapper: Mapper[UUID], topics: tuple[str, ...]
) -> Iterator[_Event]:
    with conn.cursor(name=f"events_{uuid.uuid4().hex}") as cur:
        cur.execute(
            "SELECT originator_id, originator_version, topic, state "
            "FROM training.training_events WHERE topic = ANY(%s) ORDER BY notification_id",
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
    if rewritten:
        conn.execute(
            "ALTER TABLE training.training_events DISABLE TRIGGER training_events_immutable"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE training.training_events SET state = %s "
                "WHERE originator_id = %s AND originator_version = %s",
                rewritten,
            )
        conn.execute(
            "ALTER TABLE training.training_events ENABLE TRIGGER training_events_immutable"
        )
    report.events_rewritten = len(rewritten)


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
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))


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
