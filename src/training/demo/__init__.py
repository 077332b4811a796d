"""A demo tenant with people, cohorts, assessments and reviews, and signing in to it."""
