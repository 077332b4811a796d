"""Page benchmark (issue #15, item 11): the server time of the web app's pages, and of an
assessment answer's round trip, on the demo tenant and on a tenant of ``--members`` people.

One run, on a fresh embedded PostgreSQL behind ``training serve`` with the demo tenant loaded:

1. a second tenant of ``--members`` people, imported from CSV (one manager per ten);
2. sessions sealed with the service's own key, as the sign-in gives them: a demo engineer
   with a planned track, a demo manager, and an engineer and a manager of the large tenant;
3. per tenant and page, ``--requests`` GETs one after another on a keep-alive connection
   (the time from the request's first byte to the answer's last, on loopback: the server's
   time plus a few tens of microseconds), after ``--warmup`` unmeasured ones;
4. an assessment taken through the pages: each answer is a form POST (303) and the GET of
   the next item, timed together as the browser would wait for them.

It prints a Markdown table of p50 / p95 / max per page and the verdict against the issue's
targets (p95 <= 50 ms per page, <= 100 ms per answer). A measurement, not a test. Usage::

    PYTHONPATH=src:scripts/bench .venv/bin/python scripts/bench/pages.py \
        [--members 10000] [--requests 200] [--warmup 20]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg
from harness import (
    HTTP_TIMEOUT,
    Measure,
    RawConnection,
    Results,
    Server,
    Target,
    percentile,
    progress,
    report,
    run_benchmark,
    server_postgres_facts,
    serving,
)
from member_import import members_csv, run_import
from tenants import Operator

from training.demo.world import DEMO_SLUG
from training.identity.handlers.sso import SESSION_COOKIE, SESSION_PURPOSE, SESSION_TTL
from training.identity.oidc import CookieSealer
from training.infra.database import database_for
from training.infra.secretbox import SecretBox
from training.infra.settings import Settings
from training.tenancy.domain import Tenant

PAGE_TARGET_MS = 50.0
ANSWER_TARGET_MS = 100.0
ITEM = re.compile(r'name="item_id" value="([^"]+)"')
OPTION = re.compile(r'name="answer" value="([^"]+)"')
ORDER = re.compile(r'name="(order-[^"]+)"[^>]*value="(\d+)"')
SKILLS = ("git", "sql", "python", "http-apis", "kubernetes", "automated-testing")
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


@dataclass
class Visitor:
    label: str
    tenant_id: uuid.UUID
    member_id: uuid.UUID
    cookie: str = ""


@dataclass
class Timing:
    tenant: str
    what: str
    samples: list[float]

    def ms(self, share: float) -> float:
        return (percentile(self.samples, share) or 0.0) * 1000


class Browser:
    """A keep-alive connection carrying a visitor's cookies, written by hand (an HTTP client
    library would measure itself on two cores)."""

    def __init__(self, server: Server, visitor: Visitor) -> None:
        self.connection = RawConnection(server.base_url)
        self.cookies = {SESSION_COOKIE: visitor.cookie}

    def request(self, method: str, path: str, body: str = "") -> tuple[int, str, dict[str, str]]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.connection.host}\r\n"
            f"Accept: text/html\r\nCookie: {cookie}\r\n"
        )
        if method == "POST":
            head += (
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body.encode())}\r\n"
            )
        status = self.connection.exchange((head + "\r\n" + body).encode())
        headers, text = self.connection.last_head, self.connection.last_body
        for value in headers.get("set-cookie", []):
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return status, text, {k: v[0] for k, v in headers.items()}

    def close(self) -> None:
        self.connection.close()


def seal_sessions(server: Server, visitors: Sequence[Visitor]) -> None:
    box = SecretBox.from_settings(Settings.from_env(dict(server.env)))
    sealer = CookieSealer(box)
    for visitor in visitors:
        session = {"member_id": str(visitor.member_id), "tenant_id": str(visitor.tenant_id)}
        visitor.cookie = sealer.seal(SESSION_PURPOSE, session, SESSION_TTL)


def demo_visitors(server: Server, timeout: float = 120.0) -> list[Visitor]:
    """A demo engineer with a track and a demo manager with reports (once the views hold
    them: the demo's reviews are planned in the background)."""
    settings = Settings.from_env(dict(server.env))
    tenant_id = Tenant.create_id(DEMO_SLUG)
    deadline = time.monotonic() + timeout
    with database_for(settings) as database, psycopg.connect(database.admin_url) as conn:
        while True:
            engineer = conn.execute(
                "SELECT t.member_id FROM training.tracks t JOIN training.members m "
                "USING (member_id) WHERE m.tenant_id = %s ORDER BY t.member_id LIMIT 1",
                (tenant_id,),
            ).fetchone()
            manager = conn.execute(
                "SELECT manager_id FROM training.members WHERE tenant_id = %s "
                "AND manager_id IS NOT NULL GROUP BY manager_id ORDER BY count(*) DESC LIMIT 1",
                (tenant_id,),
            ).fetchone()
            if engineer is not None and manager is not None:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the demo tenant has no planned track or no manager")
            time.sleep(0.5)
    return [
        Visitor("engineer", tenant_id, engineer[0]),
        Visitor("manager", tenant_id, manager[0]),
    ]


def large_tenant(server: Server, members: int) -> list[Visitor]:
    operator = Operator(server)
    tenant = operator.tenant(members + 10, scopes=("members:read", "members:write"))
    token = tenant.token()
    run = asyncio.run(run_import(server, token, members_csv(0, members), "import"))
    progress(f"imported {run.rows} members")
    found = {}
    with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT) as http:
        for external_id in ("M000001", "M000000"):
            answer = http.get(
                "/v1/members",
                params={"query": external_id, "limit": 1},
                headers={"Authorization": f"Bearer {token}"},
            )
            answer.raise_for_status()
            found[external_id] = uuid.UUID(answer.json()["items"][0]["member_id"])
    return [
        Visitor("engineer", tenant.tenant_id, found["M000001"]),
        Visitor("manager", tenant.tenant_id, found["M000000"]),
    ]


def time_pages(
    server: Server, visitor: Visitor, tenant: str, paths: Sequence[str], args: argparse.Namespace
) -> list[Timing]:
    browser = Browser(server, visitor)
    timings = []
    try:
        for path in paths:
            samples = []
            for index in range(args.warmup + args.requests):
                started = time.perf_counter()
                status, _, _ = browser.request("GET", path)
                elapsed = time.perf_counter() - started
                if status != 200:
                    raise RuntimeError(f"GET {path} as the {visitor.label}: {status}")
                if index >= args.warmup:
                    samples.append(elapsed)
            timings.append(Timing(tenant, f"GET {path} ({visitor.label})", samples))
    finally:
        browser.close()
    return timings


def time_answers(
    server: Server, visitor: Visitor, tenant: str, skills: Sequence[str]
) -> Timing | None:
    """An assessment taken through the pages: POST the answer, GET the next item. The first
    of ``skills`` the visitor may start (not in its retake cool-down); None if none."""
    browser = Browser(server, visitor)
    try:
        _, page, _ = browser.request("GET", "/assessments")
        token = CSRF.findall(page)[0]
        for skill in skills:
            status, _, headers = browser.request(
                "POST", "/assessments", urlencode({"skill": skill, "_csrf_token": token})
            )
            if status == 303:
                break
            if status != 409:  # 409: taken lately, in its cool-down
                raise RuntimeError(f"starting an assessment of {skill}: {status}")
        else:
            return None
        attempt = headers["location"].removeprefix(server.base_url)
        _, page, _ = browser.request("GET", attempt)
        samples = []
        while ITEM.search(page):
            form = {"_csrf_token": token, "item_id": ITEM.findall(page)[0]}
            order = ORDER.findall(page)
            form.update(dict(order) if order else {"answer": OPTION.findall(page)[0]})
            started = time.perf_counter()
            status, _, _ = browser.request("POST", f"{attempt}/answers", urlencode(form))
            if status != 303:
                raise RuntimeError(f"an answer: {status}")
            _, page, _ = browser.request("GET", attempt)
            samples.append(time.perf_counter() - started)
        return Timing(tenant, f"answer + next item ({skill})", samples)
    finally:
        browser.close()


def run(args: argparse.Namespace, workdir: Path, results: Results) -> str:
    timings: list[Timing] = []
    with serving(workdir, demo=True) as server:
        demo = demo_visitors(server)
        big = large_tenant(server, args.members)
        seal_sessions(server, [*demo, *big])
        for tenant, (engineer, manager) in ((DEMO_SLUG, demo), (f"{args.members} members", big)):
            progress(f"{tenant}: pages")
            timings += time_pages(server, engineer, tenant, ["/", "/assessments"], args)
            timings += time_pages(server, manager, tenant, ["/team"], args)
            remaining = list(SKILLS)
            for _ in range(2):
                taken = time_answers(server, engineer, tenant, remaining)
                if taken is None:
                    raise RuntimeError(f"{tenant}: the engineer may start no assessment")
                remaining.remove(taken.what.split("(")[1].rstrip(")"))
                timings.append(taken)
        postgres = server_postgres_facts(server)
    body = [
        "| tenant | request | n | p50 ms | p95 ms | max ms |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for timing in timings:
        body.append(
            f"| {timing.tenant} | {timing.what} | {len(timing.samples)} | "
            f"{timing.ms(0.5):.1f} | {timing.ms(0.95):.1f} | {max(timing.samples) * 1000:.1f} |"
        )
        target = ANSWER_TARGET_MS if timing.what.startswith("answer") else PAGE_TARGET_MS
        results.add(
            Measure(
                f"{timing.tenant}: {timing.what}, p95",
                timing.ms(0.95),
                "ms",
                target=Target("<=", target, f"<= {target:.0f} ms"),
            )
        )
    return report("Page benchmark", body, postgres, results.load_before)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    if min(args.members, args.requests) < 1 or args.warmup < 0:
        parser.error("--members and --requests are at least 1, --warmup at least 0")
    results = Results("pages")
    return run_benchmark(lambda workdir: run(args, workdir, results), results, "pages")


if __name__ == "__main__":
    raise SystemExit(main())
