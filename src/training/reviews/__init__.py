"""Performance reviews."""
