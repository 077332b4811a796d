"""The domain is pure: it imports no other layer and no I/O library."""

from __future__ import annotations

import ast
from pathlib import Path

import training

PACKAGE = Path(training.__file__).parent
FORBIDDEN_PREFIXES = (
    "training.application",
    "training.projections",
    "training.api",
    "training.reports",
    "training.infra",
    "training.bootstrap",
    "training.cli",
    "psycopg",
    "psycopg_pool",
    "litestar",
    "httpx",
    "weasyprint",
    "structlog",
    "authlib",
    "joserfc",
    "pgserver",
    "eventsourcing.postgres",
    "eventsourcing.application",
    "socket",
    "subprocess",
    "urllib",
    "requests",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_domain_imports_no_other_layer_and_no_io() -> None:
    offences = []
    files = sorted((PACKAGE / "domain").rglob("*.py"))
    assert files
    for path in files:
        for module in imported_modules(path):
            if module.startswith(FORBIDDEN_PREFIXES):
                offences.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert offences == []


def test_the_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    offender = tmp_path / "bad.py"
    offender.write_text("from training.infra.database import Database\nimport psycopg\n")
    assert imported_modules(offender) == {"training.infra.database", "psycopg"}
