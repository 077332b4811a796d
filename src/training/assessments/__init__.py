"""Adaptive skill assessments: item banks, attempts, scoring and evidence."""
