"""Adapters to the outside world: PostgreSQL, migrations, keys, settings and logs."""
