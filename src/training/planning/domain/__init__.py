"""Tracks, the planning catalogue, the planner and learning records: pure."""
