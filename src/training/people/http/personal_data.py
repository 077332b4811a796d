"""A member's personal data over HTTP: erase it, or export everything held about them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.params import FromPath

from training.cohorts.views.cohorts import withdrawal_reasons_of_member
from training.core.access import Scope
from training.core.application import TrainingApplication
from training.core.http.commands import Commands, answer
from training.core.http.principal import Principal, requires_scope
from training.core.http.reads import Reads
from training.core.idempotency_store import IdempotencyStore
from training.people import views as queries
from training.people.handlers.export import export_member
from training.people.handlers.members import ErasePersonalData
from training.people.http.people import MemberOut, member_out
from training.people.views import MEMBERS
from training.planning.views.learning import learning_notes_of_member
from training.reviews.views import review_texts_of_member


class PersonalDataController(Controller):
    path = "/v1/members"
    tags = ["Members"]
    security = [{"bearer": []}]

    @delete(
        "/{member_id:uuid}/personal-data",
        guards=[requires_scope(Scope.PERSONAL_DATA)],
        operation_id="erasePersonalData",
        summary="Erase a member's name and email; history stays, shown as erased",
        description="Deletes everything held about the person beside the events (name, email, "
        "identity provider subject, free text of their reviews, deactivation, progress notes "
        "and withdrawals from cohorts) and every "
        "stored artefact naming them: their individual reports, the files of cohort reports "
        "printing their name (rendered again with '(erased)'), import files and stored "
        "responses mentioning them; their name and email are redacted from free text about "
        "others. Search by name or email no longer finds them.",
        status_code=200,
    )
    async def erase(
        self,
        commands: NamedDependency[Commands],
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        idempotency: NamedDependency[IdempotencyStore],
        member_id: FromPath[UUID],
    ) -> Response[MemberOut]:
        tenant_id = principal.tenant_id
        names: list[str] = []
        # Without a tenant the command refuses (403) before anything is erased.
        if tenant_id is not None:
            async with reads.session(primary=True) as conn:
                names = await queries.names_held(conn, member_id)
        outcome = await commands.run(ErasePersonalData(member_id))
        if tenant_id is not None:
            # Everything else that names them went in the erasure's own transaction.
            await idempotency.forget_mentions(tenant_id, names)
        body = member_out(outcome.result)
        return answer(outcome, body, version=body.version)

    @get(
        "/{member_id:uuid}/export",
        guards=[requires_scope(Scope.PERSONAL_DATA)],
        operation_id="exportMember",
        summary="Everything held about one member, as JSON",
    )
    async def export(
        self,
        app: NamedDependency[TrainingApplication],
        reads: NamedDependency[Reads],
        principal: NamedDependency[Principal],
        member_id: FromPath[UUID],
    ) -> Response[dict[str, Any]]:
        assert principal.tenant_id is not None
        history = await sync_to_thread(export_member, app, principal.tenant_id, member_id)
        await reads.after([MEMBERS.info])
        async with reads.session() as conn:
            record = await queries.get_member(conn, member_id)
            personal = await queries.personal_data_of(conn, member_id)
            texts = await review_texts_of_member(conn, member_id)
            notes = await learning_notes_of_member(conn, member_id)
            withdrawals = await withdrawal_reasons_of_member(conn, member_id)
        document = {
            "member_id": str(member_id),
            "exported_at": datetime.now().astimezone().isoformat(),
            "personal_data": personal,
            "review_texts": texts,
            "learning_notes": notes,
            "withdrawal_reasons": withdrawals,
            "profile": msgspec.to_builtins(record) if record else None,
            "history": history,
        }
        return Response(
            document,
            headers={
                "Content-Disposition": f'attachment; filename="member-{member_id}.json"',
                "Cache-Control": "no-store",
            },
        )


ROUTES = [PersonalDataController]
