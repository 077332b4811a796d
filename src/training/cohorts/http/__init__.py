"""Cohorts over HTTP: schedule and run cohorts (``cohorts``), enrol (in bulk), withdraw and
transfer people (``enrolments``), live sessions with imported attendance and feedback
(``sessions``), progress against the calendar, the tenant's training policy, each engineer's
own cohorts and sessions, and calendar feeds (``calendar``).

HR manages cohorts with ``members:write`` and reads them with ``members:read``; an engineer
uses their own (member) token for feedback and the ``/v1/me`` endpoints.
"""

from __future__ import annotations

from training.cohorts.http.calendar import CalendarController, calendar_feed
from training.cohorts.http.cohorts import CohortController, PolicyController
from training.cohorts.http.enrolments import EnrolmentController
from training.cohorts.http.sessions import SessionController

ROUTES = [
    CohortController,
    EnrolmentController,
    SessionController,
    PolicyController,
    CalendarController,
    calendar_feed,
]
