"""The import rules (ADR 0030) hold for the code, and import-linter catches a broken copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import training

REPO = Path(__file__).resolve().parents[2]
PACKAGE = Path(training.__file__).resolve().parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(source_root: Path) -> subprocess.CompletedProcess[str]:
    """Runs import-linter with the repository's contracts over the package under
    ``source_root`` (the custom contracts are imported from the repository's scripts/)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source_root), str(REPO)])}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(REPO / "pyproject.toml")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_code_keeps_every_import_rule() -> None:
    result = lint_imports(PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "named"),
    [
        # A domain imports only what the allow-list names: I/O and the clock are not on it.
        ("cohorts/domain/policy.py", "import os", "imports os"),
        ("skills/domain.py", "import time", "imports time"),
        (
            "reviews/domain.py",
            "from eventsourcing.persistence import Recorder",
            "imports eventsourcing.persistence",
        ),
        # Core imports no context.
        ("core/bus.py", "import training.cohorts.views", "training.core"),
        # A view never imports its context's handlers.
        ("curricula/views.py", "import training.curricula.handlers", "training.curricula.views"),
        # A context never uses another's HTTP edge.
        ("reviews/handlers.py", "import training.people.views", None),
        ("reviews/handlers.py", "import training.tenancy.http", "training.tenancy.http"),
    ],
)
def test_a_copy_with_one_forbidden_import_is_refused(
    tmp_path: Path, module: str, line: str, named: str | None
) -> None:
    copy = tmp_path / "src" / "training"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    target = copy / module
    source = target.read_text()
    # After the module's own docstring and future import, so the copy still parses.
    anchor = "from __future__ import annotations\n"
    assert anchor in source
    target.write_text(source.replace(anchor, anchor + line + "\n", 1))

    result = lint_imports(copy.parent)

    if named is None:  # a context's views are public: the copy is as good as the original
        assert result.returncode == 0, result.stdout
    else:
        assert result.returncode != 0, result.stdout
        assert named in " ".join(result.stdout.split()), result.stdout
