"""The cohort API and the calendar feeds."""
