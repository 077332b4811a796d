"""What the benchmarks share: the service under test, CPU accounting, errors, machine facts,
the frame of a report and the machine-readable result.

A benchmark starts ``training serve`` on a throw-away embedded PostgreSQL, talks to it over
HTTP on loopback and reports, for each measured window, how much CPU the load generator, the
service and PostgreSQL used, because on two cores they compete for the same CPUs.

Serve runs with its rate limits lifted (``BENCH_LIMITS``): a benchmark measures the service,
not the throttle, unless it sets a limit itself through ``running_server(env=...)``. Failed
requests are counted with ``Errors`` (by status, or by exception class for transport
errors), and a measurement with failures says so instead of reporting a rate.

With ``BENCH_RESULT=PATH`` in its environment a benchmark also writes what it measured as
JSON to PATH (``Results``): its measures, the floor each was measured against in the same
run, the issue's target, its errors and the load average. ``scripts/bench/all`` reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import IO

import httpx
import psycopg

from training.infra.database import database_for
from training.infra.settings import Settings

SERVER_START_TIMEOUT = 120.0
SERVER_STOP_TIMEOUT = 60.0
HTTP_TIMEOUT = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The service's three rate limits (TRAINING_RATE_LIMIT* in training.infra.settings), set far
# above what any benchmark sends: its defaults (1,200 requests a minute per client) refused
# most of a load generator's requests with 429.
UNTHROTTLED = "1000000/60"
BENCH_LIMITS: dict[str, str] = {
    "TRAINING_RATE_LIMIT": UNTHROTTLED,
    "TRAINING_RATE_LIMIT_ANONYMOUS": UNTHROTTLED,
    "TRAINING_RATE_LIMIT_TOKEN": UNTHROTTLED,
}


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- CPU accounting -------------------------------------------------------------------------------
# On two cores the load generator, the service and PostgreSQL compete for the same CPUs, so
# every row says who used them; without that a saturated client reads as a slow service.


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): state, ppid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int, *, with_reaped_children: bool = False) -> float:
    fields = _stat_fields(pid)
    # utime, stime, cutime, cstime are fields 14-17 of stat(5), 11-14 after the name.
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def _postgres_cpu_seconds(pg_dir: Path) -> float:
    """The postmaster, its live children, and (via cutime) the backends it already reaped."""
    try:
        postmaster = int((pg_dir / "postmaster.pid").read_text().split()[0])
        total = _cpu_seconds(postmaster, with_reaped_children=True)
    except (OSError, ValueError, IndexError):
        return 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(_stat_fields(int(entry.name))[1]) == postmaster:
                total += _cpu_seconds(int(entry.name))
    return total


@dataclass(frozen=True)
class CpuMeter:
    """CPU seconds used so far by this process, by ``training serve`` and by PostgreSQL."""

    pg_dir: Path
    serve_pid: int | None = None
    # ``training worker`` when the projections run there: counted with serve.
    worker_pid: int | None = None

    def sample(self) -> tuple[float, float, float]:
        serve = 0.0
        for pid in (self.serve_pid, self.worker_pid):
            if pid is not None:
                with contextlib.suppress(OSError):
                    serve += _cpu_seconds(pid)
        return time.process_time(), serve, _postgres_cpu_seconds(self.pg_dir)


@dataclass(frozen=True)
class Window:
    """A measured interval: wall-clock seconds and each party's CPU as a share of one core."""

    seconds: float
    cpu: tuple[float, float, float]


class Stopwatch:
    def __init__(self, meter: CpuMeter) -> None:
        self.meter = meter
        self.cpu = meter.sample()
        self.started = time.perf_counter()

    def stop(self) -> Window:
        seconds = time.perf_counter() - self.started
        used = [end - start for start, end in zip(self.cpu, self.meter.sample(), strict=True)]
        bench, serve, postgres = (value / seconds if seconds else 0.0 for value in used)
        return Window(seconds, (bench, serve, postgres))


# --- errors ---------------------------------------------------------------------------------------

TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass
class Errors:
    """Failed requests by HTTP status (``"429"``) or, for a request that got no answer, by
    exception class (``"ReadTimeout"``). Which statuses are failures is the caller's call."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, failure: int | BaseException, count: int = 1) -> None:
        key = str(failure) if isinstance(failure, int) else type(failure).__name__
        self.counts[key] += count

    def extend(self, other: Errors) -> None:
        self.counts.update(other.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return self.total > 0

    def summary(self) -> str:
        """Each status or exception class times its count (``429`` 3552 times reads
        ``429\N{MULTIPLICATION SIGN}3552``), most frequent first; ``0`` when nothing failed."""
        if not self.counts:
            return "0"
        return ", ".join(f"{key}{TIMES}{count}" for key, count in self.counts.most_common())

    def or_rate(self, rate: str) -> str:
        """``rate`` when nothing failed, else the failures: a rate over a window in which
        requests failed would read as the service's when it is partly the error path's."""
        return rate if not self else f"errors: {self.summary()}"


# --- the service under test -----------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    base_url: str
    env: dict[str, str]
    meter: CpuMeter


def training_command() -> str:
    """The console script next to this interpreter, so the bench runs the venv's service."""
    beside = Path(sys.executable).parent / "training"
    found = str(beside) if beside.exists() else shutil.which("training")
    if not found:
        raise SystemExit("the `training` console script is missing; run pip install -e .")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(process: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"training serve exited early with status {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"training serve was not healthy within {SERVER_START_TIMEOUT:.0f} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGINT is serve's clean shutdown (uvicorn, projection runners, embedded postgres)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=SERVER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        progress("serve did not stop on SIGINT; killing it")
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_server(
    data_dir: Path,
    stdout: IO[bytes],
    stderr: IO[bytes],
    *,
    worker: bool = False,
    env: Mapping[str, str] | None = None,
    demo: bool = False,
) -> Iterator[Server]:
    """``training serve`` on the embedded database; with ``worker``, serve runs the API only
    and a ``training worker`` process runs the projections and the reports; with ``demo``,
    serve loads the demo tenant on its first start.

    Serve's environment is this process's, then ``BENCH_LIMITS`` (so a limit exported in the
    shell does not throttle a benchmark by accident), then ``env``: a benchmark that means to
    meet a limit sets it there."""
    port = free_port()
    serve_env = {
        **os.environ,
        **BENCH_LIMITS,
        **(env or {}),
        "TRAINING_DATA_DIR": str(data_dir),
        "TRAINING_HOST": "127.0.0.1",
        "TRAINING_PORT": str(port),
        "TRAINING_LOG_LEVEL": "warning",
    }
    serve_env.pop("DATABASE_URL", None)  # always the embedded server in the throw-away data dir
    base_url = f"http://127.0.0.1:{port}"
    # A session of its own: a Ctrl-C on the bench must not reach serve twice (once from the
    # terminal, once from stop_process), which would turn the clean shutdown into a hard one.
    serve_args = [
        "serve",
        *([] if demo else ["--no-demo"]),
        *(["--no-projections"] if worker else []),
    ]
    process = subprocess.Popen(
        [training_command(), *serve_args],
        env=serve_env,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )
    worker_process: subprocess.Popen[bytes] | None = None
    try:
        wait_healthy(process, base_url)
        if worker:
            worker_process = subprocess.Popen(
                [training_command(), "worker"],
                env=serve_env,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        meter = CpuMeter(
            data_dir / "pg",
            serve_pid=process.pid,
            worker_pid=worker_process.pid if worker_process else None,
        )
        yield Server(base_url, serve_env, meter)
    finally:
        if worker_process is not None:
            stop_process(worker_process)
        stop_process(process)


def create_operator_client(server: Server) -> tuple[str, str]:
    completed = subprocess.run(
        [training_command(), "operator", "create-client", "--name", "bench"],
        env=server.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if completed.returncode != 0:
        msg = f"operator create-client failed ({completed.returncode}): {completed.stderr[-2000:]}"
        raise RuntimeError(msg)
    values = dict(line.split("=", 1) for line in completed.stdout.splitlines() if "=" in line)
    return values["client_id"], values["client_secret"]


def fetch_token(server: Server, credentials: tuple[str, str]) -> str:
    response = httpx.post(
        f"{server.base_url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=credentials,
        timeout=HTTP_TIMEOUT,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def postgres_facts(admin_url: str) -> str:
    with psycopg.connect(admin_url) as conn:
        values = [
            str(row[0]) if (row := conn.execute(f"SHOW {name}").fetchone()) else "?"
            for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
        ]
    return (
        f"PostgreSQL {values[0]} (embedded pgserver; fsync={values[1]}, "
        f"synchronous_commit={values[2]}, shared_buffers={values[3]})"
    )


def machine_facts(postgres: str, load_before: tuple[float, float, float]) -> list[str]:
    load_after = os.getloadavg()
    libraries = ", ".join(
        f"{name} {version(name)}" for name in ("eventsourcing", "psycopg", "litestar", "uvicorn")
    )
    return [
        f"CPU: {os.cpu_count()} x {cpu_model()}",
        f"Python {platform.python_version()} on {platform.platform()}",
        postgres,
        libraries,
        "load average (1/5/15 min) before: "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + " ".join(f"{x:.2f}" for x in load_after),
    ]


async def probe_health(
    base_url: str, stop: asyncio.Event, samples: list[float], errors: Errors, every: float
) -> None:
    """``GET /healthz`` every ``every`` seconds until ``stop``: its latency in ``samples`` (ms),
    what failed in ``errors``. Shows whether the service stays responsive under a load."""
    async with httpx.AsyncClient(base_url=base_url, timeout=HTTP_TIMEOUT) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = await client.get("/healthz")
            except httpx.HTTPError as error:
                errors.add(error)
            else:
                if response.status_code == 200:
                    samples.append((time.perf_counter() - started) * 1000)
                else:
                    errors.add(response.status_code)
            await asyncio.sleep(every)


# --- the report -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile; None when there is nothing to rank."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(fraction * len(ordered)))) - 1]


def format_ms(value: float | None) -> str:
    if value is None:
        return "-"
    # Sub-millisecond figures need more than one decimal to say anything.
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def cpu_shares(window: Window) -> str:
    """``bench / serve / pg`` as percentages of one core."""
    return " / ".join(f"{share * 100:.0f}" for share in window.cpu)


def command_line() -> str:
    return shlex.join([Path(sys.executable).name, *sys.argv])


def server_postgres_facts(server: Server) -> str:
    with database_for(Settings.from_env(dict(server.env))) as database:
        return postgres_facts(database.admin_url)


def report(
    title: str, body: Sequence[str], postgres: str, load_before: tuple[float, float, float]
) -> str:
    """A benchmark's Markdown: its title and date, the command, ``body``, the machine."""
    return "\n".join(
        [
            f"{title}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"Command: `{command_line()}`",
            "",
            *body,
            "",
            *[f"- {fact}" for fact in machine_facts(postgres, load_before)],
        ]
    )


@contextlib.contextmanager
def serving(
    workdir: Path,
    name: str = "serve",
    *,
    worker: bool = False,
    env: Mapping[str, str] | None = None,
    demo: bool = False,
) -> Iterator[Server]:
    """``running_server`` with its data in ``workdir/name`` and its output in
    ``workdir/name.log``, which ``run_benchmark`` shows when the run stops on an error."""
    data_dir = workdir / name
    data_dir.mkdir(exist_ok=True)
    with (
        (workdir / f"{name}.log").open("ab") as log,
        running_server(data_dir, log, log, worker=worker, env=env, demo=demo) as server,
    ):
        yield server


def stop_orphaned_postgres(pg_dir: Path) -> None:
    """Last resort after a failed run: stop a postmaster that serve left behind."""
    pid_file = pg_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        deadline = time.monotonic() + 30
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)


def show_logs(workdir: Path, lines: int = 10) -> None:
    """The last lines serve wrote, and its last traceback, for a run that stopped."""
    for log in sorted(workdir.glob("*.log")):
        text = log.read_text(errors="replace")
        tail = text.splitlines()[-lines:]
        if "Traceback" in text:
            tail = text[text.rindex("Traceback") :].splitlines()[-30:]
        progress(f"{log.name}, last lines:")
        for line in tail:
            print(f"    {line[:400]}", file=sys.stderr)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_benchmark(run: Callable[[Path], str], results: Results, prefix: str) -> int:
    """Runs a benchmark in a scratch directory: its report on stdout, its result written
    (``Results``); a ``RuntimeError`` stops it with exit status 1, Ctrl-C with 130."""
    # asyncio.run turns the first Ctrl-C into a cancellation of its task, which httpx's
    # transport could swallow: with a handler of our own, Ctrl-C raises at once.
    signal.signal(signal.SIGINT, _interrupt)
    # mkdtemp makes a 0700 directory, but PostgreSQL runs as the pgserver system user and
    # has to reach its data directory inside it.
    workdir = Path(tempfile.mkdtemp(prefix=f"training-bench-{prefix}-", dir="/tmp"))
    workdir.chmod(0o755)
    try:
        print(run(workdir), flush=True)
    except RuntimeError as error:
        progress(f"stopped: {error}")
        show_logs(workdir)
        results.write(failure=str(error))
        return 1
    except KeyboardInterrupt:
        progress("interrupted")
        results.write(failure="interrupted")
        return 130
    finally:
        for pg_dir in workdir.glob("*/pg"):
            stop_orphaned_postgres(pg_dir)
        shutil.rmtree(workdir, ignore_errors=True)
    results.write()
    return 0


# --- the machine-readable result ------------------------------------------------------------------

RESULT_VARIABLE = "BENCH_RESULT"


@dataclass(frozen=True)
class Target:
    """What the issue asks of a measure: its value (or, ``on_ratio``, its ratio to the floor
    measured in the same run) ``>=``, ``<=`` or ``<`` a bound. ``text`` says it for people."""

    op: str
    bound: float
    text: str
    on_ratio: bool = False

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        judged = ratio if self.on_ratio else value
        if judged is None:
            return None
        if self.op == ">=":
            return judged >= self.bound
        if self.op == "<=":
            return judged <= self.bound
        return judged < self.bound


@dataclass
class Measure:
    """One figure of a run, with the floor it is compared with (same run) and the target."""

    name: str
    value: float | None
    unit: str
    floor: float | None = None
    floor_name: str = ""
    target: Target | None = None
    errors: Errors = field(default_factory=Errors)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.floor:
            return None
        return self.value / self.floor

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "floor": self.floor,
            "floor_name": self.floor_name,
            "ratio": self.ratio,
            "target": None if self.target is None else dataclasses.asdict(self.target),
            "met": None if self.target is None else self.target.met(self.value, self.ratio),
            "errors": dict(self.errors.counts),
        }


class Results:
    """What one run measured; written as JSON to the file ``BENCH_RESULT`` names, if any."""

    def __init__(self, benchmark: str) -> None:
        self.benchmark = benchmark
        self.load_before = os.getloadavg()
        self.measures: list[Measure] = []
        self.errors = Errors()  # failures outside any measure (warm-ups, probes, set-up)

    def add(self, measure: Measure) -> Measure:
        self.measures.append(measure)
        return measure

    def all_errors(self) -> Errors:
        total = Errors()
        total.extend(self.errors)
        for measure in self.measures:
            total.extend(measure.errors)
        return total

    def write(self, failure: str | None = None) -> None:
        path = os.environ.get(RESULT_VARIABLE)
        if not path:
            return
        document = {
            "benchmark": self.benchmark,
            "command": command_line(),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "failure": failure,
            "load_before": self.load_before,
            "load_after": os.getloadavg(),
            "errors": dict(self.all_errors().counts),
            "measures": [measure.as_json() for measure in self.measures],
        }
        Path(path).write_text(json.dumps(document, indent=2) + "\n")


class RawConnection:
    """A keep-alive HTTP/1.1 connection written by hand, from ``source`` when given: an HTTP
    client library costs several times the CPU per request, which on two cores would measure
    the load generator rather than the service."""

    def __init__(self, base_url: str, source: str | None = None) -> None:
        host, _, port = base_url.removeprefix("http://").partition(":")
        self.host = host
        address = (source, 0) if source is not None else None
        self.sock = socket.create_connection((host, int(port)), source_address=address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(HTTP_TIMEOUT)
        self.pending = b""
        self.last_head: dict[str, list[str]] = {}
        self.last_body = ""

    def exchange(self, request: bytes) -> int:
        """Sends ``request`` and reads its whole answer; answers its status."""
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.pending:
            self._receive()
        head, _, body = self.pending.partition(b"\r\n\r\n")
        length = 0
        headers: dict[str, list[str]] = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers.setdefault(name.strip().lower().decode(), []).append(value.strip().decode())
            if name.strip().lower() == b"content-length":
                length = int(value)
        self.pending = body
        while len(self.pending) < length:
            self._receive()
        # What the last answer said, for a caller that reads more than its status.
        self.last_head, self.last_body = headers, self.pending[:length].decode(errors="replace")
        self.pending = self.pending[length:]
        return int(head[9:12])

    def get(self, path: str, token: str) -> int:
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        return self.exchange(request.encode())

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.pending += chunk

    def close(self) -> None:
        self.sock.close()
