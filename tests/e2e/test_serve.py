"""``training serve`` as a newcomer runs it: start, use, Ctrl-C, start again."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY, drop_database, fresh_database
from training.demo.world import DEMO_CLIENT_FILE

VENV_BIN = Path(sys.executable).parent
TRAINING = str(VENV_BIN / "training")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="training-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def environment(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        TRAINING_DATA_DIR=str(data_dir), TRAINING_PORT=str(port), TRAINING_LOG_LEVEL="warning"
    )
    env.update(extra)
    return env


class Server:
    """``training serve`` with its output captured, as a service manager or CI would."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env = env
        self.base = f"http://127.0.0.1:{env['TRAINING_PORT']}"
        self.stdout = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read after it exits)
        self.process = subprocess.Popen(
            [TRAINING, "serve", *args],
            env=env,
            stdout=self.stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner = ""
        self.output = ""

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (
                self.process.stderr.read() if self.process.stderr else ""
            )
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail("the service did not start")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.ended()

    def ended(self) -> int:
        """The exit status once the process is gone (a negative signal number if killed)."""
        try:
            code = self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self.banner = self.process.stderr.read() if self.process.stderr else ""
        self.stdout.seek(0)
        self.output = self.stdout.read()
        self.stdout.close()
        return code


def demo_credentials(data_dir: Path) -> dict[str, str]:
    """The demo client the service wrote for its owner (its output was not a terminal)."""
    path = data_dir / DEMO_CLIENT_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return dict(line.split("=", 1) for line in path.read_text().split())


def token_for(base: str, credentials: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
    )


def operator_token(env: dict[str, str], base: str) -> str:
    created = subprocess.run(
        [TRAINING, "operator", "create-client", "--name", "e2e"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    values = dict(line.split("=", 1) for line in created.stdout.split())
    response = httpx.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(values["client_id"], values["client_secret"]),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def test_serve_twice_on_the_embedded_database(data_dir: Path) -> None:
    env = environment(data_dir, free_port())
    first = Server(env)
    try:
        first.wait_ready()
        token = operator_token(env, first.base)
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(
            f"{first.base}/v1/tenants",
            json={"slug": "e2e-corp", "name": "E2E Corp", "seat_limit": 7},
            headers=headers,
        )
        assert created.status_code == 201
        listed = httpx.get(
            f"{first.base}/v1/tenants",
            headers={**headers, "Training-Position": created.headers["training-position"]},
        ).json()
        assert [t["slug"] for t in listed["items"]] == ["acme", "e2e-corp"]
        assert httpx.get(f"{first.base}/schema/openapi.json").json()["openapi"].startswith("3.1")
        demo = demo_credentials(data_dir)
        assert token_for(first.base, demo).status_code == 200
    finally:
        assert first.interrupt() == 0
    # The secret went to the file only: neither the banner nor the logs carry it.
    assert f"client_secret in {data_dir / DEMO_CLIENT_FILE}" in first.banner
    assert f"client_id     {demo['client_id']}" in first.banner
    assert demo["client_secret"] not in first.banner
    assert demo["client_secret"] not in first.output
    assert f"Training service on {first.base}" in first.banner
    assert f"{first.base}/schema/openapi.json" in first.banner
    assert "training operator create-client" in first.banner
    assert "Loaded the demo tenant 'acme'" in first.banner
    assert (data_dir / "pg" / "PG_VERSION").exists()
    assert not (data_dir / "pg" / "postmaster.pid").exists(), (
        "PostgreSQL still running after Ctrl-C"
    )

    second = Server(env)
    try:
        second.wait_ready()
        token = operator_token(env, second.base)
        listed = httpx.get(
            f"{second.base}/v1/tenants", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert [t["slug"] for t in listed["items"]] == ["acme", "e2e-corp"]
        # A lost secret: the demo tenant gets another client, written the same way.
        issued = subprocess.run(
            [TRAINING, "demo", "--new-client"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        again = demo_credentials(data_dir)
        assert again["client_id"] != demo["client_id"]
        assert again["client_secret"] not in issued.stdout + issued.stderr
        assert str(data_dir / DEMO_CLIENT_FILE) in issued.stdout
        assert token_for(second.base, again).status_code == 200
    finally:
        assert second.interrupt() == 0
    assert "Loaded the demo tenant" not in second.banner


def test_serve_uses_database_url_and_starts_no_embedded_server(
    admin_server_url: str, template_db: str, data_dir: Path
) -> None:
    database = fresh_database(admin_server_url, template_db)
    env = environment(
        data_dir, free_port(), DATABASE_URL=database.admin_url, TRAINING_SECRET_KEY=TEST_SECRET_KEY
    )
    server = Server(env)
    try:
        server.wait_ready()
        ready = httpx.get(f"{server.base}/readyz").json()
        assert ready["status"] == "ready"
    finally:
        assert server.interrupt() == 0
        drop_database(admin_server_url, database)
    assert not (data_dir / "pg").exists()
    assert "database           DATABASE_URL" in server.banner


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "training", "--help"], capture_output=True, text=True, check=True
    )
    assert "serve" in result.stdout
    assert "migrate" in result.stdout


def test_a_retry_after_a_crash_between_commit_and_answer_acts_once(data_dir: Path) -> None:
    """The process dies right after a command of a request with an Idempotency-Key commits,
    before the response is stored or sent (a test-only fault: it kills itself with SIGKILL).
    Started again, a retry with the same key answers at once what the first attempt would
    have, and nothing acted twice."""
    port = free_port()
    faulty = environment(data_dir, port, TRAINING_FAULT_KILL_AFTER_COMMIT="1")
    first = Server(faulty, "--no-demo")
    first.wait_ready()
    token = operator_token(faulty, first.base)

    def post(base: str, path: str, body: dict[str, object], key: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
        return httpx.post(f"{base}{path}", json=body, headers=headers, timeout=30)

    tenant = {"slug": "crash-corp", "name": "Crash Corp", "seat_limit": 5}
    with pytest.raises(httpx.HTTPError):  # the connection dies with the process
        post(first.base, "/v1/tenants", tenant, "tenant-1")
    assert first.ended() == -signal.SIGKILL

    # Still with the fault: a retry that only answers what was recorded commits nothing.
    second = Server(faulty, "--no-demo")
    second.wait_ready()
    retried = post(second.base, "/v1/tenants", tenant, "tenant-1")
    assert retried.status_code == 201, retried.text  # not 409: it was registered once
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.json()["slug"] == "crash-corp"
    clients = f"/v1/tenants/{retried.json()['tenant_id']}/clients"
    hris = {"name": "HRIS", "scopes": ["tenant:read"]}
    with pytest.raises(httpx.HTTPError):
        post(second.base, clients, hris, "client-1")
    assert second.ended() == -signal.SIGKILL

    third = Server(environment(data_dir, port), "--no-demo")
    try:
        third.wait_ready()
        started = time.monotonic()
        issued = post(third.base, clients, hris, "client-1")
        # The claim of the dead process is recognised at once, not after a timeout.
        assert time.monotonic() - started < 10
        assert issued.status_code == 201, issued.text
        assert issued.headers["idempotent-replayed"] == "true"
        credentials = issued.json()
        assert token_for(third.base, credentials).status_code == 200
        again = post(third.base, clients, hris, "client-1")
        assert again.status_code == 201
        assert again.json() == credentials
        listed = httpx.get(
            f"{third.base}{clients}",
            headers={
                "Authorization": f"Bearer {token}",
                "Training-Position": issued.headers["training-position"],
            },
        ).json()
        assert [c["name"] for c in listed["items"]] == ["HRIS"]  # registered once
        tenants = httpx.get(
            f"{third.base}/v1/tenants",
            headers={
                "Authorization": f"Bearer {token}",
                "Training-Position": retried.headers["training-position"],
            },
        ).json()
        assert [t["slug"] for t in tenants["items"]] == ["crash-corp"]
    finally:
        assert third.interrupt() == 0


def test_the_operator_command_names_the_port_serve_listens_on(data_dir: Path) -> None:
    port = free_port()
    # The environment names another port: `--port` wins, and the example must follow it.
    env = environment(data_dir, free_port())
    server = Server(env, "--no-demo", "--port", str(port))
    server.base = f"http://127.0.0.1:{port}"
    try:
        server.wait_ready()
        created = subprocess.run(
            [TRAINING, "operator", "create-client", "--name", "ops"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        assert f"http://127.0.0.1:{port}/oauth2/token" in created.stderr
    finally:
        assert server.interrupt() == 0
    assert not (data_dir / "serving.url").exists()
