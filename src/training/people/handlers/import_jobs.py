"""Import jobs in ``training.member_imports``: created by the API, advanced by the runner."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
import psycopg
from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from training.core.pagination import TIMESTAMP, UUID_KEY, Page, decode_cursor, page_of
from training.core.personal_data import PersonalData
from training.core.tenant_scope import tenant_transaction
from training.infra.database import worker_url_for
from training.people.handlers.import_files import FIRST_MEMBER_ROW
from training.people.handlers.import_runner import Progress

# Only the first errors are kept per job: enough to fix a file, bounded for a huge bad one.
MAX_REPORTED_ERRORS = 5000


ROW_NUMBER = (
    "The row as a person counts it in the file: in CSV, as a spreadsheet numbers rows, the "
    "header is row 1 and the first member row 2 (a member is one row even when a quoted "
    "value holds a line break); in JSON, the first member of the list is row 1. The "
    "import's `first_member_row` says which."
)
FIRST_MEMBER_ROW_DESCRIPTION = (
    "The row number the report gives the file's first member: 2 in CSV (the header is row "
    "1, as in a spreadsheet), 1 in JSON."
)
POSITION_DESCRIPTION = (
    "The `Training-Position` of the import's last batch that wrote members (null while none "
    "did). Send it with a query to read every member the import wrote so far; a completed "
    "import also answers it in the `Training-Position` header."
)


class RowProblem(msgspec.Struct):
    row: Annotated[int, msgspec.Meta(description=ROW_NUMBER)]
    field: str | None
    message: str


class ImportRecord(msgspec.Struct, kw_only=True):
    import_id: UUID
    status: str
    format: str
    first_member_row: Annotated[int, msgspec.Meta(description=FIRST_MEMBER_ROW_DESCRIPTION)]
    position: Annotated[int | None, msgspec.Meta(description=POSITION_DESCRIPTION)]
    total_rows: int | None
    processed_rows: int
    created: int
    updated: int
    unchanged: int
    failed: int
    errors: list[RowProblem]
    detail: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


EMPTY_ERRORS = "'[]'::jsonb AS errors"
# How the file's rows are numbered follows from its format (FIRST_MEMBER_ROW).
FIRST_ROW = (
    "CASE format "
    + " ".join(f"WHEN '{name}' THEN {row}" for name, row in FIRST_MEMBER_ROW.items())
    + " END AS first_member_row"
)
COLUMNS = (
    f"import_id, status, format, {FIRST_ROW}, position, total_rows, processed_rows, created, "
    "updated, unchanged, failed, errors, detail, created_at, started_at, finished_at"
)


class ImportJobStore:
    def __init__(self, conninfo: str, *, worker_conninfo: str | None = None) -> None:
        self.pool = ConnectionPool(conninfo, min_size=1, max_size=3, open=False, timeout=5.0)
        # The worker role sees which jobs of every tenant are unfinished (never their content);
        # the platform's sessions see no tenant's imports.
        self.worker_conninfo = worker_conninfo or worker_url_for(conninfo)

    def open(self) -> None:
        self.pool.open(wait=True, timeout=10.0)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def _scoped(self, tenant_id: UUID | None) -> Iterator[Connection[Any]]:
        """A transaction scoped to ``tenant_id``, or, when None, a transaction of the worker
        role across tenants (once, when the runner starts: no pool is kept for it)."""
        if tenant_id is None:
            with psycopg.connect(self.worker_conninfo) as conn, conn.transaction():
                yield conn
            return
        with tenant_transaction(self.pool, tenant_id) as conn:
            yield conn

    def create(
        self, tenant_id: UUID, file_format: str, content: bytes, actor: str, request_id: str
    ) -> UUID:
        import_id = uuid.uuid4()
        with self._scoped(tenant_id) as conn:
            conn.execute(
                "INSERT INTO training.member_imports (import_id, tenant_id, status, format, "
                "content, requested_by, request_id) VALUES (%s, %s, 'queued', %s, %s, %s, %s)",
                (import_id, tenant_id, file_format, content, actor, request_id),
            )
        return import_id

    def pending(self) -> list[tuple[UUID, UUID]]:
        """(tenant, import) of every job a previous process queued or left running."""
        with self._scoped(None) as conn:
            rows = conn.execute(
                "SELECT tenant_id, import_id FROM training.member_imports "
                "WHERE status IN ('queued', 'running') ORDER BY created_at"
            ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def start(self, tenant_id: UUID, import_id: UUID) -> tuple[str, bytes, str, str] | None:
        with self._scoped(tenant_id) as conn:
            row = conn.execute(
                "UPDATE training.member_imports SET status = 'running', started_at = now(), "
                "processed_rows = 0, created = 0, updated = 0, unchanged = 0, failed = 0, "
                "errors = '[]', position = NULL "
                "WHERE import_id = %s AND status IN ('queued', 'running') "
                "RETURNING format, content, requested_by, request_id",
                (import_id,),
            ).fetchone()
        if row is None:
            return None
        return str(row[0]), bytes(row[1]), str(row[2]), str(row[3])

    def progress(self, tenant_id: UUID, import_id: UUID, progress: Progress) -> None:
        with self._scoped(tenant_id) as conn:
            conn.execute(
                "UPDATE training.member_imports SET total_rows = %s, processed_rows = %s, "
                "created = %s, updated = %s, unchanged = %s, failed = %s, errors = %s, "
                "position = %s WHERE import_id = %s AND status = 'running'",
                (*_progress_columns(progress), import_id),
            )

    def finish(
        self, tenant_id: UUID, import_id: UUID, progress: Progress, detail: str | None
    ) -> None:
        status = "failed" if detail else "completed"
        with self._scoped(tenant_id) as conn:
            conn.execute(
                "UPDATE training.member_imports SET total_rows = %s, processed_rows = %s, "
                "created = %s, updated = %s, unchanged = %s, failed = %s, errors = %s, "
                "position = %s, status = %s, detail = %s, finished_at = now(), content = NULL "
                # An erasure may have stopped the job (its file named the person): it stays so.
                "WHERE import_id = %s AND status = 'running'",
                (*_progress_columns(progress), status, detail, import_id),
            )


def _progress_columns(progress: Progress) -> tuple[Any, ...]:
    errors = [
        {"row": e.row, "field": e.field, "message": e.message}
        for e in progress.errors[:MAX_REPORTED_ERRORS]
    ]
    return (
        progress.total_rows,
        progress.processed_rows,
        progress.created,
        progress.updated,
        progress.unchanged,
        progress.failed,
        Jsonb(errors),
        progress.position,
    )


# The stored name and email of each of a batch's members: one probe of the primary key per
# member (ADR 0040). Asked as ``member_id = ANY(...)``, the planner may read the whole table.
PEOPLE_BY_ID = (
    "SELECT person.member_id, person.display_name, person.email "
    "FROM unnest(%s::uuid[]) AS wanted(member_id) "
    "CROSS JOIN LATERAL (SELECT member_id, display_name, email FROM training.people "
    "WHERE member_id = wanted.member_id LIMIT 1) AS person"
)


class SqlPeopleDirectory:
    def __init__(self, store: ImportJobStore) -> None:
        self.store = store

    def current(self, tenant_id: UUID, member_ids: Iterable[UUID]) -> dict[UUID, PersonalData]:
        with self.store._scoped(tenant_id) as conn:
            rows = conn.execute(PEOPLE_BY_ID, (list(member_ids),)).fetchall()
        return {row[0]: PersonalData(row[1], row[2]) for row in rows}


async def get_import(conn: AsyncConnection[Any], import_id: UUID) -> ImportRecord | None:
    async with conn.cursor(row_factory=class_row(ImportRecord)) as cur:
        await cur.execute(
            f"SELECT {COLUMNS} FROM training.member_imports WHERE import_id = %s", (import_id,)
        )
        row = await cur.fetchone()
    if row is not None:
        row.errors = msgspec.convert(row.errors, list[RowProblem])
    return row


async def list_imports(
    conn: AsyncConnection[Any], *, limit: int, cursor: str | None
) -> Page[ImportRecord]:
    after = decode_cursor(cursor, TIMESTAMP, UUID_KEY) if cursor else None
    async with conn.cursor(row_factory=class_row(ImportRecord)) as cur:
        await cur.execute(
            # Lists leave the (possibly long) error report out; the job's own page has it.
            f"SELECT {COLUMNS.replace('errors', EMPTY_ERRORS)} "
            "FROM training.member_imports "
            "WHERE (%(at)s::timestamptz IS NULL OR (created_at, import_id) < "
            "(%(at)s::timestamptz, %(id)s::uuid)) ORDER BY created_at DESC, import_id DESC "
            "LIMIT %(limit)s",
            {
                "at": after[0] if after else None,
                "id": after[1] if after else None,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return page_of(rows, limit, lambda r: [r.created_at.isoformat(), str(r.import_id)])
