"""Bulk import of members from CSV or JSON, run as a job whose progress can be polled.

Policy: **partial import with a report**. Every row is validated on its own; a valid row is
imported (created, or updated when its external id exists), an invalid row is skipped and
reported with its row number, field and message. Writes are batched (``BATCH_SIZE`` rows per
transaction, never one per row), and rows are ordered so a manager is always written before
the people who report to them. Re-running the same file is safe: rows that changed nothing
are counted as unchanged.

Row numbers are those a person sees: in a CSV file the header is row 1 and the first
member is row 2, as a spreadsheet numbers them (a member is one row, even with a line break
inside a quoted value); in JSON the first member is row 1 (``FIRST_MEMBER_ROW``, which the
job's report states).

A file is text in UTF-8: anything else is refused when it is sent (``check_encoding``), not
when its job runs.

An email belongs to one member of a tenant: a row whose email another member holds, or
another row of the file repeats, is reported and skipped (the rest of its batch lands). An
external id is never an email address (ADR 0020).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from uuid import UUID

from training.core.access import Role
from training.core.bus import CommandBus, Handler, UnitOfWork
from training.core.context import CommandContext
from training.core.errors import DomainError, RuleViolated
from training.core.personal_data import PersonalData
from training.people.domain.external_ids import ExternalIds
from training.people.domain.members import (
    Member,
    check_display_name,
    check_email,
    check_external_id,
    check_optional_text,
    check_roles,
)
from training.people.handlers.members import (
    EMAIL_TAKEN,
    check_manager,
    external_ids_to_write,
    personal_data,
    reissued_id,
)
from training.people.queries import seat_roster
from training.tenancy.domain import Tenant

BATCH_SIZE = 500
MAX_ROWS = 50_000
COLUMNS = (
    "external_id",
    "display_name",
    "email",
    "roles",
    "manager_external_id",
    "team",
    "job_title",
)
REQUIRED_COLUMNS = ("external_id", "display_name")
# The number a file's first member has in the report, by format: after the header row in
# CSV, as a spreadsheet counts; the first item of the list in JSON.
FIRST_MEMBER_ROW = {"csv": 2, "json": 1}
ROLE_SEPARATORS = (";", "|", ",", " ")


@dataclass(frozen=True)
class RowError:
    row: int
    field: str | None
    message: str


@dataclass(frozen=True)
class MemberRow:
    row: int
    external_id: str
    display_name: str
    email: str | None
    roles: tuple[Role, ...]
    manager_external_id: str | None
    team: str | None
    job_title: str | None
    # Set by the job before writing: whether the stored name or email differs (None: new).
    personal_data_changed: bool | None = None


class ImportFileError(Exception):
    """The file as a whole cannot be read (wrong format, no header, too many rows)."""


def _roles(value: Any) -> tuple[Role, ...]:
    if value is None or value == "" or value == []:
        return (Role.ENGINEER,)
    names: list[str]
    if isinstance(value, list):
        names = [str(v) for v in value]
    else:
        text = str(value)
        for separator in ROLE_SEPARATORS:
            text = text.replace(separator, " ")
        names = text.split()
    try:
        return check_roles(tuple(Role(name.strip().lower()) for name in names))
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise RuleViolated(f"roles are among: {allowed}", field="roles") from None


def _text(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise RuleViolated("expected text", field=name)
    text = str(value).strip()
    return text or None


def validate_record(row: int, record: dict[str, Any]) -> MemberRow:
    """One row, checked with the same rules as a single registration."""
    external_id = _text(record, "external_id")
    if external_id is None:
        raise RuleViolated("an external id is required", field="external_id")
    display_name = _text(record, "display_name")
    if display_name is None:
        raise RuleViolated("a display name is required", field="display_name")
    email = _text(record, "email")
    manager = _text(record, "manager_external_id")
    return MemberRow(
        row=row,
        external_id=check_external_id(external_id),
        display_name=check_display_name(display_name),
        email=check_email(email) if email else None,
        roles=_roles(record.get("roles")),
        manager_external_id=check_external_id(manager, "manager_external_id") if manager else None,
        team=check_optional_text(_text(record, "team"), "team"),
        job_title=check_optional_text(_text(record, "job_title"), "job_title"),
    )


def check_encoding(content: bytes, file_format: str) -> None:
    """Refuses a file that is not UTF-8 (the whole file: it is at most the import's size
    limit), naming the format."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as error:
        name = "CSV file" if file_format == "csv" else "JSON document"
        raise ImportFileError(
            f"the {name} is not UTF-8 (byte {error.start + 1} is not valid UTF-8); "
            "save it as UTF-8 and send it again"
        ) from None


def read_records(content: bytes, file_format: str) -> list[tuple[int, dict[str, Any]]]:
    if file_format == "csv":
        return _csv_records(content)
    if file_format == "json":
        return _json_records(content)
    raise ImportFileError(f"unknown format {file_format!r}: send CSV or JSON")


def _csv_records(content: bytes) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError("the CSV file is not UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    if not header:
        raise ImportFileError("the CSV file has no header row")
    unknown = sorted(set(header) - set(COLUMNS))
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if unknown or missing:
        problems = []
        if missing:
            problems.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown columns: {', '.join(unknown)}")
        raise ImportFileError(f"{'; '.join(problems)} (columns: {', '.join(COLUMNS)})")
    reader.fieldnames = header
    records = []
    try:
        for index, record in enumerate(reader, start=FIRST_MEMBER_ROW["csv"]):
            if index - 1 > MAX_ROWS:
                raise ImportFileError(f"an import has at most {MAX_ROWS} rows")
            # DictReader files values beyond the header under the key None.
            raw: dict[Any, Any] = dict(record)
            if raw.get(None):
                raw["__extra__"] = raw.pop(None)
            records.append((index, raw))
    except csv.Error as error:
        raise ImportFileError(f"the CSV file cannot be read: {error}") from None
    return records


def _json_records(content: bytes) -> list[tuple[int, dict[str, Any]]]:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: values nested deeper than the parser follows.
        raise ImportFileError("the JSON document cannot be parsed") from None
    items = document.get("members") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise ImportFileError('send a list of members, or {"members": [...]}')
    if len(items) > MAX_ROWS:
        raise ImportFileError(f"an import has at most {MAX_ROWS} rows")
    return [
        (index, item if isinstance(item, dict) else {"__invalid__": item})
        for index, item in enumerate(items, start=FIRST_MEMBER_ROW["json"])
    ]


@dataclass
class Validation:
    rows: list[MemberRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def validate(records: Sequence[tuple[int, dict[str, Any]]]) -> Validation:
    """Checks every row, refuses repeated external ids and emails, orders managers before
    reports."""
    result = Validation()
    seen: dict[str, int] = {}
    emails: dict[str, int] = {}
    for row, record in records:
        if "__invalid__" in record:
            result.errors.append(RowError(row, None, "expected an object with member fields"))
            continue
        if "__extra__" in record:
            result.errors.append(RowError(row, None, "the row has more values than the header"))
            continue
        unknown = sorted(set(record) - set(COLUMNS))
        if unknown:
            result.errors.append(RowError(row, unknown[0], "unknown field"))
            continue
        try:
            member = validate_record(row, record)
        except DomainError as error:
            result.errors.append(RowError(row, error.field, error.detail))
            continue
        if member.external_id in seen:
            result.errors.append(
                RowError(row, "external_id", f"repeats row {seen[member.external_id]}")
            )
            continue
        if member.email is not None and member.email in emails:
            result.errors.append(RowError(row, "email", f"repeats row {emails[member.email]}"))
            continue
        seen[member.external_id] = row
        if member.email is not None:
            emails[member.email] = row
        result.rows.append(member)
    ordered, looping = _managers_first(result.rows)
    result.rows = ordered
    result.errors.extend(
        RowError(r.row, "manager_external_id", "the reporting line loops back to this row")
        for r in looping
    )
    result.errors.sort(key=lambda e: e.row)
    return result


def _managers_first(rows: list[MemberRow]) -> tuple[list[MemberRow], list[MemberRow]]:
    """Rows ordered so each row's manager (if in the file) comes first; loops are returned."""
    by_id = {row.external_id: row for row in rows}
    ordered: list[MemberRow] = []
    state: dict[str, str] = {}  # "visiting" or "done"
    looping: list[MemberRow] = []
    for start in rows:
        path: list[MemberRow] = []
        current: MemberRow | None = start
        while current is not None and current.external_id not in state:
            state[current.external_id] = "visiting"
            path.append(current)
            manager = current.manager_external_id
            current = by_id.get(manager) if manager else None
        in_loop = current is not None and state.get(current.external_id) == "visiting"
        loop_start = path.index(current) if in_loop and current in path else len(path)
        for member in path[loop_start:]:
            looping.append(member)
        for member in reversed(path[:loop_start]):
            if in_loop:
                looping.append(member)  # reports into a loop: their line cannot be resolved
            else:
                ordered.append(member)
        for member in path:
            state[member.external_id] = "done"
    looping_ids = {m.external_id for m in looping}
    return [m for m in ordered if m.external_id not in looping_ids], sorted(
        looping, key=lambda m: m.row
    )


# The command one batch runs: a single transaction for up to BATCH_SIZE rows.


@dataclass(frozen=True)
class ImportMembers:
    rows: tuple[MemberRow, ...]


@dataclass(frozen=True)
class RowOutcome:
    row: int
    result: str  # created, updated, unchanged or failed
    field: str | None = None
    message: str | None = None


def import_members(command: ImportMembers, uow: UnitOfWork) -> tuple[RowOutcome, ...]:
    tenant_id = uow.require_tenant()
    tenant = uow.get(Tenant, tenant_id)
    roster = seat_roster(uow, tenant_id)
    free = roster.free(tenant.seat_limit)
    outcomes = []
    # The batch's new members claim their external ids in one event, written with them:
    # a change of another member to one of these ids, racing the batch, conflicts with it.
    keys = external_ids_to_write(uow, tenant_id)
    created: dict[str, UUID] = {}
    # Who holds the rows' emails now: one read per batch.
    holders = uow.email_holders([row.email for row in command.rows if row.email])
    for row in command.rows:
        member_id = keys.lead(row.external_id) or reissued_id(tenant_id, row.external_id, keys)
        if row.email is not None and holders.get(row.email, member_id) != member_id:
            outcomes.append(RowOutcome(row.row, "failed", "email", EMAIL_TAKEN))
            continue
        exists = uow.exists(member_id)
        if not exists and len(created) >= free:
            outcomes.append(
                RowOutcome(row.row, "failed", None, "the tenant's seat limit is reached")
            )
            continue
        try:
            outcome = _apply_row(uow, tenant_id, row, member_id, exists, keys, created)
        except DomainError as error:
            uow.discard(member_id)
            outcomes.append(RowOutcome(row.row, "failed", error.field, error.detail))
            continue
        if outcome.result == "created":
            created[row.external_id] = member_id
        outcomes.append(outcome)
    keys.claim(created)
    roster.take(tuple(created.values()), tenant.seat_limit)
    return tuple(outcomes)


def _apply_row(
    uow: UnitOfWork,
    tenant_id: UUID,
    row: MemberRow,
    member_id: UUID,
    exists: bool,
    keys: ExternalIds,
    created: dict[str, UUID],
) -> RowOutcome:
    """``created``: the members this batch registered so far (their claims are written with
    the batch), by external id."""
    manager_id = None
    if row.manager_external_id:
        manager_id = created.get(row.manager_external_id) or keys.lead(row.manager_external_id)
        if manager_id is None:
            raise RuleViolated(
                "no member of this tenant has that external id", field="manager_external_id"
            )
    if manager_id is not None:
        try:
            check_manager(uow, member_id, manager_id)
        except RuleViolated as error:
            raise RuleViolated(error.detail, field="manager_external_id") from None
    data = personal_data(row.display_name, row.email)
    if not exists:
        member = Member.register(
            tenant_id=tenant_id,
            member_id=member_id,
            external_id=row.external_id,
            roles=row.roles,
            manager_id=manager_id,
            team=row.team,
            job_title=row.job_title,
        )
        uow.add(member)
        uow.keep_personal_data(member, data)
        return RowOutcome(row.row, "created")
    member = uow.get(Member, member_id)
    before = member.version
    member.change_roles(row.roles)
    member.change_manager(manager_id)
    member.change_position(row.team, row.job_title)
    if row.personal_data_changed is not False:
        member.note_personal_data_updated(("display_name", "email"))
        uow.keep_personal_data(member, data)
    return RowOutcome(row.row, "updated" if member.version != before else "unchanged")


HANDLERS: dict[type, Handler] = {ImportMembers: import_members}


# The job around the batches.


class ImportJobs(Protocol):
    """Where import jobs and their progress are kept (infra.import_jobs implements it)."""

    def start(self, tenant_id: UUID, import_id: UUID) -> tuple[str, bytes, str, str] | None: ...

    def progress(self, tenant_id: UUID, import_id: UUID, progress: Progress) -> None: ...

    def finish(
        self, tenant_id: UUID, import_id: UUID, progress: Progress, detail: str | None
    ) -> None: ...


class PeopleDirectory(Protocol):
    """Reads the stored personal data, so an unchanged row records no change."""

    def current(self, tenant_id: UUID, member_ids: Iterable[UUID]) -> dict[UUID, PersonalData]: ...


@dataclass
class Progress:
    total_rows: int = 0
    processed_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    # The position of the last batch that wrote something: reading at it shows the members.
    position: int | None = None

    def record(self, outcomes: Iterable[RowOutcome]) -> None:
        for outcome in outcomes:
            self.processed_rows += 1
            if outcome.result == "failed":
                self.failed += 1
                self.errors.append(RowError(outcome.row, outcome.field, outcome.message or ""))
            else:
                setattr(self, outcome.result, getattr(self, outcome.result) + 1)


def run_import(
    bus: CommandBus,
    jobs: ImportJobs,
    directory: PeopleDirectory,
    context_for: Callable[[str, str, UUID], CommandContext],
    tenant_id: UUID,
    import_id: UUID,
    should_stop: Callable[[], bool] = lambda: False,
    pace: Callable[[int | None, int], int] = lambda position, rows: BATCH_SIZE,
    first_batch: int = BATCH_SIZE,
) -> Progress | None:
    """Runs one job to the end (or until ``should_stop``); returns its final progress.

    ``pace`` gets each batch's position and size once it is written, may hold the job until
    the views show it, and answers how many rows the next batch may hold (ADR 0028).
    """
    claimed = jobs.start(tenant_id, import_id)
    if claimed is None:
        return None
    file_format, content, actor, request_id = claimed
    progress = Progress()
    try:
        validation = validate(read_records(content, file_format))
    except ImportFileError as error:
        jobs.finish(tenant_id, import_id, progress, str(error))
        return progress
    progress.total_rows = len(validation.rows) + len(validation.errors)
    progress.processed_rows = len(validation.errors)
    progress.failed = len(validation.errors)
    progress.errors = list(validation.errors)
    jobs.progress(tenant_id, import_id, progress)
    context = context_for(actor, request_id, tenant_id)
    start, size = 0, max(1, min(BATCH_SIZE, first_batch))
    while start < len(validation.rows):
        if should_stop():
            return progress  # stays "running"; resumed from the start next time
        rows = validation.rows[start : start + size]
        start += len(rows)
        batch = _with_personal_data_changes(rows, directory, tenant_id)
        outcome = bus.execute(context, ImportMembers(tuple(batch)))
        progress.record(outcome.result)
        if outcome.position is not None:
            progress.position = outcome.position
        jobs.progress(tenant_id, import_id, progress)
        size = max(1, min(BATCH_SIZE, pace(outcome.position, len(rows))))
    progress.errors.sort(key=lambda e: e.row)
    jobs.finish(tenant_id, import_id, progress, None)
    return progress


def _with_personal_data_changes(
    rows: Sequence[MemberRow], directory: PeopleDirectory, tenant_id: UUID
) -> list[MemberRow]:
    ids = {Member.create_id(tenant_id, r.external_id): r for r in rows}
    stored = directory.current(tenant_id, ids)
    marked = []
    for member_id, row in ids.items():
        known = stored.get(member_id)
        changed = None if known is None else known != PersonalData(row.display_name, row.email)
        marked.append(replace(row, personal_data_changed=changed))
    return marked
