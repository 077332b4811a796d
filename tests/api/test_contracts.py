"""contracts/ is generated from the code; this fails when the two drift apart."""

from __future__ import annotations

from pathlib import Path

from training import contracts


def test_the_contract_files_match_the_code() -> None:
    problems = contracts.differences()
    assert problems == [], "run scripts/contracts and commit contracts/: " + "; ".join(problems)


def test_every_event_type_has_a_schema() -> None:
    names = {path.name for path in (contracts.CONTRACTS_DIR / "events").glob("*.json")}
    assert "training.tenancy.Tenant.Registered.json" in names
    assert "training.tenancy.ApiClient.Revoked.json" in names


def test_a_drift_is_detected(tmp_path: Path) -> None:
    contracts.write(tmp_path)
    assert contracts.differences(tmp_path) == []
    (tmp_path / "openapi.json").write_text("{}\n")
    (tmp_path / "events" / "stale.json").write_text("{}\n")
    assert sorted(contracts.differences(tmp_path)) == [
        "differs: contracts/openapi.json",
        "no longer generated: contracts/events/stale.json",
    ]
