"""The cohorts context's pages: the engineer's own cohorts and the training policy
(``mine``); the HR manager's list of cohorts and scheduling one (``schedule``), a cohort's
people and its changes (``manage``), and its sessions, attendance and progress
(``sessions``); their templates are in ``cohorts/templates/cohorts``."""

from __future__ import annotations

from typing import Any

from training.cohorts.web import manage, mine, schedule, sessions

ROUTES: list[Any] = [*mine.ROUTES, *schedule.ROUTES, *manage.ROUTES, *sessions.ROUTES]
