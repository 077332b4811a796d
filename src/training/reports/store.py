"""PDF reports in ``training.reports``: the queue, the files, and the data a report shows.

* ``SqlReportQueue`` is the worker's queue. A claim leases exactly one report to the
  worker's database session: a session-level advisory lock on the report (``LEASE_SPACE``,
  the hash of its id), taken on a connection the queue keeps for nothing else. Workers in
  several processes skip the reports leased in ``pg_locks``; a report whose worker died
  (killed, crashed, its connection lost) is free again as soon as PostgreSQL ends that
  session, not after a timeout. Every write that ends an attempt (the file, a failure, a
  retry) happens only while the lease is still held (``LEASE_HELD``) and then releases it.
  ``claimed_until`` is now only "not before": a report waiting for its data or retried after
  an error. Reports people asked for (priority 0) go before the automatic ones of re-plans
  (priority 1): a curriculum release re-plans every track of a tenant at once. ``NOTIFY
  training_reports`` wakes idle workers when a report is queued; they poll every few seconds
  as well.
* ``SqlReportSources`` builds each report's data from the read models (see ``individual``,
  ``cohort`` and ``effectiveness``), in a transaction scoped to the report's tenant.
* ``ReportTriggerProjection`` follows the planning process's ``TrainingTrack.Replanned``
  events and queues the individual report of each new plan version, in the transaction that
  records its position: each re-plan queues exactly one report, even across a crash.

Why a projection of the planning events rather than polling ``training.tracks``: the
position tracking makes "one report per re-plan" exact with no scan (a poll would have to
compare every track with the reports table, or keep a cursor over a table that is emptied
and refilled by ``projections rebuild``); the runner is woken by the event store's own
notifications; and the tracks tables have no platform policy, so the service role could not
poll them across tenants without weakening their row-level security. The price is that the
tracks view (another runner) may not have reached the plan version yet when the report is
built; the worker then waits for it (``NotReady``).

The API's queries (``get_report``, ``get_pdf``, ``list_member_reports``) and ``create_report``
run on the API's asynchronous pool.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime
from functools import cache, singledispatchmethod
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
import psycopg
import structlog
from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import AsyncConnection, Connection, Cursor
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from training.assessments.domain.profile import Measurement, combine, evidence_measurement
from training.assessments.handlers import starter_bank
from training.assessments.views import LATEST_SCORING
from training.cohorts.domain.policy import DEFAULT_AT_RISK_THRESHOLD
from training.cohorts.views import (
    COHORT_COLUMNS,
    FROM_SESSIONS,
    MAX_FEED_SESSIONS,
    SESSION_COLUMNS,
    CohortRecord,
    attendance_rate,
    content_satisfaction,
    interaction_index,
)
from training.cohorts.views import SessionRow as CohortSession
from training.core.bus import CommandBus
from training.core.mapper import MsgspecMapper, PassThroughTranscoder
from training.core.pagination import TIMESTAMP, UUID_KEY, Page, decode_cursor, page_of
from training.core.projection_runner import ProjectionSupervisor
from training.core.tenant_scope import scope_to, scope_to_async
from training.core.views import ProjectionSpec, TenantScopedView
from training.infra.database import worker_url_for
from training.infra.rendering import RenderingProcess
from training.people.views import ERASED
from training.planning.domain.planner import Plan
from training.planning.domain.tracks import TrainingTrack
from training.planning.process import Planning
from training.planning.views.tracks import due_dates
from training.reports.domain.effectiveness import MIN_GROUP, summarise_changes
from training.reports.domain.requests import Report, ReportKind
from training.reports.handlers import (
    Built,
    NotReady,
    QueuedReport,
    ReportWorker,
)
from training.skills.queries import default_framework

if TYPE_CHECKING:
    from training.reports.rendering import (
        EffectivenessReport,
        LevelDistribution,
        ProfileRow,
    )
    from training.reports.rendering.documents import PlanItem

log = structlog.get_logger(__name__)

CHANNEL = "training_reports"
NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"
ON_REQUEST, AUTOMATIC = 0, 1  # queue priorities: people waiting first
REPLANNED_TOPIC = get_topic(TrainingTrack.Replanned)
RATING_SE = 1.0  # logits: a reviewer's rating counts as one observation (as in the planner)
UNKNOWN = "(unknown)"

# -- the API's side ----------------------------------------------------------------------------


class ReportRecord(msgspec.Struct, kw_only=True):
    report_id: UUID
    kind: str
    subject_id: UUID | None
    plan_version: int | None
    status: str
    checksum: str | None
    size_bytes: int | None
    pages: int | None
    trigger: str
    requested_by: str
    created_at: datetime
    rendered_at: datetime | None
    detail: str | None


class ReportFile(msgspec.Struct, kw_only=True):
    kind: str
    subject_id: UUID | None
    status: str
    checksum: str | None
    pdf: bytes | None
    # An individual report printing the name of a member whose personal data was erased since.
    withheld: bool


COLUMNS = (
    "report_id, kind, subject_id, plan_version, status, checksum, size_bytes, pages, trigger, "
    "requested_by, created_at, rendered_at, detail"
)
INSERT = (
    "INSERT INTO training.reports (report_id, tenant_id, kind, subject_id, for_plan_version, "
    "priority, requested_by, request_id, trigger) VALUES (%(report)s, %(tenant)s, %(kind)s, "
    "%(subject)s, %(for_plan)s, %(priority)s, %(by)s, %(request)s, %(trigger)s) "
    "ON CONFLICT (report_id) DO NOTHING"
)


@asynccontextmanager
async def _writing(
    pool: AsyncConnectionPool[Any], tenant_id: UUID
) -> AsyncIterator[AsyncConnection[Any]]:
    async with pool.connection() as conn, conn.transaction():
        await scope_to_async(conn, tenant_id)
        yield conn


async def create_report(
    pool: AsyncConnectionPool[Any],
    tenant_id: UUID,
    report_id: UUID,
    kind: ReportKind,
    subject_id: UUID | None,
    requested_by: str,
    request_id: str,
    trigger: str,
) -> None:
    """Queues a report someone asked for (its ``Requested`` event is already stored)."""
    async with _writing(pool, tenant_id) as conn:
        await conn.execute(
            INSERT,
            {
                "report": report_id,
                "tenant": tenant_id,
                "kind": str(kind),
                "subject": subject_id,
                "for_plan": None,
                "priority": ON_REQUEST,
                "by": requested_by,
                "request": request_id,
                "trigger": trigger,
            },
        )
        await conn.execute(NOTIFY)


async def get_report(conn: AsyncConnection[Any], report_id: UUID) -> ReportRecord | None:
    async with conn.cursor(row_factory=class_row(ReportRecord)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM training.reports WHERE report_id = %s", (report_id,)
        )
        return await cur.fetchone()


async def get_pdf(conn: AsyncConnection[Any], report_id: UUID) -> ReportFile | None:
    async with conn.cursor(row_factory=class_row(ReportFile)) as cur:
        await cur.execute(
            "SELECT r.kind, r.subject_id, r.status, r.checksum, r.pdf, EXISTS (SELECT 1 "
            "FROM training.members m WHERE m.member_id = ANY(r.named_members) AND m.erased) "
            "AS withheld FROM training.reports r WHERE r.report_id = %s",
            (report_id,),
        )
        return await cur.fetchone()


async def list_member_reports(
    conn: AsyncConnection[Any], member_id: UUID, *, limit: int, cursor: str | None
) -> Page[ReportRecord]:
    """A member's individual reports, newest first."""
    after = decode_cursor(cursor, TIMESTAMP, UUID_KEY) if cursor else None
    async with conn.cursor(row_factory=class_row(ReportRecord)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM training.reports WHERE kind = 'individual' "
            "AND subject_id = %(member)s AND (%(at)s::timestamptz IS NULL "
            "OR (created_at, report_id) < (%(at)s::timestamptz, %(id)s::uuid)) "
            "ORDER BY created_at DESC, report_id DESC LIMIT %(limit)s",
            {
                "member": member_id,
                "at": after[0] if after else None,
                "id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.created_at.isoformat(), str(r.report_id)])


# -- the queue ---------------------------------------------------------------------------------

# A file is kept only while everyone it names still has personal data (a concurrent erasure
# deletes it); a report whose file was refused is rendered again after this many seconds.
NAMED_MEMBERS_KEPT = (
    "NOT EXISTS (SELECT 1 FROM unnest(%s::uuid[]) AS named(member_id) WHERE NOT EXISTS "
    "(SELECT 1 FROM training.people p WHERE p.member_id = named.member_id))"
)
RENDER_AGAIN_AFTER = 2.0

# The leases: session-level advisory locks (LEASE_SPACE, hashtext(report_id)). Two reports
# whose ids hash alike cannot be leased at the same time; the second waits for the first.
LEASE_SPACE = 1_919_250_548
LEASED_IN_THIS_DATABASE = (
    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
    f"AND classid = {LEASE_SPACE} AND database = (SELECT oid FROM pg_database "
    "WHERE datname = current_database())"
)
# The next report nobody leases. A statement of its own, run once: as a subquery of the
# UPDATE, the planner may put it inside a nested loop and run it again for each row, which
# claimed several reports at once (and kept them from the other workers for the lease).
NEXT = (
    "SELECT report_id FROM training.reports WHERE status = 'queued' "
    "AND (claimed_until IS NULL OR claimed_until <= now()) "
    f"AND hashtext(report_id::text)::oid NOT IN ({LEASED_IN_THIS_DATABASE}) "
    "ORDER BY priority, created_at, report_id LIMIT 1 FOR UPDATE SKIP LOCKED"
)
TAKE = f"SELECT pg_try_advisory_lock({LEASE_SPACE}, hashtext(%(report)s::text))"
RELEASE = f"SELECT pg_advisory_unlock({LEASE_SPACE}, hashtext(%(report)s::text))"
HOLDS = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    f"AND pid = pg_backend_pid() AND classid = {LEASE_SPACE} AND objsubid = 2 "
    "AND objid = hashtext(%(report)s::text)::oid)"
)
CLAIMED = (
    "UPDATE training.reports SET attempts = attempts + 1, claimed_until = NULL "
    "WHERE report_id = %(report)s AND status = 'queued' RETURNING tenant_id, report_id, kind, "
    "subject_id, for_plan_version, requested_by, request_id, trigger, attempts, created_at"
)
# The condition of every write that ends an attempt: the session whose process id is the
# parameter (the worker's) still leases the report. A worker whose session was lost writes
# nothing.
LEASE_HELD = (
    "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    f"AND l.pid = %s AND l.classid = {LEASE_SPACE} AND l.objsubid = 2 "
    "AND l.objid = hashtext(report_id::text)::oid)"
)
CLAIM_TRIES = 5  # another worker took the report between the two statements: the next one


class SqlReportQueue:
    def __init__(self, conninfo: str, *, worker_conninfo: str | None = None) -> None:
        self.conninfo = conninfo
        self.worker_conninfo = worker_conninfo or worker_url_for(conninfo)
        self.pool = ConnectionPool(conninfo, min_size=1, max_size=3, open=False, timeout=10.0)
        # The worker role sees the queued reports of every tenant (never a file); the
        # platform's sessions see no tenant's reports.
        self.worker_pool = ConnectionPool(
            self.worker_conninfo,
            min_size=1,
            max_size=1,
            open=False,
            timeout=10.0,
        )
        self._listener: Connection[Any] | None = None
        self._lock = threading.Lock()
        # The session that holds this queue's lease (a worker role's connection of its own,
        # never pooled: its locks must live exactly as long as it), and the report leased.
        self._lease: Connection[Any] | None = None
        self._leased: UUID | None = None
        self._lease_lock = threading.Lock()

    def open(self) -> None:
        # Not waiting: this runs in the API's lifespan; the first claim waits for a connection.
        self.pool.open(wait=False)
        self.worker_pool.open(wait=False)

    def close(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        with self._lease_lock:
            self._end_lease_session()
        self.worker_pool.close()
        self.pool.close()

    @contextmanager
    def scoped(self, tenant_id: UUID | None) -> Iterator[Connection[Any]]:
        """A transaction scoped to ``tenant_id``, or, when None, a transaction of the worker
        role across tenants (the queue only)."""
        if tenant_id is None:
            with self.worker_pool.connection() as conn, conn.transaction():
                yield conn
            return
        with self.pool.connection() as conn, conn.transaction():
            scope_to(conn, tenant_id)
            yield conn

    def claim(self) -> QueuedReport | None:
        """Leases the next queued report to this queue's session and counts an attempt."""
        with self._lease_lock:
            if self._leased is not None:  # a worker that forgot to end its attempt
                log.warning("report.lease_not_ended", report_id=str(self._leased))
                self._end_lease_session()
            try:
                row = self._claim_one(self._lease_session())
            except BaseException:
                # A lock taken before the error would outlive it: end the session instead.
                self._end_lease_session()
                raise
            if row is None:
                return None
            self._leased = row[1]
        return QueuedReport(
            tenant_id=row[0],
            report_id=row[1],
            kind=ReportKind(row[2]),
            subject_id=row[3],
            for_plan_version=row[4],
            requested_by=row[5],
            request_id=row[6],
            trigger=row[7],
            attempts=row[8],
            created_at=row[9],
        )

    @staticmethod
    def _claim_one(conn: Connection[Any]) -> tuple[Any, ...] | None:
        for _ in range(CLAIM_TRIES):
            with conn.transaction():
                # The row lock keeps the report from other claims until the lease is taken.
                found = conn.execute(NEXT).fetchone()
                if found is None:
                    return None
                taken = conn.execute(TAKE, {"report": found[0]}).fetchone()
                if not (taken and taken[0]):
                    continue
                return conn.execute(CLAIMED, {"report": found[0]}).fetchone()
        return None

    def _lease_session(self) -> Connection[Any]:
        if self._lease is None or self._lease.closed or self._lease.broken:
            self._end_lease_session()
            self._lease = psycopg.connect(self.worker_conninfo, autocommit=True)
        return self._lease

    def _end_lease_session(self) -> None:
        """Closes the lease session: PostgreSQL ends every lease it held."""
        lease, self._lease, self._leased = self._lease, None, None
        if lease is not None:
            lease.close()

    def _lease_pid(self, job: QueuedReport) -> int:
        """The process id of the session that leases ``job`` (0, matching no session, when
        this queue no longer leases it)."""
        with self._lease_lock:
            if self._leased != job.report_id or self._lease is None or self._lease.closed:
                return 0
            return int(self._lease.info.backend_pid)

    def _release(self, job: QueuedReport) -> None:
        with self._lease_lock:
            if self._leased != job.report_id:
                return
            self._leased = None
            if self._lease is None or self._lease.closed or self._lease.broken:
                return
            try:
                self._lease.execute(RELEASE, {"report": job.report_id})
            except psycopg.Error:
                log.warning("report.release_failed", exc_info=True)
                self._end_lease_session()

    def holds(self, job: QueuedReport) -> bool:
        with self._lease_lock:
            if self._leased != job.report_id or self._lease is None or self._lease.closed:
                return False
            try:
                row = self._lease.execute(HOLDS, {"report": job.report_id}).fetchone()
            except psycopg.Error:
                log.warning("report.lease_session_lost", exc_info=True)
                self._end_lease_session()
                return False
        return bool(row and row[0])

    def abandon(self, job: QueuedReport) -> None:
        self._release(job)

    def retry_later(self, job: QueuedReport, seconds: float) -> None:
        """Back in the queue after ``seconds``; the attempt does not count."""
        with self.scoped(job.tenant_id) as conn:
            conn.execute(
                "UPDATE training.reports SET claimed_until = now() + make_interval(secs => %s), "
                "attempts = greatest(attempts - 1, 0) WHERE report_id = %s AND status = 'queued' "
                f"AND {LEASE_HELD}",
                (seconds, job.report_id, self._lease_pid(job)),
            )
        self._release(job)

    def retry_after_error(self, job: QueuedReport, seconds: float, reason: str) -> None:
        """Back in the queue after ``seconds``, the attempt counted and its reason shown."""
        with self.scoped(job.tenant_id) as conn:
            conn.execute(
                "UPDATE training.reports SET claimed_until = now() + make_interval(secs => %s), "
                "detail = %s WHERE report_id = %s AND status = 'queued' "
                f"AND {LEASE_HELD}",
                (seconds, reason, job.report_id, self._lease_pid(job)),
            )
        self._release(job)

    def finish(
        self, job: QueuedReport, pdf: bytes, checksum: str, pages: int, built: Built
    ) -> None:
        with self.scoped(job.tenant_id) as conn:
            stored = conn.execute(
                "UPDATE training.reports SET status = 'rendered', pdf = %s, checksum = %s, "
                "size_bytes = %s, pages = %s, plan_version = %s, named_members = %s, "
                "rendered_at = now(), claimed_until = NULL, detail = NULL WHERE report_id = %s "
                f"AND {NAMED_MEMBERS_KEPT} AND {LEASE_HELD}",
                (
                    pdf,
                    checksum,
                    len(pdf),
                    pages,
                    built.plan_version,
                    list(built.named_members),
                    job.report_id,
                    list(built.named_members),
                    self._lease_pid(job),
                ),
            ).rowcount
            if not stored:
                # Someone the file names was erased while it was rendered: the file is not
                # kept, and the report is rendered again shortly, without their name.
                conn.execute(
                    "UPDATE training.reports SET claimed_until = now() + make_interval(secs "
                    "=> %s) WHERE report_id = %s AND status = 'queued'",
                    (RENDER_AGAIN_AFTER, job.report_id),
                )
        self._release(job)

    def fail(self, job: QueuedReport, detail: str) -> None:
        with self.scoped(job.tenant_id) as conn:
            conn.execute(
                "UPDATE training.reports SET status = 'failed', detail = %s, "
                "claimed_until = NULL WHERE report_id = %s AND status = 'queued' "
                f"AND {LEASE_HELD}",
                (detail, job.report_id, self._lease_pid(job)),
            )
        self._release(job)

    def newer_plan_report(self, job: QueuedReport) -> int | None:
        with self.scoped(job.tenant_id) as conn:
            row = conn.execute(
                "SELECT max(for_plan_version) FROM training.reports WHERE kind = 'individual' "
                "AND subject_id = %s AND for_plan_version > %s",
                (job.subject_id, job.for_plan_version),
            ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def supersede(self, job: QueuedReport, plan_version: int) -> None:
        with self.scoped(job.tenant_id) as conn:
            conn.execute(
                "UPDATE training.reports SET status = 'superseded', claimed_until = NULL, "
                f"detail = %s WHERE report_id = %s AND status = 'queued' AND {LEASE_HELD}",
                (
                    f"the report of plan version {plan_version} replaces it",
                    job.report_id,
                    self._lease_pid(job),
                ),
            )
        self._release(job)

    def wait(self, timeout: float) -> None:
        try:
            with self._lock:
                if self._listener is None:
                    self._listener = psycopg.connect(self.conninfo, autocommit=True)
                    self._listener.execute(f"LISTEN {CHANNEL}")
                listener = self._listener
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                pass
            for _ in listener.notifies(timeout=0.0):  # several at once count as one
                pass
        except psycopg.Error:
            log.warning("report.listen_failed", exc_info=True)
            with self._lock:
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
            threading.Event().wait(timeout)

    def wake(self) -> None:
        try:
            with self.pool.connection(timeout=2.0) as conn:
                conn.execute(NOTIFY)
        except Exception:  # waking is a courtesy: the worker polls anyway
            log.warning("report.wake_failed", exc_info=True)

    def pending(self) -> int:
        """Reports still queued, of every tenant (for benchmarks and operators)."""
        with self.scoped(None) as conn:
            row = conn.execute(
                "SELECT count(*) FROM training.reports WHERE status = 'queued'"
            ).fetchone()
        return int(row[0]) if row else 0


# -- the data of each report ---------------------------------------------------------------------


@cache
def logits_per_level() -> float:
    """The mean width of the inner level bands of the cut scores: SE logits -> SE levels."""
    cuts = starter_bank().cut_scores.thresholds
    return (cuts[-1] - cuts[0]) / (len(cuts) - 1)


def _today_in(timezone: str) -> date:
    try:
        return datetime.now(ZoneInfo(timezone)).date()
    except (KeyError, ValueError):
        return datetime.now(UTC).date()


def expected_percent(starts_on: date, ends_on: date, today: date) -> float:
    """Days of the window elapsed by the end of ``today`` over its days, in % (as the API's
    cohort progress computes it)."""
    if today < starts_on:
        return 0.0
    if today >= ends_on:
        return 100.0
    total = (ends_on - starts_on).days + 1
    return round(((today - starts_on).days + 1) * 100 / total, 2)


_MAPPER = MsgspecMapper(transcoder=PassThroughTranscoder())


def _ref(value: Any) -> tuple[str, str]:
    return str(value[0]), str(value[1])


class SqlReportSources:
    """Builds a report's data from the read models, in a transaction of its tenant."""

    def __init__(self, queue: SqlReportQueue) -> None:
        self.queue = queue

    def build(self, job: QueuedReport, generated_at: datetime) -> Built:
        with self.queue.scoped(job.tenant_id) as conn:
            conn.execute("SET TRANSACTION READ ONLY")
            if job.kind is ReportKind.INDIVIDUAL:
                assert job.subject_id is not None
                return self.individual(conn, job, job.subject_id, generated_at)
            if job.kind is ReportKind.COHORT:
                assert job.subject_id is not None
                return self.cohort(conn, job.subject_id, generated_at)
            return Built(self.effectiveness(conn, generated_at))

    # -- shared ---------------------------------------------------------------------------

    @staticmethod
    def tenant_name(conn: Connection[Any]) -> str:
        row = conn.execute(
            "SELECT name FROM training.tenants WHERE tenant_id = training.current_tenant()"
        ).fetchone()
        return str(row[0]) if row else UNKNOWN

    @staticmethod
    def skill_names(conn: Connection[Any]) -> dict[str, str]:
        names = {skill.code: skill.name for skill in default_framework().skills}
        names.update(
            {str(c): str(n) for c, n in conn.execute("SELECT code, name FROM training.skills")}
        )
        return names

    @staticmethod
    def module_titles(conn: Connection[Any], refs: Sequence[tuple[str, str]]) -> dict[Any, str]:
        """Titles of modules, from their latest version in the curricula read model."""
        ids = sorted({curriculum for curriculum, _ in refs})
        if not ids:
            return {}
        rows = conn.execute(
            "SELECT DISTINCT ON (curriculum_id, key) curriculum_id::text, key, title "
            "FROM training.curriculum_modules WHERE curriculum_id::text = ANY(%s) "
            "ORDER BY curriculum_id, key, version DESC",
            (ids,),
        ).fetchall()
        return {(str(r[0]), str(r[1])): str(r[2]) for r in rows}

    # -- individual -----------------------------------------------------------------------

    def individual(
        self, conn: Connection[Any], job: QueuedReport, member_id: UUID, generated_at: datetime
    ) -> Built:
        """A member's skill profile, the plan of one version of their track and its changes.

        * Profile rows: the skill profile from assessments and reviewers' evidence where
          there is one (latest assessment and evidence, combined as the profile API does);
          for the other skills the plan targets, the level the planner used (a reviewer's
          rating). Targets and gaps come from the plan's targets.
        * Plan rows: ``track_modules`` (reasons and due dates) when the track is still at
          that version, else the version's own ``Replanned`` event, whose due dates are
          computed as the tracks view computes them.
        * "What changed": the diff of ``track_plans`` for that version.

        The automatic report of plan version N waits (``NotReady``) until the tracks view
        holds N. A report asked for by a person shows the track's current version.
        """
        from training.reports.rendering import IndividualReport

        member = conn.execute(
            f"SELECT CASE WHEN m.erased THEN '{ERASED}' ELSE "
            "coalesce(p.display_name, m.external_id) END, m.job_title, m.team, m.erased "
            "FROM training.members m LEFT JOIN training.people p ON p.member_id = m.member_id "
            "WHERE m.member_id = %s",
            (member_id,),
        ).fetchone()
        if member is None:
            raise NotReady(f"member {member_id} is not in the members view yet")
        track = conn.execute(
            "SELECT plan_version FROM training.tracks WHERE member_id = %s", (member_id,)
        ).fetchone()
        current = int(track[0]) if track else None
        version = job.for_plan_version or current
        if version is not None and (current is None or current < version):
            raise NotReady(f"the tracks view has not reached plan version {version} yet")
        names = self.skill_names(conn)
        plan: Plan | None = None
        starts_on: date | None = None
        items: tuple[PlanItem, ...] = ()
        changes: tuple[str, ...] = ()
        if version is not None:
            plan, starts_on = self._replanned(conn, job.tenant_id, member_id, version)
            if version == current:
                items = self._current_plan(conn, member_id)
            else:
                items = self._plan_items(plan, starts_on)
            changes = self._changes(conn, member_id, version, plan)
        profile = self._profile(conn, member_id, plan, names, generated_at)
        name, job_title, team, erased = member
        return Built(
            IndividualReport(
                tenant_name=self.tenant_name(conn),
                member_name=str(name) if name else UNKNOWN,
                job_title=job_title,
                team=team,
                generated_at=generated_at,
                profile=profile,
                plan=items,
                changes=changes,
                plan_version=version or 0,
                previous_plan_version=version - 1 if version and version > 1 else None,
            ),
            plan_version=version,
            named_members=() if erased else (member_id,),
        )

    @staticmethod
    def _replanned(
        conn: Connection[Any], tenant_id: UUID, member_id: UUID, version: int
    ) -> tuple[Plan, date]:
        """The plan and start day of one plan version, from the planning process's event."""
        track_id = TrainingTrack.create_id(tenant_id, member_id)
        row = conn.execute(
            "SELECT originator_version, state FROM training.planning_events "
            "WHERE originator_id = %s AND topic = %s "
            "AND (convert_from(state, 'UTF8')::jsonb ->> 'plan_version')::int = %s",
            (track_id, REPLANNED_TOPIC, version),
        ).fetchone()
        if row is None:
            raise NotReady(f"plan version {version} of the track is not stored yet")
        event = _MAPPER.to_domain_event(
            StoredEvent(track_id, int(row[0]), REPLANNED_TOPIC, bytes(row[1]))
        )
        assert isinstance(event, TrainingTrack.Replanned)
        return event.plan, event.starts_on

    @staticmethod
    def _current_plan(conn: Connection[Any], member_id: UUID) -> tuple[PlanItem, ...]:
        from training.reports.rendering import PlanItem

        rows = conn.execute(
            "SELECT position, title, minutes, due_on, reason FROM training.track_modules "
            "WHERE member_id = %s ORDER BY position",
            (member_id,),
        ).fetchall()
        return tuple(PlanItem(int(r[0]), str(r[1]), int(r[2]), r[3], str(r[4])) for r in rows)

    @staticmethod
    def _plan_items(plan: Plan, starts_on: date) -> tuple[PlanItem, ...]:
        from training.reports.rendering import PlanItem

        return tuple(
            PlanItem(m.order, m.title, m.minutes, due, m.reason)
            for m, due in zip(plan.modules, due_dates(plan, starts_on), strict=True)
        )

    def _changes(
        self, conn: Connection[Any], member_id: UUID, version: int, plan: Plan
    ) -> tuple[str, ...]:
        row = conn.execute(
            "SELECT added, removed, reordered FROM training.track_plans "
            "WHERE member_id = %s AND plan_version = %s",
            (member_id, version),
        ).fetchone()
        if row is None:
            raise NotReady(f"the tracks view holds no diff of plan version {version} yet")
        added, removed, reordered = row
        titles: dict[Any, str] = {(m.curriculum_id, m.key): m.title for m in plan.modules}
        missing = [_ref(r[0]) for r in removed if _ref(r[0]) not in titles]
        titles.update(self.module_titles(conn, missing))

        def title(ref: Any) -> str:
            key = _ref(ref)
            return titles.get(key, key[1])

        lines = [f"added '{title(ref)}': {reason}" for ref, reason in added]
        lines += [f"removed '{title(ref)}': {why}" for ref, why in removed]
        lines += [
            f"moved '{title(ref)}' from step {old} to step {new}" for ref, old, new in reordered
        ]
        return tuple(lines)

    @staticmethod
    def _profile(
        conn: Connection[Any],
        member_id: UUID,
        plan: Plan | None,
        names: dict[str, str],
        as_of: datetime,
    ) -> tuple[ProfileRow, ...]:
        from training.reports.rendering import ProfileRow

        cut_scores = starter_bank().cut_scores
        measurements: dict[str, list[Measurement]] = defaultdict(list)
        for attempt_id, skill, theta, se, completed_at in conn.execute(
            "SELECT a.attempt_id, a.skill, s.theta, s.se, a.completed_at "
            f"FROM training.assessment_attempts a {LATEST_SCORING} "
            "WHERE a.member_id = %(member)s AND a.status = 'completed' "
            "ORDER BY a.skill, a.completed_at, a.attempt_id",
            {"member": member_id, "as_of": None},
        ):
            measurements[str(skill)].append(
                Measurement("assessment", str(attempt_id), theta, se, completed_at)
            )
        for evidence_id, kind, skill, level, recorded_at in conn.execute(
            "SELECT evidence_id, kind, skill, observed_level::int, recorded_at "
            "FROM training.skill_evidence WHERE member_id = %s",
            (member_id,),
        ):
            measurements[str(skill)].append(
                evidence_measurement(str(kind), str(evidence_id), level, recorded_at, cut_scores)
            )
        entries = {
            skill: entry
            for skill, found in measurements.items()
            if (entry := combine(skill, found, as_of, cut_scores)) is not None
        }
        targets = {gap.skill: gap for gap in (plan.targets if plan else ())}
        rows = []
        for skill in set(entries) | set(targets):
            entry, gap = entries.get(skill), targets.get(skill)
            if entry is not None:
                level, se = entry.level, entry.se
            else:
                assert gap is not None
                level, se = gap.current, RATING_SE
            target = gap.target if gap is not None else None
            rows.append(
                ProfileRow(
                    skill=names.get(skill, skill),
                    level=level,
                    se_levels=round(se / logits_per_level(), 2),
                    target=target,
                    gap=max(target - level, 0) if target is not None else None,
                )
            )
        return tuple(sorted(rows, key=lambda r: r.skill.lower()))

    # -- cohort ---------------------------------------------------------------------------

    def cohort(self, conn: Connection[Any], cohort_id: UUID, generated_at: datetime) -> Built:
        """Roster and progress (as the cohort progress API computes them), the live
        sessions with their metrics, and the cohort's levels per skill (the latest result of
        each enrolled person); a skill fewer than 5 people have a level for is suppressed."""
        from training.reports.rendering import (
            CohortReport,
            RosterRow,
            SessionRow,
            level_distribution,
        )

        with conn.cursor(row_factory=class_row(CohortRecord)) as cur:
            cohort = cur.execute(
                f"SELECT {COHORT_COLUMNS} FROM training.cohorts c WHERE c.cohort_id = %s",
                (cohort_id,),
            ).fetchone()
        if cohort is None:
            raise NotReady(f"cohort {cohort_id} is not in the cohorts view yet")
        title = conn.execute(
            "SELECT title FROM training.curricula WHERE curriculum_id = %s",
            (cohort.curriculum_id,),
        ).fetchone()
        policy = conn.execute(
            "SELECT at_risk_threshold FROM training.training_policies "
            "WHERE tenant_id = training.current_tenant()"
        ).fetchone()
        threshold = int(policy[0]) if policy else DEFAULT_AT_RISK_THRESHOLD
        expected = expected_percent(cohort.starts_on, cohort.ends_on, _today_in(cohort.timezone))
        roster = []
        named: list[UUID] = []
        for member_id, erased, name, status, completed in conn.execute(
            "SELECT e.member_id, coalesce(m.erased, false), CASE WHEN m.erased THEN "
            f"'{ERASED}' ELSE coalesce(p.display_name, m.external_id, '{UNKNOWN}') END, "
            "e.status, e.modules_completed FROM training.cohort_enrolments e "
            "LEFT JOIN training.members m ON m.member_id = e.member_id "
            "LEFT JOIN training.people p ON p.member_id = e.member_id "
            "WHERE e.cohort_id = %s ORDER BY e.position",
            (cohort_id,),
        ):
            percent = min(round(completed * 100 / max(cohort.module_count, 1), 2), 100.0)
            if not erased:
                named.append(member_id)
            roster.append(
                RosterRow(
                    name=str(name),
                    status=str(status),
                    percent_complete=percent,
                    at_risk=status == "enrolled" and expected - percent > threshold,
                )
            )
        with conn.cursor(row_factory=class_row(CohortSession)) as cur:
            sessions = cur.execute(
                f"SELECT {SESSION_COLUMNS} FROM {FROM_SESSIONS} WHERE s.cohort_id = %s "
                "ORDER BY s.starts_at, s.session_id LIMIT %s",
                (cohort_id, MAX_FEED_SESSIONS),
            ).fetchall()
        names = self.skill_names(conn)
        levels: dict[str, list[int]] = defaultdict(list)
        for skill, level in conn.execute(
            "SELECT DISTINCT ON (a.member_id, a.skill) a.skill, s.level "
            f"FROM training.assessment_attempts a {LATEST_SCORING} "
            "WHERE a.status = 'completed' AND a.member_id IN (SELECT e.member_id "
            "FROM training.cohort_enrolments e WHERE e.cohort_id = %(cohort)s "
            "AND e.status = 'enrolled') "
            "ORDER BY a.member_id, a.skill, a.completed_at DESC, a.attempt_id DESC",
            {"cohort": cohort_id, "as_of": None},
        ):
            levels[names.get(str(skill), str(skill))].append(int(level))
        distribution: list[LevelDistribution | Any] = [
            level_distribution(skill, levels[skill]) for skill in sorted(levels, key=str.lower)
        ]
        report = CohortReport(
            tenant_name=self.tenant_name(conn),
            cohort_name=cohort.name,
            curriculum_title=str(title[0]) if title else UNKNOWN,
            window=(cohort.starts_on, cohort.ends_on),
            roster=tuple(roster),
            sessions=tuple(
                SessionRow(
                    title=s.title,
                    starts_at=s.starts_at,
                    attendance_rate=attendance_rate(s),
                    interaction_index=interaction_index(s),
                    content_satisfaction=content_satisfaction(s),
                )
                for s in sessions
            ),
            skill_distribution=tuple(distribution),
            generated_at=generated_at,
        )
        return Built(report, named_members=tuple(named))

    # -- effectiveness --------------------------------------------------------------------

    def effectiveness(self, conn: Connection[Any], generated_at: datetime) -> EffectivenessReport:
        """Per skill, the level before and after: each person's first and latest completed
        assessment of the skill (each at its latest scoring); people with one result are not
        counted, groups of fewer than 5 are suppressed. Completion per cohort: enrolled
        people who completed every module of the pinned version; cohorts of fewer than 5
        people are shown only pooled together (when the pool reaches 5), cancelled cohorts
        not at all. The period runs from the first completed assessment to today."""
        from training.reports.rendering import CompletionRate, EffectivenessReport

        names = self.skill_names(conn)
        pairs: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for skill, pre, post in conn.execute(
            "WITH results AS (SELECT a.member_id, a.skill, s.level, a.completed_at, "
            f"a.attempt_id FROM training.assessment_attempts a {LATEST_SCORING} "
            "WHERE a.status = 'completed') "
            "SELECT skill, (array_agg(level ORDER BY completed_at, attempt_id))[1], "
            "(array_agg(level ORDER BY completed_at DESC, attempt_id DESC))[1] "
            "FROM results GROUP BY skill, member_id HAVING count(*) >= 2",
            {"as_of": None},
        ):
            pairs[names.get(str(skill), str(skill))].append((float(pre), float(post)))
        first = conn.execute(
            "SELECT min(completed_at) FROM training.assessment_attempts WHERE status = 'completed'"
        ).fetchone()
        today = generated_at.date()
        start = first[0].date() if first and first[0] else today
        rates, small_enrolled, small_completed, small_cohorts = [], 0, 0, 0
        for name, enrolled, completed in conn.execute(
            "SELECT c.name, count(e.member_id) FILTER (WHERE e.status = 'enrolled'), "
            "count(e.member_id) FILTER (WHERE e.status = 'enrolled' "
            "AND e.modules_completed >= c.module_count) "
            "FROM training.cohorts c LEFT JOIN training.cohort_enrolments e "
            "ON e.cohort_id = c.cohort_id WHERE c.status <> 'cancelled' "
            "GROUP BY c.cohort_id, c.name, c.starts_on ORDER BY c.starts_on, c.name"
        ):
            if enrolled >= MIN_GROUP:
                rates.append(CompletionRate(str(name), int(enrolled), int(completed)))
            elif enrolled:
                small_cohorts += 1
                small_enrolled += int(enrolled)
                small_completed += int(completed)
        if small_enrolled >= MIN_GROUP:
            rates.append(
                CompletionRate(
                    f"{small_cohorts} cohorts of fewer than {MIN_GROUP} people, together",
                    small_enrolled,
                    small_completed,
                )
            )
        return EffectivenessReport(
            tenant_name=self.tenant_name(conn),
            period=(min(start, today), today),
            changes=summarise_changes({skill: pairs[skill] for skill in sorted(pairs)}),
            completion_rates=tuple(rates),
            generated_at=generated_at,
        )


# -- the trigger: a re-plan queues its individual report ------------------------------------------


class ReportTriggerView(TenantScopedView):
    """Writes only queue rows; ``projections rebuild`` never empties the reports table."""

    def enqueue(self, e: TrainingTrack.Replanned, tracking: Tracking) -> None:
        tenant_id = e.tenant_id
        assert tenant_id is not None, "tracks always belong to a tenant"

        def rows(cur: Cursor[Any]) -> None:
            cur.execute(
                INSERT,
                {
                    "report": Report.plan_report_id(tenant_id, e.member_id, e.plan_version),
                    "tenant": tenant_id,
                    "kind": str(ReportKind.INDIVIDUAL),
                    "subject": e.member_id,
                    "for_plan": e.plan_version,
                    "priority": AUTOMATIC,
                    "by": e.actor or "system:planning",
                    "request": e.request_id,
                    "trigger": f"re-plan to version {e.plan_version} ({e.trigger})",
                },
            )
            cur.execute(NOTIFY)

        self.write(tracking, tenant_id, rows)


class ReportTriggerProjection(Projection[ReportTriggerView]):
    name = "report_triggers"
    topics = (REPLANNED_TOPIC,)

    @singledispatchmethod
    def process_event(self, event: Any, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, e: TrainingTrack.Replanned, tracking: Tracking) -> None:
        self.view.enqueue(e, tracking)


REPORT_TRIGGERS = ProjectionSpec(ReportTriggerProjection, ReportTriggerView, upstream=Planning)


def report_worker(
    bus: CommandBus, conninfo: str, worker_conninfo: str | None = None
) -> ReportWorker:
    queue = SqlReportQueue(conninfo, worker_conninfo=worker_conninfo)
    return ReportWorker(bus, queue, SqlReportSources(queue), renderer=RenderingProcess())


class ReportingSupervisor(ProjectionSupervisor):
    """The service's projections plus the report trigger, and the report worker.

    The API's lifespan starts and stops the supervisor; this one starts and stops the
    worker with it, so reports are made wherever the projections run. It takes the
    arguments of ``ProjectionSupervisor`` (the trigger is added to ``specs`` when missing),
    so code that rebuilds a supervisor from its type and settings keeps working.
    """

    def __init__(
        self,
        specs: Sequence[ProjectionSpec],
        env: Mapping[str, str],
        lock_conninfo: str,
        *,
        worker: ReportWorker | None = None,
    ) -> None:
        if REPORT_TRIGGERS not in specs:
            specs = (*specs, REPORT_TRIGGERS)
        super().__init__(specs, env, lock_conninfo)
        self.worker = worker

    @classmethod
    def around(cls, base: ProjectionSupervisor, worker: ReportWorker) -> ReportingSupervisor:
        return cls(base.specs, base.env, base.lock_conninfo, worker=worker)

    def start(self) -> None:
        super().start()
        if self.worker is not None:
            self.worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.worker is not None:
            self.worker.stop()
        super().stop(timeout)
