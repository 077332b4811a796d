"""`training worker`: a refusal is one clear line and a non-zero exit status, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_SECRET_KEY

TRAINING = str(Path(sys.executable).parent / "training")
KNOWN = (
    "tenancy, members, skills, curricula, cohorts, audit, assessments, reviews, planning, tracks"
)


def test_an_unknown_projection_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    # Refused before any database is touched: none is configured, and the embedded one
    # would live here.
    env.update(TRAINING_SECRET_KEY=TEST_SECRET_KEY, TRAINING_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [TRAINING, "worker", "--only", "membres"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"training worker: no projection named 'membres'; known: {KNOWN}"
    ]
    assert not (tmp_path / "data").exists()
