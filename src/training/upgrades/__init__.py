"""One-time data steps that `training migrate` runs after the schema migrations."""
