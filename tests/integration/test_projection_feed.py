"""One reading of each log per process feeds every projection it leads (ADR 0036): one
listening session, one reader per log, each view still applying its own events exactly once;
a view that fails or quarantines stops no other; a view led late catches up on its own and
then joins the shared reading."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, ClassVar

import psycopg
import pytest

from tests import waiting
from tests.helpers import system_context
from training.audit.views import AUDIT, AuditProjection, AuditView
from training.bootstrap import projection_supervisor
from training.core import log_feed
from training.core.bus import CommandBus
from training.core.projection_runner import ProjectionSupervisor, leader_lock_key
from training.core.views import ProjectionSpec
from training.infra.database import Database
from training.people.views import MEMBERS
from training.registry import PROJECTIONS
from training.tenancy.handlers import RegisterTenant
from training.tenancy.views import TENANCY, TenancyProjection, TenancyView

wait_until = partial(waiting.wait_until, timeout=60.0)


def register_many(bus: CommandBus, count: int, prefix: str) -> list[tuple[uuid.UUID, int]]:
    registered = []
    for n in range(count):
        slug = f"{prefix.lower()}-{n}-{uuid.uuid4().hex[:6]}"
        outcome = bus.execute(system_context(), RegisterTenant(slug, f"{prefix} {n}", 5))
        assert outcome.position is not None
        registered.append((outcome.result.tenant_id, outcome.position))
    return registered


def scalar(database: Database, query: str, *params: Any) -> Any:
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def names(database: Database, prefix: str) -> set[str]:
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT name FROM training.tenants WHERE name LIKE %s", (f"{prefix} %",)
        ).fetchall()
    return {str(row[0]) for row in rows}


def audited(database: Database, tenants: list[tuple[uuid.UUID, int]]) -> dict[uuid.UUID, int]:
    """How many audit rows each tenant has, and every notification id at most once (its key)."""
    ids = [tenant for tenant, _ in tenants]
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT tenant_id, count(*) FROM training.audit_log WHERE tenant_id = ANY(%s) "
            "GROUP BY tenant_id",
            (ids,),
        ).fetchall()
    return {row[0]: int(row[1]) for row in rows}


def caught_up(database: Database, *specs: ProjectionSpec) -> bool:
    return waiting.views_caught_up(database, [spec.info for spec in specs])


def listening_sessions(database: Database) -> int:
    return int(
        scalar(
            database,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query ILIKE 'LISTEN%%'",
        )
    )


def app_sessions(database: Database) -> int:
    return int(
        scalar(
            database,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND usename = 'training_app'",
        )
    )


@contextmanager
def supervising(database: Database, *specs: ProjectionSpec) -> Iterator[ProjectionSupervisor]:
    base = projection_supervisor(database)
    supervisor = ProjectionSupervisor(specs or base.specs, base.env, base.lock_conninfo)
    supervisor.start()
    try:
        yield supervisor
    finally:
        supervisor.stop()


def test_one_listening_session_and_one_reader_per_log_feed_every_view(
    database: Database, bus: CommandBus
) -> None:
    before = {"listening": listening_sessions(database), "sessions": app_sessions(database)}
    threads_before = {t.name for t in threading.enumerate()}
    with supervising(database) as supervisor:
        wait_until(lambda: len(supervisor.running()) == len(PROJECTIONS))
        register_many(bus, 150, "Shared")
        wait_until(lambda: caught_up(database, TENANCY, AUDIT, MEMBERS))
        wait_until(lambda: names(database, "Shared") == {f"Shared {n}" for n in range(150)})

        # One session listens for both logs (the training application's and the planning
        # process's), where each projection used to listen on its own.
        assert listening_sessions(database) - before["listening"] == 1
        # Per projection: its view's (or the planning process's) pooled connection, and now
        # and then a second one; plus the listener, the leader locks and a reader per log.
        # One runner each held about four per projection.
        added = app_sessions(database) - before["sessions"]
        assert added <= 2 * len(PROJECTIONS) + 4, added
        new_threads = [t.name for t in threading.enumerate() if t.name not in threads_before]
        assert sorted(n for n in new_threads if n.startswith("log-")) == [
            "log-feed-planning",
            "log-feed-training",
            "log-listener",
        ]
        # Every view of the training log took the registrations from the shared reading.
        for name in ("tenancy", "audit"):
            seat = supervisor.seat(name)
            assert seat is not None
            assert seat.shared > 0, name
        training = next(f for f in supervisor.feeds.values() if f.app_name == "training")
        # 150 registrations, several events each, in far fewer pages than one per view each.
        assert 0 < training.pages_read < 150 * 3


class StalledAudit(AuditProjection):
    """The audit view, as it behaves while its server refuses every write."""

    name = "audit"

    def process_event(self, event: Any, tracking: Any) -> None:
        raise psycopg.OperationalError("the audit view's connection was lost")


def test_a_view_that_keeps_failing_stops_no_other(database: Database, bus: CommandBus) -> None:
    stalled = ProjectionSpec(StalledAudit, AuditView)
    audit_before = scalar(database, "SELECT notification_id FROM training.audit_tracking")
    with supervising(database, TENANCY, stalled) as supervisor:
        registered = register_many(bus, 40, "Beside")
        wait_until(lambda: names(database, "Beside") == {f"Beside {n}" for n in range(40)})
        wait_until(lambda: supervisor.restarts["audit"] >= 2)
        assert supervisor.states()["audit"].last_error == "OperationalError"
        # The feed goes on for the healthy view: later events are applied too.
        later = register_many(bus, 5, "Still")
        wait_until(lambda: names(database, "Still") == {f"Still {n}" for n in range(5)})
        assert supervisor.states()["tenancy"].status == "running"
        assert supervisor.restarts["tenancy"] == 0
    assert scalar(database, "SELECT notification_id FROM training.audit_tracking") == audit_before
    assert registered[-1][1] < later[-1][1]

    # The audit view, healthy again, catches up with everything it missed, once.
    with supervising(database, AUDIT):
        wait_until(lambda: caught_up(database, AUDIT))
    rows = audited(database, registered + later)
    assert set(rows) == {tenant for tenant, _ in registered + later}


class PickyTenancy(TenancyProjection):
    """The tenancy view with a bug that only one tenant's data meets."""

    name = "tenancy"
    victim: ClassVar[str] = ""

    def process_event(self, event: Any, tracking: Any) -> None:
        if getattr(event, "name", None) == type(self).victim:
            msg = "a bug this tenant's name meets"
            raise ValueError(msg)
        super().process_event(event, tracking)


def test_a_view_that_quarantines_an_event_stops_no_other(
    database: Database, bus: CommandBus
) -> None:
    PickyTenancy.victim = "Picky 3"
    picky = ProjectionSpec(PickyTenancy, TenancyView)
    with supervising(database, picky, AUDIT) as supervisor:
        registered = register_many(bus, 10, "Picky")
        wait_until(lambda: caught_up(database, TENANCY, AUDIT))
        assert supervisor.restarts == {"tenancy": 0, "audit": 0}
    assert names(database, "Picky") == {f"Picky {n}" for n in range(10) if n != 3}
    held = scalar(
        database,
        "SELECT count(*) FROM training.projection_quarantine WHERE view_name = 'tenancy' "
        "AND tenant_id = %s AND resolved_at IS NULL",
        registered[3][0],
    )
    assert held >= 1
    # The audit view, fed by the same reading, recorded every tenant, the victim's too.
    assert set(audited(database, registered)) == {tenant for tenant, _ in registered}


@pytest.fixture
def small_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed that keeps 100 events: a view led late starts well behind what is kept."""
    monkeypatch.setattr(log_feed, "CAPACITY", 100)
    monkeypatch.setattr(log_feed, "AHEAD", 100)


@pytest.mark.usefixtures("small_feed")
def test_a_view_led_late_catches_up_on_its_own_then_joins_the_shared_reading(
    database: Database, bus: CommandBus
) -> None:
    # Another process leads the audit view for now.
    with psycopg.connect(database.app_url, autocommit=True) as elsewhere:
        elsewhere.execute("SELECT pg_advisory_lock(%s)", (leader_lock_key("audit"),))
        with supervising(database, TENANCY, AUDIT) as supervisor:
            wait_until(lambda: supervisor.states()["audit"].status == "standby")
            # Notified of each registration (else a page may hold them all, and be kept).
            wait_until(lambda: "training_events" in supervisor.listening())
            early = register_many(bus, 120, "Early")
            wait_until(lambda: names(database, "Early") == {f"Early {n}" for n in range(120)})
            assert not caught_up(database, AUDIT)

            elsewhere.execute("SELECT pg_advisory_unlock(%s)", (leader_lock_key("audit"),))
            wait_until(lambda: caught_up(database, AUDIT))
            seat = supervisor.seat("audit")
            assert seat is not None
            assert seat.alone > 0  # behind what the feed keeps: it read its own pages

            shared_before = seat.shared
            late = register_many(bus, 10, "Late")
            wait_until(lambda: caught_up(database, TENANCY, AUDIT))
            assert seat.shared > shared_before  # and now takes the shared reading
            assert supervisor.restarts == {"tenancy": 0, "audit": 0}
    assert set(audited(database, early + late)) == {tenant for tenant, _ in early + late}


def test_every_event_is_applied_once_across_a_restart(database: Database, bus: CommandBus) -> None:
    start = int(scalar(database, "SELECT max(notification_id) FROM training.training_events"))
    first = register_many(bus, 200, "Restart")
    with supervising(database, TENANCY, AUDIT, MEMBERS):
        # Stopped while catching up: some batches committed, some not begun.
        wait_until(
            lambda: (
                (scalar(database, "SELECT notification_id FROM training.audit_tracking") or 0)
                > start
            )
        )
    second = register_many(bus, 20, "Resumed")
    with supervising(database, TENANCY, AUDIT, MEMBERS):
        wait_until(lambda: caught_up(database, TENANCY, AUDIT, MEMBERS))
    assert names(database, "Restart") == {f"Restart {n}" for n in range(200)}
    assert names(database, "Resumed") == {f"Resumed {n}" for n in range(20)}
    tenants = [tenant for tenant, _ in first + second]
    # An event applied twice would have been refused (the views' keys), and quarantined.
    held = "SELECT count(*) FROM training.projection_quarantine WHERE tenant_id = ANY(%s)"
    assert scalar(database, held, tenants) == 0
    # The audit log's key is the event's position: one row per event, none missing.
    expected = scalar(
        database,
        "SELECT count(*) FROM training.training_events WHERE notification_id > %s "
        "AND topic = ANY(%s)",
        start,
        list(AUDIT.info.topics),
    )
    recorded = scalar(
        database, "SELECT count(*) FROM training.audit_log WHERE notification_id > %s", start
    )
    assert recorded == expected
