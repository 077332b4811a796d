"""The people API: members and their reporting lines, their personal data, member imports,
and a person's own preferences."""

from __future__ import annotations

from training.people.http.imports import ImportController
from training.people.http.people import MemberController
from training.people.http.personal_data import PersonalDataController
from training.people.http.preferences import PreferencesController

ROUTES = [MemberController, PersonalDataController, ImportController, PreferencesController]
