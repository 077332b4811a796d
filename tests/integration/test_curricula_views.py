"""The curricula read model: rows match the aggregates, and row-level security shares the
catalogue with every tenant while keeping each tenant's curricula private."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
import pytest

from tests.helpers import system_context
from training.bootstrap import command_bus, training_application
from training.core.bus import CommandBus
from training.core.context import Actor, ActorKind, CommandContext
from training.curricula.domain import Curriculum, ModuleFormat, ModuleSpec
from training.curricula.handlers import (
    AddModule,
    CreateCurriculum,
    ForkCurriculum,
    PublishCurriculum,
    RemoveModule,
    RetireCurriculum,
    ReviseModule,
)
from training.infra.database import Database
from training.maintenance.rebuild import rebuild
from training.skills.domain import SkillTarget
from training.tenancy.handlers import RegisterTenant

TABLES = ("curricula", "curriculum_modules")
INSERT_CURRICULUM = (
    "INSERT INTO training.curricula (curriculum_id, tenant_id, title, description, status, "
    "has_unpublished_changes, module_count, version, created_at, updated_at) "
    "VALUES (%s, %s, 'x', '', 'active', false, 0, 1, now(), now())"
)


def spec(key: str, *prerequisites: str, title: str | None = None) -> ModuleSpec:
    return ModuleSpec(
        key=key,
        title=title or key.title(),
        description="",
        format=ModuleFormat.LAB,
        duration_minutes=45,
        targets=(SkillTarget("python", 3),),
        prerequisites=prerequisites,
    )


def tenant_context(tenant_id: uuid.UUID) -> CommandContext:
    return CommandContext(Actor(ActorKind.CLIENT, "tc_test"), "test", tenant_id)


@dataclass(frozen=True)
class World:
    tenant_a: uuid.UUID
    tenant_b: uuid.UUID
    catalogue: uuid.UUID
    fork_a: uuid.UUID
    private_b: uuid.UUID
    curricula: dict[uuid.UUID, Curriculum]


def make(bus: CommandBus, context: CommandContext, title: str, *modules: ModuleSpec) -> uuid.UUID:
    curriculum_id: uuid.UUID = bus.execute(
        context, CreateCurriculum(title, "")
    ).result.curriculum_id
    for module in modules:
        bus.execute(context, AddModule(curriculum_id, module))
    return curriculum_id


@pytest.fixture(scope="module")
def world(database: Database) -> World:
    app = training_application(database)
    bus = command_bus(app)
    try:
        a, b = (
            bus.execute(system_context(), RegisterTenant(slug, slug, 5)).result.tenant_id
            for slug in ("views-a", "views-b")
        )
        operator = system_context()
        catalogue = make(bus, operator, "Catalogue", spec("basics"), spec("advanced", "basics"))
        bus.execute(operator, PublishCurriculum(catalogue))
        fork_a = bus.execute(tenant_context(a), ForkCurriculum(catalogue, 1)).result.curriculum_id
        bus.execute(tenant_context(a), ReviseModule(fork_a, spec("basics", title="Our basics")))
        bus.execute(tenant_context(a), AddModule(fork_a, spec("extra", "advanced")))
        bus.execute(tenant_context(a), PublishCurriculum(fork_a))
        bus.execute(tenant_context(a), RemoveModule(fork_a, "extra"))
        private_b = make(bus, tenant_context(b), "Private", spec("secret"))
        bus.execute(tenant_context(b), PublishCurriculum(private_b))
        bus.execute(tenant_context(b), RetireCurriculum(private_b, "done"))
        ids = (catalogue, fork_a, private_b)
        curricula = {i: app.repository.get(i) for i in ids}
    finally:
        app.close()
    rebuild(database, "curricula", lambda done, total: None)
    return World(a, b, catalogue, fork_a, private_b, curricula)


def count(conn: psycopg.Connection, table: str, tenant_id: uuid.UUID | None) -> int:
    row = conn.execute(
        f"SELECT count(*) FROM training.{table} WHERE tenant_id IS NOT DISTINCT FROM %s",
        (tenant_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_rows_match_the_aggregates(database: Database, world: World) -> None:
    with psycopg.connect(database.admin_url) as conn:
        for curriculum_id, curriculum in world.curricula.items():
            row = conn.execute(
                "SELECT tenant_id, status, latest_version, has_unpublished_changes, "
                "module_count, version, forked_from, forked_version "
                "FROM training.curricula WHERE curriculum_id = %s",
                (curriculum_id,),
            ).fetchone()
            latest = curriculum.latest_version
            assert row == (
                curriculum.tenant_id,
                str(curriculum.status),
                latest.version if latest else None,
                curriculum.has_unpublished_changes,
                len(curriculum.draft),
                curriculum.version,
                curriculum.forked_from,
                curriculum.forked_version,
            )
            draft = conn.execute(
                "SELECT key, title FROM training.curriculum_modules "
                "WHERE curriculum_id = %s AND version = 0 ORDER BY key",
                (curriculum_id,),
            ).fetchall()
            assert draft == sorted((m.key, m.title) for m in curriculum.draft.values())
            for published in curriculum.versions:
                rows = conn.execute(
                    "SELECT key, position FROM training.curriculum_modules "
                    "WHERE curriculum_id = %s AND version = %s ORDER BY position",
                    (curriculum_id, published.version),
                ).fetchall()
                assert rows == [(m.key, n) for n, m in enumerate(published.modules, start=1)]
    fork = world.curricula[world.fork_a]
    assert fork.has_unpublished_changes  # "extra" was removed after version 1


def test_a_tenant_sees_its_own_and_the_catalogue_never_another_tenants(
    database: Database, world: World
) -> None:
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(world.tenant_a),))
        for table in TABLES:
            assert count(conn, table, world.tenant_b) == 0, table
            assert count(conn, table, world.tenant_a) > 0, table
            assert count(conn, table, None) > 0, table
        visible = conn.execute("SELECT curriculum_id FROM training.curricula").fetchall()
        assert set(visible) == {(world.catalogue,), (world.fork_a,)}
        private = conn.execute(
            "SELECT count(*) FROM training.curriculum_modules WHERE curriculum_id = %s",
            (world.private_b,),
        ).fetchone()
        assert private == (0,)


def test_without_a_tenant_nothing_is_visible(database: Database, world: World) -> None:
    with psycopg.connect(database.app_url) as conn:
        for table in TABLES:
            assert conn.execute(f"SELECT count(*) FROM training.{table}").fetchone() == (0,)
    with psycopg.connect(database.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM training.curricula").fetchone() == (3,)


def test_the_platform_sees_only_the_catalogue(database: Database, world: World) -> None:
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.platform', 'on', true)")
        for table in TABLES:
            tenants = conn.execute(f"SELECT DISTINCT tenant_id FROM training.{table}").fetchall()
            assert tenants == [(None,)], table


def test_a_tenant_cannot_write_the_catalogue_or_another_tenants_rows(
    database: Database, world: World
) -> None:
    with psycopg.connect(database.app_url) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(world.tenant_a),))
            for curriculum_id in (world.catalogue, world.private_b):
                changed = conn.execute(
                    "UPDATE training.curricula SET title = 'hijacked' WHERE curriculum_id = %s",
                    (curriculum_id,),
                )
                assert changed.rowcount == 0
                removed = conn.execute(
                    "DELETE FROM training.curriculum_modules WHERE curriculum_id = %s",
                    (curriculum_id,),
                )
                assert removed.rowcount == 0
        for owner in (None, world.tenant_b):
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(world.tenant_a),))
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(INSERT_CURRICULUM, (uuid.uuid4(), owner))
                raise psycopg.Rollback()
    with psycopg.connect(database.admin_url) as conn:
        titles = conn.execute("SELECT title FROM training.curricula").fetchall()
        assert ("hijacked",) not in titles
