"""Two ``training serve`` processes behind one database, as a deployment that has grown.

Each process is stateless but for caches: what must hold across them lives in PostgreSQL.
A write through one is read through the other; one retry key acts once whichever process
each attempt reaches; a caller's rate limit holds across both; each projection is run by
exactly one of them, and when that process is killed the other takes it over.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY, drop_database, fresh_database
from tests.e2e.test_serve import Server, environment, free_port, operator_token
from tests.waiting import wait_until

TAKE_OVER_TIMEOUT = 60.0
# Per caller, shared by the two processes; each draws blocks of 1/16 of it (ADR 0035).
RATE_LIMIT = 64
BLOCK = RATE_LIMIT // 16


@pytest.fixture
def pair(admin_server_url: str, template_db: str, tmp_path: Path) -> Iterator[list[Server]]:
    database = fresh_database(admin_server_url, template_db)
    servers: list[Server] = []
    ports = [free_port(), free_port()]
    try:
        for port in ports:
            env = environment(
                tmp_path,
                port,
                DATABASE_URL=database.admin_url,
                TRAINING_SECRET_KEY=TEST_SECRET_KEY,
                # Behind one load balancer: one public URL, the issuer of every token.
                TRAINING_PUBLIC_URL=f"http://127.0.0.1:{ports[0]}",
                TRAINING_RATE_LIMIT=f"{RATE_LIMIT}/60",
            )
            servers.append(Server(env, "--no-demo"))
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.interrupt()
        drop_database(admin_server_url, database)


def runners(server: Server) -> dict[str, str]:
    ready = httpx.get(f"{server.base}/readyz", timeout=30).json()
    return {view["name"]: view["runner"] for view in ready["projections"]}


def each_projection_runs_once(servers: list[Server]) -> bool:
    seen = [runners(server) for server in servers]
    return all(sorted(answer[name] for answer in seen) == ["elsewhere", "here"] for name in seen[0])


def written_and_read(writer: Server, reader: Server, headers: dict[str, str], name: str) -> None:
    """A tenant registered through ``writer`` is read through ``reader`` at its position."""
    created = httpx.post(
        f"{writer.base}/v1/tenants",
        json={"slug": f"{name.lower()}-{uuid.uuid4().hex[:6]}", "name": name, "seat_limit": 5},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    read = httpx.get(
        f"{reader.base}{created.headers['location']}",
        headers={**headers, "Training-Position": created.headers["training-position"]},
        timeout=30,
    )
    assert read.status_code == 200, read.text
    assert read.json()["name"] == name


def test_two_processes_share_one_database(pair: list[Server]) -> None:
    first, second = pair
    token = operator_token(first.env, first.base)
    headers = {"Authorization": f"Bearer {token}"}
    wait_until(lambda: each_projection_runs_once(pair), TAKE_OVER_TIMEOUT, "one runner each")

    # A write through one process is read through the other at its position.
    written_and_read(first, second, headers, "Two")

    # One Idempotency-Key sent to both at once acts once: the same tenant, however answered.
    slug = f"once-{uuid.uuid4().hex[:6]}"
    keyed = {**headers, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    body = {"slug": slug, "name": "Once", "seat_limit": 5}

    def register(server: Server) -> httpx.Response:
        def attempt() -> httpx.Response | None:
            answer = httpx.post(f"{server.base}/v1/tenants", json=body, headers=keyed, timeout=30)
            return None if answer.status_code == 409 else answer  # in progress: retry

        return wait_until(attempt, 30, "the key's first request to end", poll=0.2)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(register, [first, second, first, second]))
    assert {answer.status_code for answer in answers} == {201}, [a.text for a in answers]
    assert len({answer.json()["tenant_id"] for answer in answers}) == 1
    listed = httpx.get(
        f"{second.base}/v1/tenants",
        params={"limit": 100},
        headers={**headers, "Training-Position": answers[0].headers["training-position"]},
        timeout=30,
    ).json()
    assert [tenant["slug"] for tenant in listed["items"]].count(slug) == 1

    # One caller's limit holds across both processes: within the blocks each holds.
    other = {"Authorization": f"Bearer {operator_token(second.env, second.base)}"}
    answers = [
        (server, httpx.get(f"{server.base}/v1/tenants", headers=other, timeout=30))
        for _ in range(RATE_LIMIT)
        for server in pair
    ]
    statuses = [answer.status_code for _, answer in answers]
    admitted = statuses.count(200)
    # Tokens come back at RATE_LIMIT a minute while the loop runs: a few more may pass.
    assert RATE_LIMIT - 2 * BLOCK <= admitted <= RATE_LIMIT + 2 * BLOCK + 8, statuses
    assert statuses.count(429) == len(statuses) - admitted
    for server in pair:  # each process refuses, as a problem with Retry-After
        refused = [
            answer for where, answer in answers if where is server and answer.status_code == 429
        ]
        assert refused, f"{server.base} refused nothing"
        assert refused[0].headers["content-type"] == "application/problem+json"
        assert int(refused[0].headers["retry-after"]) >= 1

    # Killed, one process leaves its projections to the other, which runs them all.
    first.process.send_signal(signal.SIGKILL)
    first.ended()

    def all_here() -> bool:
        return set(runners(second).values()) == {"here"}

    wait_until(all_here, TAKE_OVER_TIMEOUT, "the survivor to run every projection")
    written_and_read(second, second, headers, "After")
