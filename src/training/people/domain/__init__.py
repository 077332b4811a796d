"""Members, their seats and external ids, and teams: pure."""
