"""CSV cells that a spreadsheet will not run.

Spreadsheets read a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula, and
strip a leading tab or carriage return before doing so; a formula can fetch URLs or run
commands when the file is opened (CSV injection). Every CSV the service writes passes its
cells through ``safe_cell``, which writes such a cell with a leading apostrophe, so that it
shows as the text it is.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_row(values: Iterable[object]) -> list[str]:
    return [safe_cell(value) for value in values]
