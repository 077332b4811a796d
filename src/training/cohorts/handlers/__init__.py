"""Commands on cohorts and the participation records that follow every enrolment."""
