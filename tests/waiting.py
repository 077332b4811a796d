"""Waiting, in tests, for what runs in the background: projection runners, workers, renders.

A timeout here is a deadline for waiting, never a measurement: it only decides how long a
broken test hangs before it fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import sql

from training.core.read_store import ViewInfo
from training.infra.database import Database

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None], timeout: float, what: str = "", *, poll: float = 0.05
) -> T:
    """Calls ``check`` every ``poll`` seconds until it answers something true, and answers
    that."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}" if what else "timed out"
        time.sleep(poll)


def views_caught_up(database: Database, views: list[ViewInfo]) -> bool:
    """Each view has tracked every stored event of its topics."""
    with psycopg.connect(database.admin_url) as conn:
        for view in views:
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM {} e WHERE e.topic = ANY(%s) AND e.notification_id > "
                    "coalesce((SELECT notification_id FROM {} WHERE application_name = %s), 0)"
                ).format(view.events_table, view.tracking_table),
                (list(view.topics), view.upstream),
            ).fetchone()
            if row is None or row[0]:
                return False
    return True
