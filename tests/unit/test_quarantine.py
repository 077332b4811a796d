"""Which errors quarantine an event, and what is written down about them."""

from __future__ import annotations

import psycopg
from eventsourcing.persistence import IntegrityError, OperationalError
from psycopg_pool import PoolTimeout

from training.core.quarantine import Failure, is_transient


def raised(error: Exception, cause: BaseException | None = None) -> Exception:
    try:
        raise error from cause
    except Exception as caught:
        return caught


def test_lost_connections_and_contention_restart_the_runner_instead() -> None:
    assert is_transient(raised(OperationalError("closed"), psycopg.OperationalError("closed")))
    assert is_transient(psycopg.errors.DeadlockDetected())
    assert is_transient(psycopg.errors.SerializationFailure())
    assert is_transient(psycopg.errors.AdminShutdown())
    assert is_transient(psycopg.errors.LockNotAvailable())
    assert is_transient(PoolTimeout("no connection"))
    assert is_transient(MemoryError())


def test_bad_data_and_bugs_are_quarantined() -> None:
    assert not is_transient(raised(IntegrityError("dup"), psycopg.errors.UniqueViolation()))
    assert not is_transient(psycopg.errors.InvalidTextRepresentation())
    assert not is_transient(psycopg.errors.InsufficientPrivilege())  # a row-level check
    assert not is_transient(psycopg.errors.UndefinedColumn())
    assert not is_transient(KeyError("member"))
    assert not is_transient(AssertionError("tracks always belong to a tenant"))


def test_what_is_recorded_quotes_no_value() -> None:
    database = Failure.of(
        raised(
            IntegrityError("Key (external_id)=(ada@example.com) already exists"),
            psycopg.errors.UniqueViolation("Key (external_id)=(ada@example.com) already exists"),
        )
    )
    assert database == Failure("psycopg.errors.UniqueViolation", "SQLSTATE 23505")
    other = Failure.of(raised(ValueError("ada@example.com is not a valid id")))
    assert other.error_type == "ValueError"
    assert other.message.startswith("ValueError raised at test_quarantine.py:")
    assert other.message.endswith(" in raised")
    assert "ada" not in str(other)
