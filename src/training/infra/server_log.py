"""What the embedded PostgreSQL writes to its own log: never a row's values.

By default PostgreSQL's log quotes the values of the row an error is about: a unique
violation's ``DETAIL`` line reads ``Key (tenant_id, email)=(…, ann@example.com) already
exists`` (the email race of ADR 0020 is decided there), and ``STATEMENT`` lines may carry
literal values. That log is a file beside the data, outside erasure's reach. So the embedded
server logs errors tersely (no ``DETAIL``, ``HINT``, ``QUERY`` or ``CONTEXT``) and never the
statement that failed. An external server is configured by its operator (README).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

# Server settings (postgresql.auto.conf, kept across restarts) and the values they take.
NO_ROW_VALUES = {
    "log_error_verbosity": "terse",
    "log_min_error_statement": "panic",
}


def keep_row_values_out_of_the_log(admin_url: str) -> None:
    """Sets ``NO_ROW_VALUES`` on the server (as its superuser) unless they are set already,
    and makes the server read them at once."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        changed = False
        for name, value in NO_ROW_VALUES.items():
            row = conn.execute(
                "SELECT setting FROM pg_settings WHERE name = %s", (name,)
            ).fetchone()
            if row is None or row[0] != value:
                # ALTER SYSTEM takes no parameters: the name and value are composed as SQL.
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
                changed = True
        if changed:
            conn.execute("SELECT pg_reload_conf()")
