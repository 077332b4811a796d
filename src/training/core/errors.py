"""Errors the domain raises when a command breaks a rule.

Each error carries a stable machine-readable ``code`` and, where one field of the input is
to blame, the name of that ``field``. The API maps the classes to HTTP statuses.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "domain-error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(DomainError):
    """The aggregate does not exist, or belongs to another tenant (which we never reveal)."""

    code = "not-found"


class AlreadyExists(DomainError):
    code = "already-exists"


class InvalidTransition(DomainError):
    """The aggregate is in a state where the command makes no sense (suspend a suspended tenant)."""

    code = "invalid-transition"


class RuleViolated(DomainError):
    """The input is well formed but breaks a business rule."""

    code = "rule-violated"


class LimitReached(DomainError):
    """A quota (seats, capacity) is used up; the request may succeed once room is made."""

    code = "limit-reached"


class StaleVersion(DomainError):
    """The caller acted on a version of the aggregate that is no longer current."""

    code = "stale-version"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected version {expected}, the current version is {actual}")
        self.expected = expected
        self.actual = actual


class Forbidden(DomainError):
    code = "forbidden"
