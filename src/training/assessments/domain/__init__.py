"""Attempts, item banks and calibration, the scorer and the skill profile: pure."""
