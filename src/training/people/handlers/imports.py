"""Bulk import of members: the command one batch of rows runs, in one transaction.

Policy: **partial import with a report**. Every row is validated on its own; a valid row is
imported (created, or updated when its external id exists), an invalid row is skipped and
reported with its row number, field and message. Writes are batched (``BATCH_SIZE`` rows per
transaction, never one per row), and rows are ordered so a manager is always written before
the people who report to them. Re-running the same file is safe: rows that changed nothing
are counted as unchanged.

An email belongs to one member of a tenant: a row whose email another member holds, or
another row of the file repeats, is reported and skipped (the rest of its batch lands).

Reading and checking the file is ``import_files``; the job around the batches, whose
progress can be polled, is ``import_runner``.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from training.core.access import Role
from training.core.bus import Handler, UnitOfWork
from training.core.errors import DomainError, RuleViolated
from training.people.domain.external_ids import ExternalIdKey
from training.people.domain.members import Member
from training.people.handlers.members import (
    EMAIL_TAKEN,
    assign_external_id,
    check_manager,
    checked_personal_data,
    external_id_keys,
    lead_of,
    members_loaded,
    reissued_id,
)
from training.people.queries import seat_roster
from training.tenancy.domain import Tenant

BATCH_SIZE = 500


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
    # The keys of the external ids the rows name, one read per batch. Each new member's
    # claim is written on its id's key with it: a change of another member to one of these
    # ids, racing the batch, conflicts with it.
    named = [row.external_id for row in command.rows]
    named += [row.manager_external_id for row in command.rows if row.manager_external_id]
    keys = external_id_keys(uow, tenant_id, named)
    created: dict[str, UUID] = {}
    # Who holds the rows' emails now: one read per batch.
    holders = uow.email_holders([row.email for row in command.rows if row.email])
    # The rows' members that exist already, one read per batch: those rows update them.
    leads = [lead_of(tenant_id, row.external_id, keys.get(row.external_id)) for row in command.rows]
    existing = members_loaded(uow, [lead for lead in leads if lead is not None])
    for row, lead in zip(command.rows, leads, strict=True):
        member_id = lead or reissued_id(tenant_id, row.external_id, keys.get(row.external_id))
        if row.email is not None and holders.get(row.email, member_id) != member_id:
            outcomes.append(RowOutcome(row.row, "failed", "email", EMAIL_TAKEN))
            continue
        # A row repeating an external id of the file updates the member created above.
        exists = member_id in existing or member_id in created.values()
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
    for external_id, member_id in created.items():
        assign_external_id(uow, tenant_id, external_id, member_id, keys.get(external_id))
    roster.take(tuple(created.values()), tenant.seat_limit)
    return tuple(outcomes)


def _apply_row(
    uow: UnitOfWork,
    tenant_id: UUID,
    row: MemberRow,
    member_id: UUID,
    exists: bool,
    keys: dict[str, ExternalIdKey],
    created: dict[str, UUID],
) -> RowOutcome:
    """``created``: the members this batch registered so far (their claims are written with
    the batch), by external id."""
    manager_id = None
    if row.manager_external_id:
        manager = row.manager_external_id
        manager_id = created.get(manager) or lead_of(tenant_id, manager, keys.get(manager))
        if manager_id is None:
            raise RuleViolated(
                "no member of this tenant has that external id", field="manager_external_id"
            )
    if manager_id is not None:
        try:
            check_manager(uow, member_id, manager_id)
        except RuleViolated as error:
            raise RuleViolated(error.detail, field="manager_external_id") from None
    data = checked_personal_data(row.display_name, row.email)
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
