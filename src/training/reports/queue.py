"""The report worker's queue: the ``reports`` table, leased one report at a time.

A claim leases exactly one report to the worker's database session: a session-level advisory
lock on the report (``LEASE_SPACE``, the hash of its id), taken on a connection the queue
keeps for nothing else. Workers in several processes skip the reports leased in ``pg_locks``;
a report whose worker died (killed, crashed, its connection lost) is free again as soon as
PostgreSQL ends that session, not after a timeout. Every write that ends an attempt (the
file, a failure, a retry) happens only while the lease is still held (``LEASE_HELD``) and then
releases it. ``claimed_until`` is now only "not before": a report waiting for its data or
retried after an error. Reports people asked for (priority 0) go before the automatic ones of
re-plans (priority 1): a curriculum release re-plans every track of a tenant at once.
``NOTIFY training_reports`` wakes idle workers when a report is queued; they poll every few
seconds as well.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
import structlog
from psycopg import Connection
from psycopg_pool import ConnectionPool

from training.core.tenant_scope import tenant_transaction
from training.infra.database import worker_url_for
from training.reports.domain.requests import ReportKind
from training.reports.views import CHANNEL, NOTIFY
from training.reports.worker import Built, QueuedReport

log = structlog.get_logger(__name__)


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
        with tenant_transaction(self.pool, tenant_id) as conn:
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
