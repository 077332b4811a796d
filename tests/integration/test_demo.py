"""The demo tenant a newcomer meets on first start."""

from __future__ import annotations

import psycopg

from training.bootstrap import command_bus, training_application
from training.demo import load_demo
from training.infra.database import Database
from training.projections.rebuild import rebuild
from training.projections.registry import PROJECTIONS


def test_the_demo_tenant_has_people_skills_profiles_and_curricula(database: Database) -> None:
    app = training_application(database)
    try:
        bus = command_bus(app)
        loaded = load_demo(bus)
        assert loaded is not None
        assert load_demo(bus) is None  # a second start leaves it as it is
    finally:
        app.close()
    for spec in PROJECTIONS:
        if not spec.is_policy:
            rebuild(database, spec.name, lambda done, total: None)
    with psycopg.connect(database.app_url) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(loaded.tenant_id),))

        def count(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row else 0

        assert count("SELECT count(*) FROM training.members WHERE status = 'active'") >= 15
        assert count("SELECT count(*) FROM training.members WHERE manager_id IS NOT NULL") >= 10
        assert count("SELECT count(*) FROM training.skills") >= 40
        assert count("SELECT count(*) FROM training.role_profiles") >= 3
        own = "tenant_id IS NOT NULL"
        assert (
            count(f"SELECT count(*) FROM training.curricula WHERE {own} AND latest_version = 1")
            >= 3
        )
        assert (
            count(f"SELECT count(*) FROM training.curriculum_modules WHERE {own} AND version = 1")
            >= 30
        )
        assert count("SELECT count(*) FROM training.curricula WHERE tenant_id IS NULL") >= 3
