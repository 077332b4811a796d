"""The event store's connections prepare no statements (``training.infra.postgres``).

psycopg can deallocate a statement it has just prepared when a rollback's deallocation is
still pending, and then keeps using the name: the connection answers "prepared statement
does not exist" until it is recycled (a 500 under racing enrolments and deactivations,
``tests/api/test_enrolment_deactivation_race.py``). Without prepared statements there is
nothing to lose.
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresApplicationRecorder

from training.core.application import TrainingApplication


def test_the_event_stores_connections_prepare_nothing(app: TrainingApplication) -> None:
    recorder = app.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    with recorder.datastore.get_connection() as conn:
        assert conn.prepare_threshold is None
        # What the library asks of its inserts, twice: prepared at once, were it allowed.
        conn.execute("SELECT 1", prepare=True)
        conn.execute("SELECT 1", prepare=True)
        row = conn.execute("SELECT count(*) AS n FROM pg_prepared_statements").fetchone()
    assert row is not None
    assert row["n"] == 0
