"""CSV the service writes is safe to open in a spreadsheet: a cell that a spreadsheet would
read as a formula (it begins with =, +, -, @, tab or carriage return) is written with a
leading apostrophe, so it shows as the text it is."""

from __future__ import annotations

import csv
import io

import pytest

from tests.helpers import TenantUnderTest
from training.core.http.spreadsheet import safe_cell

FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"]


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_cell_that_would_be_a_formula_is_text(start: str) -> None:
    value = f'{start}HYPERLINK("https://evil.example")'
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["member:1", "2026-12-07 10:00:00+00:00", "", "a=b", 42, None])
def test_other_cells_are_unchanged(value: object) -> None:
    assert safe_cell(value) == ("" if value is None else str(value))


def test_the_audit_export_neutralises_a_request_id_that_looks_like_a_formula(
    tenant: TenantUnderTest,
) -> None:
    # X-Request-ID is the client's to choose (letters, digits, ".", "_" and "-"), and the
    # audit log keeps it beside each event.
    planted = "-2-cmd"
    added = tenant.client.post(
        "/v1/members",
        json={
            "external_id": "CSV-FORMULA",
            "display_name": "Formula Person",
            "email": "formula@example.com",
            "roles": ["engineer"],
        },
        headers={**tenant.headers(), "X-Request-ID": planted},
    )
    assert added.status_code == 201, added.text
    exported = tenant.client.get(
        "/v1/audit/export.csv", headers=tenant.headers(added.headers["training-position"])
    )
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    planted_rows = [r for r in rows if r["request_id"].endswith(planted)]
    assert planted_rows, exported.text[:500]
    assert all(r["request_id"] == "'" + planted for r in planted_rows)
    for row in rows:
        for cell in row.values():
            assert not cell or cell[0] not in FORMULA_STARTS, row
