"""People: a tenant's members, their roles, reporting line and position.

Names and emails are personal data and never appear in an event; they live in a mutable
store beside the events, so erasing them leaves history intact. Events only say *that*
personal data changed (``PersonalDataUpdated``) or was erased (``Erased``).

Nor may personal data hide in a value an event keeps for another purpose: an external id
(which also seeds the member id) is an HRIS or identity provider key, never an email
address, and a member who comes without one (SCIM without ``externalId``, single sign-on)
gets an opaque one generated here. Why a member was deactivated is free text about them, so
it is kept with their personal data, not in ``Deactivated``.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from training.core.access import Role
from training.core.aggregate import TrainingAggregate, stable_id
from training.core.errors import InvalidTransition, RuleViolated

EXTERNAL_ID_PATTERN = re.compile(r"^[\x21-\x7e]{1,128}$")
# The external ids the service generates for members who come without one.
GENERATED_EXTERNAL_ID = re.compile(r"^member-[0-9a-f]{32}$")
MAX_TEXT = 120
EMAIL_PATTERN = re.compile(r"^[^@\s\x00]{1,64}@[^@\s\x00]{1,189}\.[^@\s\x00]{1,63}$")
MAX_DISPLAY_NAME = 200
MAX_REASON = 500


# The languages the service speaks (BCP 47 tags): English and Simplified Chinese.
LANGUAGES = ("en", "zh-Hans")


class MemberStatus(StrEnum):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


def _refuse_nul(text: str, field: str) -> None:
    # People's text is stored in PostgreSQL, which refuses NUL characters; imports and SCIM
    # reach these checks without the API's own validation.
    if "\x00" in text:
        raise RuleViolated(f"{field} may not contain NUL characters", field=field)


def check_external_id(external_id: str, field: str = "external_id") -> str:
    if not EXTERNAL_ID_PATTERN.match(external_id):
        raise RuleViolated(
            "an external id is 1-128 visible ASCII characters without spaces", field=field
        )
    if "@" in external_id:
        # An external id stays in the member's history (and seeds the member id), which an
        # erasure cannot change: an email address there could never be erased.
        raise RuleViolated(
            "an external id may not contain '@': it is kept in the member's history, which "
            "erasure cannot change, so it must not be an email address; send the HRIS or "
            "identity provider's key",
            field=field,
        )
    return external_id


def generated_external_id() -> str:
    """An opaque external id for a member who comes without one (random, not derived from
    anything about the person)."""
    return f"member-{uuid.uuid4().hex}"


def is_generated_external_id(external_id: str) -> bool:
    return GENERATED_EXTERNAL_ID.match(external_id) is not None


def check_roles(roles: tuple[Role, ...] | list[Role]) -> tuple[Role, ...]:
    if not roles:
        raise RuleViolated("a member has at least one role", field="roles")
    return tuple(sorted(set(roles)))


def check_optional_text(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if len(cleaned) > MAX_TEXT:
        raise RuleViolated(f"{field} has at most {MAX_TEXT} characters", field=field)
    _refuse_nul(cleaned, field)
    return cleaned or None


def check_display_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_DISPLAY_NAME:
        raise RuleViolated(
            f"a display name has 1-{MAX_DISPLAY_NAME} characters", field="display_name"
        )
    _refuse_nul(cleaned, "display_name")
    return cleaned


def check_email(email: str) -> str:
    cleaned = email.strip()
    if len(cleaned) > 254 or not EMAIL_PATTERN.match(cleaned):
        raise RuleViolated("not an email address", field="email")
    return cleaned.lower()


class Member(TrainingAggregate):
    """A person of a tenant. The id derives from the tenant and the external id (HRIS key)."""

    TOPIC = "training.people:Member"

    class Event(TrainingAggregate.Event):
        TOPIC = "training.people:Member.Event"

    class Created(Event, TrainingAggregate.Created):
        TOPIC = "training.people:Member.Created"

    class Registered(Created):
        TOPIC = "training.people:Member.Registered"
        external_id: str
        roles: tuple[Role, ...]
        manager_id: UUID | None
        team: str | None
        job_title: str | None

    class RolesChanged(Event):
        TOPIC = "training.people:Member.RolesChanged"
        roles: tuple[Role, ...]

    class ManagerChanged(Event):
        TOPIC = "training.people:Member.ManagerChanged"
        manager_id: UUID | None

    class PositionChanged(Event):
        TOPIC = "training.people:Member.PositionChanged"
        team: str | None
        job_title: str | None

    class PersonalDataUpdated(Event):
        """Which personal fields changed; their values stay in the personal data store."""

        TOPIC = "training.people:Member.PersonalDataUpdated"
        fields: tuple[str, ...]

    class Deactivated(Event):
        """Why is kept with the personal data (it is free text about the person)."""

        TOPIC = "training.people:Member.Deactivated"
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.pop("reason", None)

    class Reactivated(Event):
        TOPIC = "training.people:Member.Reactivated"

    class Erased(Event):
        TOPIC = "training.people:Member.Erased"

    class ExternalIdChanged(Event):
        """The member's key in the tenant's systems changed; the member id stays."""

        TOPIC = "training.people:Member.ExternalIdChanged"
        external_id: str

    class LanguageChosen(Event):
        """The language the person reads the service in (pages and reports)."""

        TOPIC = "training.people:Member.LanguageChosen"
        language: str

    @staticmethod
    def create_id(tenant_id: UUID, external_id: str) -> UUID:
        return stable_id("tenants", tenant_id, "members", external_id)

    @classmethod
    def register(
        cls,
        *,
        tenant_id: UUID,
        external_id: str,
        roles: tuple[Role, ...],
        manager_id: UUID | None = None,
        team: str | None = None,
        job_title: str | None = None,
        member_id: UUID | None = None,
    ) -> Member:
        """``member_id`` defaults to the id derived from the external id; it differs only
        when that id was taken by a member who moved to another external id since."""
        external_id = check_external_id(external_id)
        if member_id is None:
            member_id = cls.create_id(tenant_id, external_id)
        if manager_id == member_id:
            raise RuleViolated("a member cannot manage themselves", field="manager_id")
        return cls._create(
            cls.Registered,
            id=member_id,
            external_id=external_id,
            roles=check_roles(roles),
            manager_id=manager_id,
            team=check_optional_text(team, "team"),
            job_title=check_optional_text(job_title, "job_title"),
            tenant_id=tenant_id,
        )

    @event(Registered)
    def __init__(
        self,
        external_id: str,
        roles: tuple[Role, ...],
        manager_id: UUID | None,
        team: str | None,
        job_title: str | None,
        *,
        tenant_id: UUID | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.external_id = external_id
        self.roles = roles
        self.manager_id = manager_id
        self.team = team
        self.job_title = job_title
        self.status = MemberStatus.ACTIVE
        self.erased = False
        self.language: str | None = None  # none chosen: the browser's language

    @property
    def is_active(self) -> bool:
        return self.status is MemberStatus.ACTIVE

    def _require_not_erased(self) -> None:
        if self.erased:
            raise InvalidTransition("the member's personal data was erased; the record is closed")

    def change_roles(self, roles: tuple[Role, ...]) -> None:
        self._require_not_erased()
        roles = check_roles(roles)
        if roles != self.roles:
            self._roles_changed(roles=roles)

    @event(RolesChanged)
    def _roles_changed(self, roles: tuple[Role, ...]) -> None:
        self.roles = roles

    def change_manager(self, manager_id: UUID | None) -> None:
        """Reporting-line cycles are checked by the caller, which can see the whole chain."""
        self._require_not_erased()
        if manager_id == self.id:
            raise RuleViolated("a member cannot manage themselves", field="manager_id")
        if manager_id != self.manager_id:
            self._manager_changed(manager_id=manager_id)

    @event(ManagerChanged)
    def _manager_changed(self, manager_id: UUID | None) -> None:
        self.manager_id = manager_id

    def change_position(self, team: str | None, job_title: str | None) -> None:
        self._require_not_erased()
        team = check_optional_text(team, "team")
        job_title = check_optional_text(job_title, "job_title")
        if (team, job_title) != (self.team, self.job_title):
            self._position_changed(team=team, job_title=job_title)

    @event(PositionChanged)
    def _position_changed(self, team: str | None, job_title: str | None) -> None:
        self.team = team
        self.job_title = job_title

    def change_external_id(self, external_id: str) -> None:
        """Uniqueness in the tenant is the caller's check, against the id's ``ExternalIdKey``."""
        self._require_not_erased()
        external_id = check_external_id(external_id)
        if external_id != self.external_id:
            self._external_id_changed(external_id=external_id)

    def replace_external_id(self, external_id: str) -> None:
        """Gives the member another external id even when their record is closed: the one
        change an erased record takes, because its old external id held personal data."""
        external_id = check_external_id(external_id)
        if external_id != self.external_id:
            self._external_id_changed(external_id=external_id)

    def choose_language(self, language: str) -> None:
        if language not in LANGUAGES:
            raise RuleViolated(f"the service speaks {', '.join(LANGUAGES)}", field="language")
        self._require_not_erased()
        if language != self.language:
            self._language_chosen(language=language)

    @event(LanguageChosen)
    def _language_chosen(self, language: str) -> None:
        self.language = language

    @event(ExternalIdChanged)
    def _external_id_changed(self, external_id: str) -> None:
        self.external_id = external_id

    def note_personal_data_updated(self, fields: tuple[str, ...]) -> None:
        self._require_not_erased()
        if fields:
            self._personal_data_updated(fields=tuple(sorted(fields)))

    @event(PersonalDataUpdated)
    def _personal_data_updated(self, fields: tuple[str, ...]) -> None:
        pass

    def deactivate(self, reason: str) -> str:
        """Answers the reason to keep beside the event, with the personal data."""
        if not self.is_active:
            raise InvalidTransition("the member is already deactivated")
        cleaned = reason.strip()[:MAX_REASON]
        if not cleaned:
            raise RuleViolated("say why the member is deactivated", field="reason")
        _refuse_nul(cleaned, "reason")
        self._deactivated()
        return cleaned

    @event(Deactivated)
    def _deactivated(self) -> None:
        self.status = MemberStatus.DEACTIVATED

    def reactivate(self) -> None:
        self._require_not_erased()
        if self.is_active:
            raise InvalidTransition("the member is already active")
        self._reactivated()

    @event(Reactivated)
    def _reactivated(self) -> None:
        self.status = MemberStatus.ACTIVE

    def erase(self) -> None:
        if self.erased:
            raise InvalidTransition("the member's personal data was already erased")
        self._erased()

    @event(Erased)
    def _erased(self) -> None:
        self.erased = True
