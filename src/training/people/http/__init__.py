"""The people API: members and their reporting lines, their personal data, member imports."""

from __future__ import annotations

from training.people.http.imports import ImportController
from training.people.http.people import MemberController
from training.people.http.personal_data import PersonalDataController

ROUTES = [MemberController, PersonalDataController, ImportController]
