"""Use cases: the event-sourced application, the command bus and one module per context."""
