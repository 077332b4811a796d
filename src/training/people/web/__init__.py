"""The people context's pages: the HR manager's directory of people (``directory``) and a
person's own profile (``profile``); their templates are in ``people/templates/people``."""

from __future__ import annotations

from typing import Any

from training.people.web import directory, profile

ROUTES: list[Any] = [*directory.ROUTES, *profile.ROUTES]
