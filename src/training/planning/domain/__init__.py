"""Tracks, the planner and learning records: pure."""
