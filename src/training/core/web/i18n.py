"""The language of a page: English or Simplified Chinese, from Babel catalogues.

The catalogues are ``training/locale/<locale>/LC_MESSAGES/messages.po``, compiled to ``.mo`` by
the set-up (``scripts/_env.sh``). A request's language is the visitor's choice (a cookie set
by the language switch) or else the best match of ``Accept-Language``; it is held in a
context variable for the request, which the templates' ``_()`` and the formatting helpers
read, so one Jinja environment serves every language.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parents[2] / "locale"
DOMAIN = "messages"
# The languages of the app, by the tag a page declares (``<html lang>``) and the catalogue's
# directory.
LANGUAGES: Mapping[str, str] = {"en": "en", "zh-Hans": "zh_Hans"}
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "training_lang"
LANGUAGE_NAMES: Mapping[str, str] = {"en": "English", "zh-Hans": "简体中文"}

_current: contextvars.ContextVar[str] = contextvars.ContextVar("language", default="en")


class CataloguesMissing(RuntimeError):
    """The compiled catalogues are not there: the set-up compiles them."""


@cache
def translations(language: str) -> NullTranslations:
    directory = LANGUAGES[language]
    compiled = LOCALE_DIR / directory / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if not compiled.exists():
        msg = (
            f"{compiled} is missing: compile the catalogues with scripts/serve or "
            "scripts/test (pybabel compile -d src/training/locale)"
        )
        raise CataloguesMissing(msg)
    return Translations.load(str(LOCALE_DIR), [directory], DOMAIN)


def negotiate(chosen: str | None, accept_language: str | None) -> str:
    """The visitor's chosen language when it is one of ours, else the best of the browser's
    ``Accept-Language``, else English."""
    if chosen is not None and chosen in LANGUAGES:
        return chosen
    for tag in _preferences(accept_language or ""):
        try:
            locale = Locale.parse(tag, sep="-")
        except (ValueError, TypeError):
            continue
        if locale.language == "zh":
            # Traditional script (zh-TW, zh-HK, zh-Hant) falls back to English, not to
            # Simplified characters the reader may not want.
            if locale.script == "Hant" or locale.territory in {"TW", "HK", "MO"}:
                continue
            return "zh-Hans"
        if locale.language == "en":
            return "en"
    return DEFAULT_LANGUAGE


def _preferences(header: str) -> list[str]:
    """The tags of an ``Accept-Language`` header, most wanted first (at most 20 read)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def N_(message: str) -> str:  # noqa: N802 (gettext's name for a marker)
    """Marks ``message`` for the catalogues where it is written; it is translated where it
    is shown (``_()`` in a template, ``gettext``)."""
    return message


def use(language: str) -> contextvars.Token[str]:
    """Makes ``language`` the current request's language."""
    return _current.set(language)


def current() -> str:
    return _current.get()


def translate(message: str) -> str:
    """``message`` in the current language (the templates' ``_()``, which Jinja then fills
    with its variables, escaped)."""
    return translations(current()).gettext(message)


def translate_plural(singular: str, plural: str, n: int) -> str:
    return translations(current()).ngettext(singular, plural, n)


def gettext(message: str, **variables: Any) -> str:
    """``message`` in the current language, filled with ``variables`` (for Python code)."""
    text = translate(message)
    return text % variables if variables else text


def _locale() -> Locale:
    return Locale.parse(LANGUAGES[current()])


def localised_date(value: date | datetime | None, style: str = "medium") -> str:
    if value is None:
        return ""
    day = value.date() if isinstance(value, datetime) else value
    return format_date(day, format=style, locale=_locale())


def localised_datetime(value: datetime | None, timezone: str | None = None) -> str:
    """``value`` in ``timezone`` (an IANA name: the cohort's or the person's), else UTC."""
    if value is None:
        return ""
    zone = ZoneInfo(timezone) if timezone else None
    return format_datetime(value, format="medium", tzinfo=zone, locale=_locale())


def localised_number(value: float | int | None) -> str:
    return "" if value is None else format_decimal(value, locale=_locale())


def localised_percent(value: float | None) -> str:
    return "" if value is None else format_percent(value, locale=_locale())
