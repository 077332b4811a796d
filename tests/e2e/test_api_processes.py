"""``training serve --processes 2``: two API processes behind one port, started and stopped by
serve, one of them running the projections."""

from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY, drop_database, fresh_database
from tests.e2e.test_serve import Server, environment, free_port, operator_token
from tests.waiting import wait_until

# Fresh connections until both processes have answered: the kernel picks a listener per
# connection by a hash of its addresses, so each lands on either with one chance in two.
CONNECTIONS = 60


@pytest.fixture
def serve(admin_server_url: str, template_db: str, tmp_path: Path) -> Iterator[Server]:
    database = fresh_database(admin_server_url, template_db)
    env = environment(
        tmp_path,
        free_port(),
        DATABASE_URL=database.admin_url,
        TRAINING_SECRET_KEY=TEST_SECRET_KEY,
        TRAINING_API_PROCESSES="2",
    )
    server = Server(env, "--no-demo")
    try:
        server.wait_ready()
        yield server
    finally:
        if server.process.poll() is None:
            server.interrupt()
        drop_database(admin_server_url, database)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def listening_sockets(port: int) -> set[str]:
    """The inodes of the TCP sockets listening on ``port`` (any address)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def listens(pid: int, inodes: set[str]) -> bool:
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            link = os.readlink(fd)
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


def api_process(server: Server) -> int:
    """The other API process: serve's child that listens on the port (its other children, the
    render processes and multiprocessing's resource tracker, listen on nothing)."""

    def listening() -> int | None:
        inodes = listening_sockets(int(server.env["TRAINING_PORT"]))
        return next((pid for pid in children(server.process.pid) if listens(pid, inodes)), None)

    return wait_until(listening, 60, "the second API process")


def runners_seen(server: Server) -> set[str]:
    """What each process says of the projections, over fresh connections."""
    seen = set()
    for _ in range(CONNECTIONS):
        with httpx.Client(timeout=30) as client:  # a new connection each time
            answer = client.get(f"{server.base}/readyz")
        assert answer.status_code == 200, answer.text
        seen |= {view["runner"] for view in answer.json()["projections"]}
        if seen == {"here", "elsewhere"}:
            break
    return seen


def test_two_processes_answer_on_one_port_and_one_runs_the_projections(serve: Server) -> None:
    # Both answer, and only one of them runs the projections: every /readyz says "here" of
    # all of them (serve) or "elsewhere" of all of them (the API-only process).
    wait_until(lambda: runners_seen(serve) == {"here", "elsewhere"}, 60, "both processes")

    # A write through whichever process, read through whichever, at its position.
    headers = {"Authorization": f"Bearer {operator_token(serve.env, serve.base)}"}
    for number in range(6):
        with httpx.Client(timeout=30, headers=headers) as client:
            created = client.post(
                f"{serve.base}/v1/tenants",
                json={"slug": f"p{number}-{uuid.uuid4().hex[:6]}", "name": "P", "seat_limit": 5},
            )
        assert created.status_code == 201, created.text
        with httpx.Client(timeout=30, headers=headers) as client:
            read = client.get(
                f"{serve.base}{created.headers['location']}",
                headers={"Training-Position": created.headers["training-position"]},
            )
        assert read.status_code == 200, read.text


def test_a_killed_api_process_is_started_again(serve: Server) -> None:
    killed = api_process(serve)
    os.kill(killed, signal.SIGKILL)
    restarted = wait_until(
        lambda: next((pid for pid in [api_process(serve)] if pid != killed), None),
        60,
        "a new API process",
    )
    assert restarted != killed
    wait_until(lambda: runners_seen(serve) == {"here", "elsewhere"}, 60, "both processes again")
    assert serve.process.poll() is None


def test_sigterm_stops_every_process_and_frees_the_port(serve: Server) -> None:
    other = api_process(serve)
    serve.process.send_signal(signal.SIGTERM)
    assert serve.ended() == 0, serve.banner
    assert "stopped" in serve.banner
    wait_until(lambda: not Path(f"/proc/{other}").exists(), 30, "the API process to stop")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{serve.base}/healthz", timeout=5)


def test_the_api_process_stops_when_serve_is_killed(serve: Server) -> None:
    other = api_process(serve)
    serve.process.send_signal(signal.SIGKILL)
    serve.ended()
    wait_until(lambda: not Path(f"/proc/{other}").exists(), 30, "the orphaned API process to stop")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{serve.base}/healthz", timeout=5)
