"""``training serve`` killed with SIGKILL: the next start takes the embedded PostgreSQL over,
and its Ctrl-C stops it."""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.test_serve import Server, environment, free_port, operator_token


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="training-e2e-"))
    yield path
    for process in postgres_of(path / "pg"):  # a failed test leaves no server behind
        process.terminate()
    shutil.rmtree(path, ignore_errors=True)


def postgres_of(pgdata: Path) -> list[psutil.Process]:
    """The PostgreSQL server processes started on ``pgdata``."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        command = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata) in command:
            found.append(process)
    return found


def test_a_start_after_a_kill_9_takes_the_server_over_and_ctrl_c_stops_it(
    data_dir: Path,
) -> None:
    pgdata = data_dir / "pg"
    env = environment(data_dir, free_port())
    first = Server(env, "--no-demo")
    first.wait_ready()
    headers = {"Authorization": f"Bearer {operator_token(env, first.base)}"}
    created = httpx.post(
        f"{first.base}/v1/tenants",
        json={"slug": "kept-corp", "name": "Kept Corp", "seat_limit": 5},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    first.process.kill()
    assert first.ended() == -signal.SIGKILL
    assert postgres_of(pgdata), "the server outlives a killed owner (nothing can stop it)"

    second = Server(env, "--no-demo")
    try:
        second.wait_ready()
        headers = {"Authorization": f"Bearer {operator_token(env, second.base)}"}
        position = {"Training-Position": created.headers["training-position"]}
        listed = httpx.get(f"{second.base}/v1/tenants", headers={**headers, **position})
        assert listed.status_code == 200, listed.text
        assert [t["slug"] for t in listed.json()["items"]] == ["kept-corp"]
    finally:
        assert second.interrupt() == 0
    assert postgres_of(pgdata) == [], "PostgreSQL still running after Ctrl-C"
    assert not (pgdata / "postmaster.pid").exists()
