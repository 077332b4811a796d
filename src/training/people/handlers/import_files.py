"""Reading a file of members to import, CSV or JSON, and checking every row on its own.

A file is text in UTF-8: anything else is refused when it is sent (``check_encoding``), not
when its job runs.

Row numbers are those a person sees: in a CSV file the header is row 1 and the first
member is row 2, as a spreadsheet numbers them (a member is one row, even with a line break
inside a quoted value); in JSON the first member is row 1 (``FIRST_MEMBER_ROW``, which the
job's report states).

Every row is checked with the rules of a single registration; a file may not repeat an
external id or an email, and its rows are ordered so a manager comes before the people who
report to them. An external id is never an email address (ADR 0020).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from training.core.access import Role
from training.core.errors import DomainError, RuleViolated
from training.people.domain.members import (
    check_display_name,
    check_email,
    check_external_id,
    check_optional_text,
    check_roles,
)
from training.people.handlers.imports import MemberRow

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


class ImportFileError(Exception):
    """The file as a whole cannot be read (wrong format, no header, too many rows)."""


def _parsed_roles(value: Any) -> tuple[Role, ...]:
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


def _text_field(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise RuleViolated("expected text", field=name)
    text = str(value).strip()
    return text or None


def validate_record(row: int, record: dict[str, Any]) -> MemberRow:
    """One row, checked with the same rules as a single registration."""
    external_id = _text_field(record, "external_id")
    if external_id is None:
        raise RuleViolated("an external id is required", field="external_id")
    display_name = _text_field(record, "display_name")
    if display_name is None:
        raise RuleViolated("a display name is required", field="display_name")
    email = _text_field(record, "email")
    manager = _text_field(record, "manager_external_id")
    return MemberRow(
        row=row,
        external_id=check_external_id(external_id),
        display_name=check_display_name(display_name),
        email=check_email(email) if email else None,
        roles=_parsed_roles(record.get("roles")),
        manager_external_id=check_external_id(manager, "manager_external_id") if manager else None,
        team=check_optional_text(_text_field(record, "team"), "team"),
        job_title=check_optional_text(_text_field(record, "job_title"), "job_title"),
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
