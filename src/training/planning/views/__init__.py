"""The tracks read model (from the planning process's events) and the learning notes."""
