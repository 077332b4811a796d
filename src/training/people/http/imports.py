"""Member imports over HTTP: send a file, follow its job, read its report of bad rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, HTTPException
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import FromPath

from training.core.access import Scope
from training.core.errors import NotFound
from training.core.http.bodies import unreadable_body
from training.core.http.commands import Commands
from training.core.http.params import POSITION_HEADER, Cursor, Limit
from training.core.http.principal import Principal, requires_scope
from training.core.http.reads import Reads
from training.core.pagination import DEFAULT_LIMIT
from training.people.handlers import import_jobs as jobs
from training.people.handlers.import_files import ImportFileError, check_encoding
from training.people.handlers.import_jobs import ImportJobStore
from training.people.handlers.import_runner import ImportRunner

MAX_IMPORT_BYTES = 20 * 1024 * 1024
FORMATS = {"text/csv": "csv", "application/csv": "csv", "application/json": "json"}


class ImportAccepted(msgspec.Struct):
    import_id: UUID
    status: str
    status_url: str


class ImportPage(msgspec.Struct):
    items: list[jobs.ImportRecord]
    next_cursor: str | None


async def start_import(
    commands: Commands,
    principal: Principal,
    import_jobs: ImportJobStore,
    import_runner: ImportRunner,
    file_format: str,
    content: bytes,
) -> UUID:
    """Queues ``content`` (a file of ``file_format``) as an import job run as the caller, once
    its size and encoding are checked; the API and the web app both send files here."""
    if len(content) > MAX_IMPORT_BYTES:
        limit = MAX_IMPORT_BYTES // (1024 * 1024)
        raise HTTPException(status_code=413, detail=f"an upload has at most {limit} MiB")
    if not content.strip():
        raise ClientException(detail="the upload is empty")
    try:
        check_encoding(content, file_format)
    except ImportFileError as error:
        raise unreadable_body(str(error)) from None
    assert principal.tenant_id is not None
    # The job's batches run later as this caller, in this request: its command context.
    caller = commands.context
    import_id = await sync_to_thread(
        import_jobs.create,
        principal.tenant_id,
        file_format,
        content,
        str(caller.actor),
        caller.request_id,
    )
    import_runner.submit(principal.tenant_id, import_id)
    return import_id


@dataclass
class AnswersImportPosition(Operation):
    """``getImport`` in the OpenAPI document: a completed import answers its position."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.headers = {
                **(ok.headers or {}),
                POSITION_HEADER: OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
                    description="A completed import's `position`: send it with a query to read "
                    "the members the import wrote.",
                ),
            }


class ImportController(Controller):
    path = "/v1/member-imports"
    tags = ["Members"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="importMembers",
        summary="Import members from CSV or JSON (runs as a job)",
        status_code=202,
        description=(
            "Send `text/csv` (header row: external_id, display_name, email, roles, "
            "manager_external_id, team, job_title; roles separated by `;`) or "
            '`application/json` (`{"members": [...]}`), in UTF-8 (anything else is a 400). '
            "Valid rows are imported, invalid rows are reported with their row number, field "
            "and message (partial import): in CSV the header is row 1 and the first member "
            "row 2, as a spreadsheet counts; in JSON the first member is row 1. Poll the job's "
            "`status_url` for progress; once it is completed, its `position` reads the "
            "imported members."
        ),
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        commands: NamedDependency[Commands],
        principal: NamedDependency[Principal],
        import_jobs: NamedDependency[ImportJobStore],
        import_runner: NamedDependency[ImportRunner],
    ) -> Response[ImportAccepted]:
        # The request itself: its content type and raw body are the file.
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in FORMATS:
            raise HTTPException(status_code=415, detail="send text/csv or application/json")
        content = await request.body()
        import_id = await start_import(
            commands, principal, import_jobs, import_runner, FORMATS[content_type], content
        )
        url = f"/v1/member-imports/{import_id}"
        return Response(
            ImportAccepted(import_id, "queued", url), status_code=202, headers={"Location": url}
        )

    @get(
        "/",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="listImports",
        summary="Recent imports, newest first",
    )
    async def list_imports(
        self, reads: NamedDependency[Reads], limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> ImportPage:
        # Jobs are written by the import runner, not a view: there is nothing to wait for, and
        # they are read where they are written (a replica may not have replayed them yet).
        async with reads.session(primary=True) as conn:
            page = await jobs.list_imports(conn, limit=limit, cursor=cursor)
        return ImportPage(page.items, page.next_cursor)

    @get(
        "/{import_id:uuid}",
        guards=[requires_scope(Scope.MEMBERS_WRITE)],
        operation_id="getImport",
        summary="An import's progress and its report of bad rows",
        operation_class=AnswersImportPosition,
    )
    async def get_import(
        self, reads: NamedDependency[Reads], import_id: FromPath[UUID]
    ) -> Response[jobs.ImportRecord]:
        async with reads.session(primary=True) as conn:
            record = await jobs.get_import(conn, import_id)
        if record is None:
            raise NotFound(f"import {import_id} not found")
        # Not a command's answer: the position of the job's last batch, to read its members.
        headers = {}
        if record.status == "completed" and record.position is not None:
            headers[POSITION_HEADER] = str(record.position)
        return Response(record, headers=headers)


ROUTES = [ImportController]
