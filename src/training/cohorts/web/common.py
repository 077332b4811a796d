"""What the HR manager's cohort pages share: their section of the navigation, a form's
fields as sent, the version and reason it carries, the API's rules for a cohort's fields,
and a cohort read by id (another company's reads as missing)."""

from __future__ import annotations

from typing import Any, get_type_hints
from uuid import UUID

import msgspec

from training.cohorts.http.cohorts import CohortIn
from training.cohorts.http.common import Reason
from training.cohorts.views import cohorts as queries
from training.core.errors import NotFound
from training.core.http.reads import Reads
from training.core.web.i18n import N_

SECTION = "hr-cohorts"
FIELD_ADVICE: dict[str, str] = {
    "name": N_("Enter a name of at most 200 characters."),
    "curriculum_id": N_("Enter the id of a published curriculum."),
    "curriculum_version": N_("Enter the number of a published version."),
    "starts_on": N_("Enter a date such as 2030-03-01."),
    "ends_on": N_("Enter a date on or after the start."),
    "timezone": N_("Enter a time zone such as Europe/Berlin."),
    "capacity": N_("Enter a number of seats from 1 to 10,000."),
}
COHORT_TYPES = get_type_hints(CohortIn, include_extras=True)


def form_of(sent: Any, fields: tuple[str, ...]) -> dict[str, str]:
    """The text fields of a form as sent, trimmed and bounded: kept to be shown again."""
    return {name: str(sent.get(name, "")).strip()[:300] for name in fields}


def version_of(sent: Any) -> int | None:
    """The version the form was shown at: a change made since refuses it (as ``If-Match``)."""
    value = str(sent.get("version", ""))
    return int(value) if value.isdigit() and len(value) < 19 else None


def reason_of(sent: Any) -> str | None:
    try:
        return msgspec.convert(str(sent.get("reason", "")).strip()[:1000], Reason)
    except msgspec.ValidationError:
        return None


async def cohort_of(reads: Reads, cohort_id: UUID) -> queries.CohortSummary:
    async with reads.session() as conn:
        summary = await queries.cohort_summary(conn, cohort_id)
    if summary is None:
        raise NotFound(f"cohort {cohort_id} not found")
    return summary
