"""Cohorts, enrolments, participations, calendar feeds and the training policy: pure."""
