"""The pages' language: which one a visitor gets, that every string of the pages is in both
catalogues, translated, and that a sign-in's ``next`` stays on this site."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from training.core.web import i18n
from training.core.web.pages import safe_next

SOURCE = Path(i18n.__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


@pytest.mark.parametrize(
    ("chosen", "header", "language"),
    [
        (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"),
        (None, "zh-Hans", "zh-Hans"),
        (None, "zh", "zh-Hans"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "fr-FR,zh-CN;q=0.5", "zh-Hans"),
        (None, "zh-TW,zh;q=0.1", "zh-Hans"),
        (None, "zh-TW", "en"),
        (None, "zh-Hant-HK", "en"),
        (None, "de, fr", "en"),
        (None, "", "en"),
        (None, ";;;,q=x,*", "en"),
        (None, "en;q=0.1, zh-CN;q=0.9", "zh-Hans"),
        ("en", "zh-CN", "en"),
        ("zh-Hans", "en-US", "zh-Hans"),
        ("klingon", "zh-CN", "zh-Hans"),
    ],
)
def test_a_visitor_gets_their_choice_else_their_browsers_language(
    chosen: str | None, header: str, language: str
) -> None:
    assert i18n.negotiate(chosen, header) == language


def _messages() -> set[str]:
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(SOURCE), method_map, options, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("language", sorted(i18n.LANGUAGES.values()))
def test_every_string_of_the_pages_is_translated(language: str) -> None:
    path = SOURCE / "locale" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as file:
        catalogue = read_po(file, locale=language)
    translated = {m.id: m for m in catalogue if m.id}
    missing = sorted(_messages() - set(translated))
    assert not missing, f"not in {path} (run scripts/catalogues): {missing}"
    untranslated = sorted(str(m.id) for m in translated.values() if not m.string or m.fuzzy)
    assert not untranslated, f"untranslated in {path}: {untranslated}"


def test_a_translation_keeps_the_placeholders_of_its_string() -> None:
    path = SOURCE / "locale" / "zh_Hans" / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as file:
        catalogue = read_po(file, locale="zh_Hans")
    for message in catalogue:
        if message.id and isinstance(message.id, str):
            for placeholder in ("%(" + name for name in _placeholders(message.id)):
                assert placeholder in str(message.string), message.id


def _placeholders(text: str) -> list[str]:
    return [part.split(")", 1)[0] for part in text.split("%(")[1:]]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/", "/"),
        ("/track?tab=next", "/track?tab=next"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("track", "/"),
        ("/a\r\nLocation: //evil", "/"),
    ],
)
def test_next_stays_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected
