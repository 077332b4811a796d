"""Backup and restore as the README tells it: the database with pg_dump, and the secret key.

A dump restored into a fresh instance without ``.data/secret.key`` is refused at start, in
one line (``serve``, ``worker``, ``migrate`` alike), and no new key is made; with the key
restored, the service signs tokens for the clients of the backup.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_embedded_server import postgres_of
from tests.e2e.test_serve import TRAINING, Server, environment, free_port

REFUSAL = (
    "refused: the database holds token signing keys but {key} is missing (was the database "
    "restored without its key?): restore the secret.key saved with this database into {dir}, "
    "or set TRAINING_SECRET_KEY to that key; "
    "if it is lost, `training keys rotate --replace-lost-secret-key`"
)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="training-restore-"))
    path.chmod(0o755)  # the dump files are read by the server's system user, run as root
    yield path
    for data_dir in (path / "source", path / "restored"):
        for process in postgres_of(data_dir / "pg"):
            process.terminate()
    shutil.rmtree(path, ignore_errors=True)


def training(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRAINING, *args], env=env, capture_output=True, text=True, check=False, timeout=120
    )


def succeeded(completed: subprocess.CompletedProcess[str]) -> str:
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_a_restored_database_serves_with_its_key_and_is_refused_without(workdir: Path) -> None:
    source = environment(workdir / "source", free_port())
    succeeded(training(source, "migrate"))
    created = succeeded(training(source, "operator", "create-client", "--name", "backup"))
    client = dict(line.split("=", 1) for line in created.split())
    # The backup: roles, the database, and the key.
    roles, dump = workdir / "roles.sql", workdir / "training.dump"
    succeeded(training(source, "db", "pg_dumpall", "--roles-only", "-f", str(roles)))
    succeeded(training(source, "db", "pg_dump", "--format=custom", "-f", str(dump)))
    assert postgres_of(workdir / "source" / "pg") == []

    restored_dir = workdir / "restored"
    restored = environment(restored_dir, free_port())
    succeeded(training(restored, "db", "psql", "--quiet", "-f", str(roles)))
    succeeded(
        training(restored, "db", "pg_restore", "--exit-on-error", "-d", "training", str(dump))
    )

    key = restored_dir / "secret.key"
    for command in (["serve", "--no-demo"], ["worker"], ["migrate"]):
        refused = training(restored, *command)
        assert refused.returncode == 1
        line = f"training {command[0]}: " + REFUSAL.format(key=key, dir=restored_dir)
        assert refused.stderr.strip().splitlines()[-1] == line
        assert not key.exists()
    assert postgres_of(restored_dir / "pg") == []

    shutil.copy(workdir / "source" / "secret.key", key)
    server = Server(restored, "--no-demo")
    try:
        server.wait_ready()
        issued = httpx.post(
            f"{server.base}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert issued.status_code == 200, issued.text
        assert httpx.get(f"{server.base}/.well-known/jwks.json").status_code == 200
        assert httpx.get(f"{server.base}/readyz").status_code == 200
    finally:
        assert server.interrupt() == 0
    assert postgres_of(restored_dir / "pg") == []
