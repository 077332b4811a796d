"""Environment variables are read only in ``training.infra.settings`` (ADR 0030): every
setting is documented and validated in one place, and a test or a module cannot grow a
setting of its own that nobody sees."""

from __future__ import annotations

import ast
from pathlib import Path

import training

PACKAGE = Path(training.__file__).resolve().parent
THE_READER = PACKAGE / "infra" / "settings.py"


def environment_reads(path: Path, root: Path = PACKAGE) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        named = None
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"}:
            named = node.attr
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {alias.name for alias in node.names}
            if names & {"environ", "getenv", "environb"}:
                named = "from os import environ"
        if named is not None:
            found.append(f"{path.relative_to(root)}:{node.lineno} reads {named}")
    return found


def test_only_the_settings_module_reads_the_environment() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != THE_READER:
            found += environment_reads(path)
    assert found == []


def test_the_check_sees_each_way_of_reading(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "import os\nfrom os import getenv\n"
        "a = os.environ.get('A')\nb = os.getenv('B')\nc = getenv('C')\n"
    )
    # os.environ, os.getenv, and the import of getenv (its calls are then plain names).
    assert len(environment_reads(module, tmp_path)) == 3
