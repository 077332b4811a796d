"""The demo tenant a newcomer meets on first start."""

from __future__ import annotations

import psycopg
import pytest
from litestar.testing import TestClient

from tests.conftest import TEST_ISSUER, TEST_SECRET_KEY, make_settings
from training.app import create_app
from training.bootstrap import build_services, command_bus, training_application
from training.cli import main
from training.core.access import Role
from training.demo.sign_in import demo_member_token, demo_people, find_demo_person
from training.demo.world import DemoLoaded, load_demo
from training.infra.database import Database
from training.maintenance.rebuild import rebuild
from training.registry import PROJECTIONS


@pytest.fixture(scope="module")
def demo(database: Database) -> DemoLoaded:
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
    return loaded


def test_the_demo_tenant_has_people_skills_profiles_and_curricula(
    database: Database, demo: DemoLoaded
) -> None:
    loaded = demo
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


def test_a_newcomer_signs_in_as_a_demo_engineer_without_an_identity_provider(
    database: Database, demo: DemoLoaded
) -> None:
    settings = make_settings()
    people = demo_people(database)
    engineer = next(p for p in people if Role.ENGINEER in p.roles)
    assert people[0] == engineer  # engineers are listed first: they are who one tries first
    assert find_demo_person(people, engineer.email.upper()) == engineer
    assert find_demo_person(people, "nobody@acme.example") is None
    token = demo_member_token(database, settings, engineer.member_id)

    services = build_services(settings, database, run_projections=False)
    try:
        with TestClient(app=create_app(services), base_url=TEST_ISSUER) as client:
            headers = {"Authorization": f"Bearer {token}"}
            assessments = client.get("/v1/me/assessments", headers=headers)
            assert assessments.status_code == 200, assessments.text
            cohorts = client.get("/v1/me/cohorts", headers=headers)
            assert cohorts.status_code == 200, cohorts.text
            # A member, not a client: HR's operations stay closed to an engineer.
            refused = client.get("/v1/members", headers=headers)
            assert refused.status_code == 403
            forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
            assert (
                client.get(
                    "/v1/me/cohorts", headers={"Authorization": f"Bearer {forged}"}
                ).status_code
                == 401
            )
    finally:
        services.app.close()


def test_demo_sign_in_lists_the_people_and_prints_a_token_for_one(
    database: Database,
    demo: DemoLoaded,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database.admin_url)
    monkeypatch.setenv("TRAINING_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("TRAINING_PUBLIC_URL", TEST_ISSUER)
    assert main(["demo", "--sign-in"]) == 0
    listed = capsys.readouterr()
    assert listed.out == ""
    engineer = demo_people(database)[0]
    assert engineer.email in listed.err

    assert main(["demo", "--sign-in", engineer.email]) == 0
    signed_in = capsys.readouterr()
    token = signed_in.out.strip()
    assert token.count(".") == 2
    assert engineer.name in signed_in.err
    assert "/v1/me/track" in signed_in.err

    assert main(["demo", "--sign-in", "nobody@acme.example"]) == 1
    assert "no active person" in capsys.readouterr().err
