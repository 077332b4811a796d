"""The read side: projections that write tenant-scoped tables, and the queries over them."""
