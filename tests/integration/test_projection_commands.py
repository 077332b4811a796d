"""`training projections rebuild|retry`: one clear line, the right exit status, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

from tests.conftest import TEST_SECRET_KEY
from tests.helpers import system_context
from training.bootstrap import projection_supervisor
from training.core.access import Role
from training.core.application import TrainingApplication
from training.core.projection_runner import ProjectionSupervisor, maintenance_lock_key
from training.infra.database import Database
from training.people.domain.members import Member
from training.people.views import MEMBERS
from training.tenancy.handlers import RegisterTenant

TRAINING = str(Path(sys.executable).parent / "training")
KNOWN = (
    "tenancy, members, skills, curricula, cohorts, audit, assessments, reviews, planning, tracks"
)


def run(database: Database | None, *args: str) -> tuple[int, list[str], list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(TRAINING_SECRET_KEY=TEST_SECRET_KEY, TRAINING_LOG_LEVEL="warning")
    if database is not None:
        env["DATABASE_URL"] = database.admin_url
    done = subprocess.run(
        [TRAINING, "projections", *args], env=env, capture_output=True, text=True, timeout=120
    )
    # The progress bar redraws one line with carriage returns.
    stderr = [line.rsplit("\r", 1)[-1] for line in done.stderr.splitlines() if line.strip()]
    return done.returncode, done.stdout.splitlines(), stderr


def test_an_unknown_name_is_refused_in_one_line() -> None:
    # Refused before any database is touched (none is configured here).
    assert run(None, "rebuild", "membres") == (
        2,
        [],
        [f"training projections rebuild: no projection named 'membres'; known: {KNOWN}"],
    )
    assert run(None, "retry", "membres") == (
        2,
        [],
        [
            "training projections retry: no projection named 'membres'; "
            f"known: {KNOWN}, report_triggers"
        ],
    )


def test_a_policy_is_refused_in_one_line(database: Database) -> None:
    code, out, err = run(database, "rebuild", "planning")
    assert (code, out) == (1, [])
    assert err == [
        "training projections rebuild: refused: planning owns its events (an event-sourced "
        "policy); it is not rebuilt from scratch"
    ]
    # The planning process quarantines what it cannot apply (ADR 0026): it can be retried.
    assert run(database, "retry", "planning") == (
        0,
        ["planning: nothing to retry; no event of the tenants asked for is held back"],
        [],
    )


def test_a_rebuild_is_refused_while_the_runner_runs(database: Database) -> None:
    base = projection_supervisor(database)
    supervisor = ProjectionSupervisor([MEMBERS], base.env, base.lock_conninfo)
    supervisor.start()
    try:
        deadline = time.monotonic() + 30
        while supervisor.running() != ["members"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        code, out, err = run(database, "rebuild", "members")
    finally:
        supervisor.stop()
    assert (code, out) == (1, [])
    assert err == [
        "training projections rebuild: refused: the members projection is running elsewhere "
        "(serve or worker); stop it first"
    ]


def test_a_retry_is_refused_while_a_rebuild_or_retry_runs(database: Database) -> None:
    with psycopg.connect(database.app_url, autocommit=True) as other:
        # The lock a rebuild or another retry of the members view holds while it works.
        other.execute("SELECT pg_advisory_lock(%s)", (maintenance_lock_key("members"),))
        code, out, err = run(database, "retry", "members")
    assert (code, out) == (1, [])
    assert err == [
        "training projections retry: refused: a retry or rebuild of the members projection is "
        "running; wait for it to finish"
    ]


def test_a_rebuild_quarantines_what_it_cannot_apply_and_a_retry_applies_it(
    database: Database, app: TrainingApplication
) -> None:
    # The write-model race: two members of one tenant registered with the same external id.
    tenant_id = app_tenant(app)
    twins = [
        Member.register(
            tenant_id=tenant_id,
            external_id="R-1",
            roles=(Role.ENGINEER,),
            member_id=uuid.uuid4(),
        )
        for _ in range(2)
    ]
    for twin in twins:
        app.save(twin)
    later = Member.register(tenant_id=tenant_id, external_id="R-2", roles=(Role.ENGINEER,))
    [recording] = app.save(later)

    code, out, err = run(database, "rebuild", "members")
    assert (code, out) == (0, [])
    assert err[-1].startswith("rebuilt members from ")
    assert err[-1].endswith(
        "; set aside 1 event(s) it could not apply and parked 1 behind them, for 1 tenant(s): "
        "fix the cause, then run `training projections retry members`"
    )
    assert "Traceback" not in "\n".join(err)
    assert held(database) == [
        (twins[1].id, "failed"),
        (later.id, "parked"),
    ]
    assert tracking_of(app, database) == recording.notification.id

    # Retried before the fix: it fails again, says so, and nothing moves.
    code, out, err = run(database, "retry", "members", "--tenant", str(tenant_id))
    assert code == 1
    assert out == [
        f"members: re-applied 0 held event(s) in order for 1 tenant(s); still degraded: tenant "
        f"{tenant_id}, whose event {notification_of(app, twins[1].id)} "
        "(training.people:Member.Registered) failed again with psycopg.errors.UniqueViolation: "
        "SQLSTATE 23505, table training.members, constraint members_tenant_id_external_id_key"
    ]
    [alert] = [json.loads(line) for line in err]
    assert (alert["event"], alert["level"], alert["projection"], alert["tenant_id"]) == (
        "projection.event_quarantined",
        "error",
        "members",
        str(tenant_id),
    )

    # The fix: the first twin's row moves aside, then the retry applies both held events.
    with psycopg.connect(database.admin_url) as conn:
        conn.execute(
            "UPDATE training.members SET external_id = 'R-1-first' WHERE member_id = %s",
            (twins[0].id,),
        )
    code, out, err = run(database, "retry", "members", "--tenant", str(tenant_id))
    assert (code, out, err) == (
        0,
        [
            "members: re-applied 2 held event(s) in order for 1 tenant(s); "
            "members is healthy again for every tenant"
        ],
        [],
    )
    assert held(database) == []
    code, out, err = run(database, "retry", "members")
    assert (code, out, err) == (
        0,
        ["members: nothing to retry; no event of the tenants asked for is held back"],
        [],
    )
    code, out, err = run(database, "retry", "members", "--tenant", "not-a-tenant")
    assert code == 2
    assert err[-1] == (
        "training projections retry: error: argument --tenant: invalid tenant id value: "
        "'not-a-tenant'"
    )


def app_tenant(app: TrainingApplication) -> uuid.UUID:
    from training.bootstrap import command_bus

    slug = f"r-{uuid.uuid4().hex[:8]}"
    outcome = command_bus(app).execute(system_context(), RegisterTenant(slug, slug, 50))
    tenant_id: uuid.UUID = outcome.result.tenant_id
    return tenant_id


def held(database: Database) -> list[tuple[uuid.UUID, str]]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT originator_id, status FROM training.projection_quarantine "
            "WHERE view_name = 'members' AND resolved_at IS NULL ORDER BY notification_id"
        ).fetchall()
    return [(row[0], row[1]) for row in rows]


def notification_of(app: TrainingApplication, member_id: uuid.UUID) -> int:
    for notification in app.recorder.select_notifications(start=1, limit=10_000):
        if notification.originator_id == member_id:
            return notification.id
    raise LookupError(member_id)


def tracking_of(app: TrainingApplication, database: Database) -> int:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(
            "SELECT notification_id FROM training.members_tracking WHERE application_name = %s",
            (app.name,),
        ).fetchone()
    assert row is not None
    return int(row[0])
