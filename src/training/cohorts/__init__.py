"""Scheduled cohorts: enrolment, waitlists, sessions, attendance, completion and calendar feeds."""
