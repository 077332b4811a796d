"""Commands on cohorts: a cohort's life and sessions (``cohorts``), who is in it
(``enrolments``, with the ``participation`` records every placement writes) and its calendar
feeds (``calendar``)."""

from __future__ import annotations

from training.cohorts.handlers import calendar, cohorts, enrolments
from training.core.bus import Handler

HANDLERS: dict[type, Handler] = {**cohorts.HANDLERS, **enrolments.HANDLERS, **calendar.HANDLERS}
