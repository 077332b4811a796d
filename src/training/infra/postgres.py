"""The library's PostgreSQL persistence, with psycopg's prepared statements switched off.

psycopg prepares a statement it runs often (or is asked to, as the library's inserts are)
under a name, and after a rollback it deallocates every name of the session. When that
deallocation is still pending as a connection next prepares a statement, it runs just after
the new statement is prepared and removes it from the session, while psycopg keeps using its
name: every later use on that connection fails with ``prepared statement "_pg3_N" does not
exist`` until the pool recycles the connection. Enrolments racing deactivations met it (a
500 in about one run of the race test in ten). Without prepared statements each statement is
parsed each time; ``docs/performance.md`` records what that costs.

The pool is also opened, and filled, as the factory is made (see ``Factory``).
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment


class Factory(PostgresFactory):
    def __init__(self, env: Environment) -> None:
        super().__init__(env)
        # The pool opens its connections on first use, with these arguments.
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)  # the library passes a dict, never a callable
        kwargs["prepare_threshold"] = None
        # Opened now, waiting for its first connections: the recorders query as they are made
        # (the library registers its type adapters), and a query made before the pool's first
        # connection is ready makes the pool open a spare one too, which then stays for ten
        # idle minutes. With a pool per projection that was a connection each for nothing.
        pool = self.datastore.pool
        pool.open(wait=True, timeout=pool.timeout)
