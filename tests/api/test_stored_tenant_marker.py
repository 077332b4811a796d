"""What the read-your-writes waits rely on to tell one tenant's events from another's.

The waits find a tenant's pending events by ``"tenant_id":"<id>"`` in their stored state,
without decoding them (ADR 0028). Every event of a world with something of every context,
and every event the planning process wrote for it, must show it.
"""

from __future__ import annotations

from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from litestar.testing import TestClient
from psycopg import sql

from tests.api.worlds import build_world
from training.bootstrap import Services
from training.core.read_store import tenant_marker


def test_every_tenant_event_stores_its_tenant_as_the_waits_look_for_it(
    client: TestClient[Any], services: Services
) -> None:
    world = build_world(client, services)
    # A re-plan, so that the planning process has events too.
    headers = world.callers["client"].headers
    review = world.callers["client"].known["review_id"][0]
    finalised = client.post(f"/v1/reviews/{review}/finalise", json={}, headers=headers)
    assert finalised.status_code == 200, finalised.text
    member = world.callers["client"].known["member_id"][0]
    position = finalised.headers["training-position"]
    track = client.get(
        f"/v1/members/{member}/track", headers={**headers, "Training-Position": position}
    )
    assert track.status_code == 200, track.text

    with psycopg.connect(services.database.admin_url) as conn:
        stored = [
            (table, *row)
            for table in ("training_events", "planning_events")
            for row in conn.execute(
                sql.SQL(
                    "SELECT originator_id, originator_version, topic, state FROM training.{}"
                ).format(sql.Identifier(table))
            ).fetchall()
        ]
    kinds: set[tuple[str, str]] = set()
    for table, originator_id, version, topic, state in stored:
        event = services.app.mapper.to_domain_event(
            StoredEvent(originator_id, version, topic, bytes(state))
        )
        tenant_id = getattr(event, "tenant_id", None)
        if tenant_id is not None:
            assert tenant_marker(tenant_id) in bytes(state), (table, topic)
            kinds.add((table, topic))
    assert len(kinds) >= 25, sorted(kinds)  # many kinds of events, not a handful
    assert any(table == "planning_events" for table, _ in kinds), sorted(kinds)
