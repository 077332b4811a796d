"""Personal data travels beside events, never inside them.

A handler hands names, emails and free text about a person to the unit of work; the event
store's recorder writes them to tables beside the events (``people``, ``review_texts``,
``learning_notes``, ``cohort_reasons``) in the same transaction as the events, so the two
never disagree, and erasing a person deletes what is held about them while the events stay
as they were.

Free text someone typed about a person (why they were deactivated, a review's strengths, why
a finalised review was amended, why an engineer skipped a module, why a cohort was cancelled
or a person withdrawn from it) is personal data too: it may name them or others.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from uuid import UUID

# The unique constraints on personal data, and the field each protects: one email to one
# member of a tenant (migration 0018), one identity provider subject too (migration 0017).
EMAIL_IN_TENANT = "people_email_in_tenant"
SSO_SUBJECT_IN_TENANT = "people_sso_subject"
UNIQUE_FIELDS = {EMAIL_IN_TENANT: "email", SSO_SUBJECT_IN_TENANT: "sso_subject"}


@dataclass(frozen=True, slots=True)
class PersonalData:
    """``None`` keeps what is stored (a new member always comes with a display name).

    ``sso_subject`` is the identity provider's subject of a member provisioned at sign-in;
    ``deactivation_reason`` why the member was last deactivated.
    """

    display_name: str | None
    email: str | None
    sso_subject: str | None = None
    deactivation_reason: str | None = None


@dataclass(frozen=True, slots=True)
class PersonalDataChange:
    """A change to what is held beside the events about one member (``member_id``), or about
    nobody in particular (None: a cohort's cancellation reason)."""

    member_id: UUID | None
    tenant_id: UUID


@dataclass(frozen=True, slots=True)
class MemberDataChange(PersonalDataChange):
    data: PersonalData


@dataclass(frozen=True, slots=True)
class Erasure(PersonalDataChange):
    """Everything held about the member goes, and so does every stored artefact naming them
    (rendered reports, import files, free text that mentions them)."""


@dataclass(frozen=True, slots=True)
class ReviewTextChange(PersonalDataChange):
    """The free text of one review of ``member_id``.

    ``strengths`` None keeps the stored ones; ``amendment_reason`` is added to the reasons
    of the review's amendments, in order.
    """

    review_id: UUID
    strengths: tuple[str, ...] | None = None
    amendment_reason: str | None = None


@dataclass(frozen=True, slots=True)
class LearningNote(PersonalDataChange):
    """What ``member_id`` wrote with a progress report on a module of their track (why they
    skipped it), kept by the learning record's version that recorded the report."""

    record_id: UUID
    version: int
    curriculum_id: str
    module_key: str
    note: str


@dataclass(frozen=True, slots=True)
class CohortReason(PersonalDataChange):
    """Why a cohort withdrew people: ``member_id`` is the person withdrawn (the reason is
    erased with them), None for a cancellation (it withdrew ``withdrawn``). Kept by the
    cohort's version that recorded the withdrawal or the cancellation."""

    cohort_id: UUID
    version: int
    withdrawn: tuple[UUID, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class ReviewText:
    strengths: tuple[str, ...]
    amendment_reasons: tuple[str, ...]


EMPTY_REVIEW_TEXT = ReviewText((), ())


@runtime_checkable
class PersonalDataReader(Protocol):
    """Reads what is stored beside the events (the event store's recorder implements it)."""

    def email_holders(self, tenant_id: UUID, emails: Collection[str]) -> dict[str, UUID]:
        """The member holding each of ``emails`` in the tenant (absent when nobody does)."""
        ...

    def review_text(self, tenant_id: UUID, review_id: UUID) -> ReviewText | None: ...


class NothingStored:
    """The reader of an event store that keeps nothing beside its events (in memory)."""

    def email_holders(self, tenant_id: UUID, emails: Collection[str]) -> dict[str, UUID]:
        return {}

    def review_text(self, tenant_id: UUID, review_id: UUID) -> ReviewText | None:
        return None
