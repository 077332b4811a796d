"""Reads that each import batch, and each wait for a view, make: their plans probe an index
per key (per followed topic), so their cost follows the batch or the window of the log they
ask about, never the tenant's size or the log's length (ADR 0040).

Each test fills a table the way a large tenant does, lets PostgreSQL analyse it, and looks at
the plan it chooses for the statement as the service runs it.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from training.core.application import TrainingApplication
from training.core.read_store import ViewInfo, _last_pending_query
from training.core.tenant_scope import scope_to
from training.infra.database import Database
from training.infra.recorder import EMAIL_HOLDERS
from training.people.handlers.import_jobs import PEOPLE_BY_ID
from training.registry import PROJECTIONS

FILLER_EVENTS = 30_000
FILLER_PEOPLE = 20_000
BATCH = 500
# The topics of an import, in the proportions it writes them.
IMPORT_TOPICS = (
    "training.people:Member.Registered",
    "training.people:ExternalIdKey.Claimed",
)


def scans_of(plan: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    found = [plan] if plan.get("Relation Name") == relation else []
    for child in plan.get("Plans", []):
        found += scans_of(child, relation)
    return found


def plan_of(conn: psycopg.Connection[Any], query: sql.Composable | str, params: Any) -> Any:
    statement = sql.SQL("EXPLAIN (FORMAT JSON) ") + (
        sql.SQL(query) if isinstance(query, str) else query  # type: ignore[arg-type]
    )
    row = conn.execute(statement, params).fetchone()
    assert row is not None
    return row[0][0]["Plan"]


@pytest.fixture(scope="module")
def tenant_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture(scope="module")
def filled(database: Database, tenant_id: uuid.UUID) -> Database:
    """The log holds a large tenant's import; the people table its members (and another
    tenant's, a tenth as many)."""
    other = uuid.uuid4()
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO training.training_events (originator_id, originator_version, topic, "
            "state) SELECT gen_random_uuid(), 1, (%s::text[])[1 + n %% 2], "
            'convert_to(format(\'{"tenant_id":"%%s","n":%%s}\', %s::text, n), \'UTF8\') '
            "FROM generate_series(1, %s) AS n",
            (list(IMPORT_TOPICS), str(tenant_id), FILLER_EVENTS),
        )
        conn.execute(
            "INSERT INTO training.people (member_id, tenant_id, display_name, email, updated_at) "
            "SELECT gen_random_uuid(), CASE WHEN n %% 10 = 0 THEN %s ELSE %s END, "
            "'Person ' || n, 'person' || n || '@example.test', now() "
            "FROM generate_series(1, %s) AS n",
            (other, tenant_id, FILLER_PEOPLE),
        )
        conn.execute("ANALYZE training.training_events")
        conn.execute("ANALYZE training.people")
    return database


def training_views() -> list[ViewInfo]:
    return [spec.info for spec in PROJECTIONS if spec.upstream is TrainingApplication]


def test_the_last_pending_event_is_found_topic_by_topic_in_the_topic_index(
    filled: Database, tenant_id: uuid.UUID
) -> None:
    # A view that follows none of the import's topics has tracked nothing: it asks over the
    # whole log. Walking the log backwards by id, testing each event's topic, costs as much
    # as the log is long; the (topic, notification_id) index answers per topic at once.
    with psycopg.connect(filled.admin_url) as conn:
        head = conn.execute("SELECT max(notification_id) FROM training.training_events")
        upto = int(head.fetchone()[0])  # type: ignore[index]
        for view in training_views():
            plan = plan_of(conn, *_last_pending_query(view, 0, upto, tenant_id))
            scans = scans_of(plan, "training_events")
            assert scans, view.name
            for scan in scans:
                assert scan["Node Type"] == "Index Scan", (view.name, scan["Node Type"])
                assert scan["Index Name"] == "training_events_topic_notification_id", view.name


def test_the_last_pending_event_is_the_tenants_or_the_platforms(
    filled: Database, tenant_id: uuid.UUID
) -> None:
    topic = "tests:Pending.Checked"
    view = ViewInfo("checked", (topic, "tests:Pending.Never"))
    other = uuid.uuid4()
    with psycopg.connect(filled.admin_url) as conn:

        def append(state: str) -> int:
            row = conn.execute(
                "INSERT INTO training.training_events (originator_id, originator_version, "
                "topic, state) VALUES (gen_random_uuid(), 1, %s, convert_to(%s, 'UTF8')) "
                "RETURNING notification_id",
                (topic, state),
            ).fetchone()
            assert row is not None
            return int(row[0])

        def last(after: int, upto: int, tenant: uuid.UUID | None) -> int | None:
            row = conn.execute(*_last_pending_query(view, after, upto, tenant)).fetchone()
            assert row is not None
            return None if row[0] is None else int(row[0])

        mine = append(f'{{"tenant_id":"{tenant_id}"}}')
        platform = append('{"tenant_id":null}')
        theirs = append(f'{{"tenant_id":"{other}"}}')
        assert last(0, theirs, tenant_id) == platform
        assert last(0, platform - 1, tenant_id) == mine
        assert last(0, theirs, other) == theirs
        assert last(0, theirs, None) == theirs
        assert last(mine, platform - 1, tenant_id) is None
        assert last(theirs, theirs, tenant_id) is None


def test_a_batch_of_emails_is_looked_up_one_index_probe_each(
    filled: Database, tenant_id: uuid.UUID
) -> None:
    emails = [f"person{n}@example.test" for n in range(1, BATCH + 1)]
    with psycopg.connect(filled.app_url) as conn, conn.transaction():
        scope_to(conn, tenant_id)
        for scan in scans_of(plan_of(conn, EMAIL_HOLDERS, (emails, tenant_id)), "people"):
            assert scan["Node Type"] == "Index Scan"
            assert scan["Index Name"] == "people_email_in_tenant"
        held = dict(conn.execute(EMAIL_HOLDERS, (emails, tenant_id)).fetchall())
        unknown = conn.execute(EMAIL_HOLDERS, (["nobody@example.test"], tenant_id)).fetchall()
    # Every tenth person belongs to the other tenant: not this tenant's holders.
    assert set(held) == {e for n, e in enumerate(emails, start=1) if n % 10}
    assert unknown == []


def test_a_batch_of_members_personal_data_is_read_one_index_probe_each(
    filled: Database, tenant_id: uuid.UUID
) -> None:
    with psycopg.connect(filled.app_url) as conn, conn.transaction():
        scope_to(conn, tenant_id)
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT member_id FROM training.people ORDER BY email LIMIT %s", (BATCH,)
            )
        ]
        wanted = [*ids, uuid.uuid4()]
        for scan in scans_of(plan_of(conn, PEOPLE_BY_ID, (wanted,)), "people"):
            assert scan["Node Type"] == "Index Scan"
            assert scan["Index Name"] == "people_pkey"
        found = conn.execute(PEOPLE_BY_ID, (wanted,)).fetchall()
    assert sorted(row[0] for row in found) == sorted(ids)
