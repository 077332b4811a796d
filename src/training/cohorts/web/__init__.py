"""The cohorts context's pages: the engineer's own cohorts and the training policy
(``mine``), the HR manager's cohorts with their people (``manage``), and a cohort's sessions,
attendance and progress (``sessions``); their templates are in ``cohorts/templates/cohorts``."""

from __future__ import annotations

from typing import Any

from training.cohorts.web import manage, mine, sessions

ROUTES: list[Any] = [*mine.ROUTES, *manage.ROUTES, *sessions.ROUTES]
