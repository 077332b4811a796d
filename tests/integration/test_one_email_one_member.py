"""One email, one member of a tenant: the constraint, the migration that brings it, and the
group commit that keeps a conflict to the command that caused it."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from tests.conftest import drop_database
from training.core.access import Role
from training.core.bus import CommandBus, UnitOfWork
from training.core.context import Actor, ActorKind, CommandContext
from training.core.errors import AlreadyExists
from training.core.group_commit import _Save
from training.infra.database import Database, app_url_for, create_database, with_dbname
from training.infra.migrations import MIGRATIONS_DIR, migrate
from training.people.handlers.members import (
    RegisterMember,
    UpdateMember,
    register_member,
    update_member,
)
from training.tenancy.handlers import RegisterTenant

CONSTRAINT_MIGRATION = "0018_one_email_one_member.sql"


def tenant_context(bus: CommandBus) -> CommandContext:
    slug = f"uniq-{uuid.uuid4().hex[:8]}"
    platform = CommandContext.system("tests", request_id="t")
    tenant = bus.execute(platform, RegisterTenant(slug, slug, 100)).result
    return CommandContext(Actor(ActorKind.CLIENT, "tests"), "r", tenant.tenant_id)


def registration(external_id: str, email: str) -> RegisterMember:
    return RegisterMember(external_id, external_id.title(), email, (Role.ENGINEER,))


def test_a_taken_email_is_refused_whoever_holds_it(bus: CommandBus) -> None:
    context = tenant_context(bus)
    bus.execute(context, registration("E1", "Same@Example.test"))
    with pytest.raises(AlreadyExists) as raised:
        bus.execute(context, registration("E2", "same@example.test"))
    assert raised.value.field == "email"
    assert "same@example.test" not in raised.value.detail
    # Another tenant may have a member with the same email.
    bus.execute(tenant_context(bus), registration("E1", "same@example.test"))


def test_the_store_refuses_what_a_stale_check_let_through(bus: CommandBus) -> None:
    # Two commands checked before either saved (the race): the second save breaks the
    # constraint, and the bus answers as if the check had seen the first.
    context = tenant_context(bus)
    first, second = UnitOfWork(bus.app, context), UnitOfWork(bus.app, context)
    register_member(registration("R1", "race@example.test"), first)
    register_member(registration("R2", "race@example.test"), second)
    bus._commits.save(first.collect_stamped_events(), first.personal_data)
    with pytest.raises(IntegrityError):
        bus._commits.save(second.collect_stamped_events(), second.personal_data)


def test_a_group_that_breaks_the_constraint_fails_only_for_the_command_that_did(
    bus: CommandBus, database: Database
) -> None:
    # Registrations of one tenant share its seat roster, so they never share a group; a
    # registration and changes of other members' emails do.
    context = tenant_context(bus)
    first = bus.execute(context, registration("G1", "g1@example.test")).result
    second = bus.execute(context, registration("G2", "g2@example.test")).result
    works = [UnitOfWork(bus.app, context) for _ in range(3)]
    register_member(registration("G3", "group@example.test"), works[0])
    update_member(UpdateMember(first.member_id, email="group@example.test"), works[1])
    update_member(UpdateMember(second.member_id, email="other@example.test"), works[2])
    saves = [_Save(w.collect_stamped_events(), w.personal_data) for w in works]
    # Disjoint aggregates: the group commit would write these three together.
    touched = [save.aggregates for save in saves]
    assert sum(len(t) for t in touched) == len(frozenset().union(*touched))
    transactions = bus._commits.transactions
    bus._commits._write(saves)
    # One transaction for the group, which failed, then one per command.
    assert bus._commits.transactions == transactions + 4
    assert saves[0].error is None
    assert saves[0].position is not None
    assert isinstance(saves[1].error, IntegrityError)
    assert saves[2].error is None
    assert saves[2].position is not None
    with psycopg.connect(database.app_url) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(context.tenant_id),))
        emails = conn.execute("SELECT email FROM training.people ORDER BY email").fetchall()
    assert emails == [("g1@example.test",), ("group@example.test",), ("other@example.test",)]


# -- the migration that brings the constraint --------------------------------------------------


@pytest.fixture
def before_the_constraint(admin_server_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A database migrated up to the file before the constraint, and the full directory."""
    older = tmp_path / "older"
    older.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if path.name < CONSTRAINT_MIGRATION:
            shutil.copy(path, older / path.name)
    name = f"training_uniq_{uuid.uuid4().hex[:8]}"
    create_database(admin_server_url, name)
    url = with_dbname(admin_server_url, name)
    migrate(url, directory=older)
    try:
        yield url, older
    finally:
        drop_database(admin_server_url, Database(url, app_url_for(url, None)))


def test_the_migration_keeps_the_member_in_force_and_lists_the_others(
    before_the_constraint: tuple[str, Path],
) -> None:
    url, _ = before_the_constraint
    tenant, other_tenant = uuid.uuid4(), uuid.uuid4()
    old, kept, gone, single, elsewhere = (uuid.uuid4() for _ in range(5))
    members = [
        # (member, tenant, email, status, registered)
        (old, tenant, "dup@example.test", "deactivated", "2025-01-01"),
        (kept, tenant, "Dup@Example.test", "active", "2026-01-01"),
        (gone, tenant, "dup@example.test", "active", "2026-02-01"),
        (single, tenant, "one@example.test", "active", "2024-01-01"),
        (elsewhere, other_tenant, "dup@example.test", "active", "2020-01-01"),
    ]
    with psycopg.connect(url) as conn:
        for member_id, tenant_id, email, status, registered in members:
            conn.execute(
                "INSERT INTO training.people (member_id, tenant_id, display_name, email, "
                "updated_at) VALUES (%s, %s, 'Someone', %s, now())",
                (member_id, tenant_id, email),
            )
            conn.execute(
                "INSERT INTO training.members (member_id, tenant_id, external_id, roles, "
                "status, version, created_at, updated_at) VALUES (%s, %s, %s, '{engineer}', "
                "%s, 1, %s, %s)",
                (member_id, tenant_id, member_id.hex, status, registered, registered),
            )

    assert migrate(url) != []  # the constraint's file and those after it

    with psycopg.connect(url) as conn:
        emails = dict(conn.execute("SELECT member_id, email FROM training.people").fetchall())
        listed = conn.execute(
            "SELECT member_id, tenant_id, kept_member_id FROM training.email_conflicts "
            "ORDER BY member_id"
        ).fetchall()
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO training.people (member_id, tenant_id, display_name, email, "
                "updated_at) VALUES (%s, %s, 'Again', 'one@example.test', now())",
                (uuid.uuid4(), tenant),
            )
    # The active member registered first keeps the email (stored in lower case); the others
    # lose it and are listed; another tenant's member with the same email is untouched.
    assert emails == {
        old: None,
        kept: "dup@example.test",
        gone: None,
        single: "one@example.test",
        elsewhere: "dup@example.test",
    }
    assert listed == sorted([(old, tenant, kept), (gone, tenant, kept)])
