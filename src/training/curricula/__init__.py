"""Curricula and their modules."""
