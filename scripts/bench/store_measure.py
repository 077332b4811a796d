"""A step of ``store_growth.py``: how its store was filled, settled and what it holds, then
the measurement: one client sends one request at a time, per operation a window of
``--samples`` requests after ``--warmup`` unmeasured ones."""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from harness import (
    HTTP_TIMEOUT,
    Errors,
    Server,
    Stopwatch,
    Window,
    format_ms,
    percentile,
    progress,
)
from tenants import Tenant, checked

from training.infra.database import Database

LIST_LIMIT = 50
READY_POLL_SECONDS = 2.0


def wait_for_views(server: Server, label: str) -> float:
    """Seconds until ``/readyz`` shows every view and the planning process without a lag."""
    started = time.perf_counter()
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as http:
        while True:
            body = checked(http.get("/readyz")).json()
            stopped = [p["name"] for p in body["projections"] if p["status"] != "ok"]
            if stopped:
                # A view that quarantined filler events would mean the filler is not valid.
                raise RuntimeError(f"{label}: views not ok: {stopped}: {body}")
            behind = {p["name"]: p["lag"] for p in body["projections"] if p["lag"]}
            if not behind:
                return time.perf_counter() - started
            lags = ", ".join(f"{name} {lag:,}" for name, lag in sorted(behind.items()))
            progress(f"{label}: views catching up ({lags} events behind; 100,000 at most shown)")
            time.sleep(READY_POLL_SECONDS)


# --- a step: how its store was filled and what it holds -----------------------------------------


@dataclass
class Fill:
    """How one step's store was filled, and what it holds once settled."""

    part: str
    step: str
    method: str
    written: int  # events (A) or members (B) the fill wrote
    unit: str
    fill_seconds: float
    catch_up_seconds: float
    vacuum_seconds: float
    store_events: int = 0
    tenant_members: int = 0
    table_mb: dict[str, float] = field(default_factory=dict)
    load: float = 0.0

    @property
    def rate(self) -> float:
        return self.written / self.fill_seconds if self.fill_seconds else 0.0


def settle(database: Database) -> float:
    """VACUUM (ANALYZE) of the whole database, then a CHECKPOINT: visibility and statistics as
    autovacuum would have left them in a store that grew over months, and the pages the fill
    dirtied written out, so the checkpointer does not write a gigabyte during the measurement
    (it slowed even ``/healthz`` by a quarter at the 1M step)."""
    started = time.perf_counter()
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")
    return time.perf_counter() - started


SIZED_TABLES = ("training_events", "members", "people", "audit_log")


def describe_store(database: Database, fill: Fill, tenant_id: uuid.UUID | None) -> None:
    """Events in the store, the measured tenant's members and the biggest tables' sizes
    (read as the admin role, which row-level security does not restrict)."""
    with psycopg.connect(database.admin_url) as conn:
        row = conn.execute("SELECT count(*) FROM training.training_events").fetchone()
        fill.store_events = int(row[0]) if row else 0
        if tenant_id is not None:
            row = conn.execute(
                "SELECT count(*) FROM training.members WHERE tenant_id = %s", (tenant_id,)
            ).fetchone()
            fill.tenant_members = int(row[0]) if row else 0
        for table in SIZED_TABLES:
            row = conn.execute(
                "SELECT pg_total_relation_size(%s::regclass)", (f"training.{table}",)
            ).fetchone()
            fill.table_mb[table] = (int(row[0]) if row else 0) / 2**20
    fill.load = os.getloadavg()[0]


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Measured:
    part: str
    step: str
    operation: str
    latencies_ms: list[float]
    errors: Errors
    window: Window
    store_events: int
    tenant_members: int
    load: float

    @property
    def rate(self) -> float:
        done = len(self.latencies_ms)
        return done / self.window.seconds if self.window.seconds else 0.0

    def percentile(self, fraction: float) -> float | None:
        return percentile(self.latencies_ms, fraction)


Request = tuple[str, str, dict[str, Any] | None, int]  # method, path, JSON body, expected status


def send_all(
    http: httpx.Client, requests: Iterator[Request], count: int, server: Server | None = None
) -> tuple[list[float], Errors, Window | None, list[httpx.Response]]:
    """Sends ``count`` requests one at a time; with ``server``, times them as a window."""
    latencies: list[float] = []
    errors = Errors()
    answers: list[httpx.Response] = []
    watch = Stopwatch(server.meter) if server is not None else None
    for _ in range(count):
        method, path, body, expected = next(requests)
        started = time.perf_counter()
        try:
            response = http.request(method, path, json=body)
        except httpx.HTTPError as error:
            errors.add(error)
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != expected:
            errors.add(response.status_code)
            continue
        latencies.append(elapsed)
        answers.append(response)
    return latencies, errors, watch.stop() if watch is not None else None, answers


def registrations(prefix: str) -> Iterator[Request]:
    number = 0
    while True:
        external_id = f"{prefix}{number:06d}"
        body = {
            "external_id": external_id,
            "display_name": f"Engineer {external_id}",
            "email": f"{external_id.lower()}@measure.example",
            "roles": ["engineer"],
        }
        yield ("POST", "/v1/members", body, 201)
        number += 1


def updates(member_ids: Sequence[str]) -> Iterator[Request]:
    """Round robin over the members, each PATCH a real change: the job title flips."""
    titles = dict.fromkeys(member_ids, "Engineer")
    while True:
        for member_id in member_ids:
            titles[member_id] = "Engineer A" if titles[member_id] != "Engineer A" else "Engineer B"
            body = {"job_title": titles[member_id]}
            yield ("PATCH", f"/v1/members/{member_id}", body, 200)


def lists() -> Iterator[Request]:
    while True:
        yield ("GET", f"/v1/members?limit={LIST_LIMIT}", None, 200)


def health() -> Iterator[Request]:
    while True:
        yield ("GET", "/healthz", None, 200)


REFERENCE = "GET /healthz (reference)"
OPERATIONS = (
    "POST /v1/members",
    "PATCH /v1/members/{id}",
    f"GET /v1/members?limit={LIST_LIMIT}",
    # No authentication and no database: what the machine's other load does to a request
    # that the store's size cannot change. On a shared machine it tells noise from growth.
    REFERENCE,
)


def measure_step(
    server: Server,
    tenant: Tenant,
    fill: Fill,
    args: argparse.Namespace,
    tag: str,
) -> list[Measured]:
    """Registers the step's ``--small-members`` (unmeasured), then measures the three
    operations, ``--samples`` each, after ``--warmup`` unmeasured requests of each."""
    results: list[Measured] = []
    with tenant.client() as http:
        _, errors, _, answers = send_all(http, registrations(f"S{tag}-"), args.small_members)
        if errors:
            raise RuntimeError(f"registering the step's members failed: {errors.summary()}")
        member_ids = [str(answer.json()["member_id"]) for answer in answers]
        fill.tenant_members += len(member_ids)  # the tenant's size as the measuring begins
        streams = (registrations(f"P{tag}-"), updates(member_ids), lists(), health())
        for operation, stream in zip(OPERATIONS, streams, strict=True):
            send_all(http, stream, args.warmup)
            progress(f"{fill.part} {fill.step}: {args.samples} x {operation}")
            latencies, errors, window, _ = send_all(http, stream, args.samples, server)
            assert window is not None
            result = Measured(
                fill.part,
                fill.step,
                operation,
                latencies,
                errors,
                window,
                fill.store_events,
                fill.tenant_members,
                os.getloadavg()[0],
            )
            progress(
                f"  {errors.or_rate(f'{result.rate:.0f}/s')}, "
                f"p50 {format_ms(result.percentile(0.5))} ms, "
                f"p99 {format_ms(result.percentile(0.99))} ms"
            )
            results.append(result)
    return results
