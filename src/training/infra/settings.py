"""Settings, read once from the environment.

- ``DATABASE_URL``: an admin connection used by ``migrate``; unset means an embedded
  PostgreSQL with its data under ``.data/``.
- ``TRAINING_READ_DATABASE_URL`` (unset): a streaming replica of that database (same roles,
  same passwords); queries read from it, honouring ``Training-Position`` against its own
  copy of the views. Commands, the projections and the background jobs use the primary.
- ``TRAINING_DATA_DIR`` (``.data``): the embedded database and the local secret key.
- ``TRAINING_DB_APP_PASSWORD``: password of the ``training_app`` role on an external server.
- ``TRAINING_DB_WORKER_PASSWORD``: password of the ``training_worker`` role (the background
  jobs that cross tenants: report queue, unfinished imports, idempotency purge) on an
  external server; ``migrate`` sets it, like the app role's.
- ``TRAINING_SECRET_KEY``: base64 key that encrypts signing keys at rest; for the embedded
  database it is created in ``.data/secret.key`` when unset.
- ``TRAINING_HOST`` / ``TRAINING_PORT`` (``127.0.0.1`` / ``8000``): where ``serve`` listens.
- ``TRAINING_PUBLIC_URL`` (``http://HOST:PORT``): the base URL, also the token issuer.
- ``TRAINING_ENV`` (``development``): ``production`` refuses OAuth2 over plain HTTP.
- ``TRAINING_TOKEN_TTL`` (``900``): access token lifetime in seconds.
- ``TRAINING_READ_WAIT`` (``2.0``): how long a query waits for ``Training-Position``.
- ``TRAINING_COMMAND_RETRY_BUDGET`` (``2.5``): seconds a command keeps running again while
  other writers change the same aggregates first (in turn with this process's other commands
  on them, with random growing delays against other processes); after that it answers 409
  ``concurrent-modification``.
- ``TRAINING_LOG_LEVEL`` (``info``).
- ``TRAINING_RATE_LIMIT`` (``1200/60``): requests per seconds for each client or person.
  This and the two address limits below hold for all the processes on the database
  together: each process draws 1/16 of a limit at a time from a bucket in the database,
  so a burst may pass a limit by that much per process; while the database cannot be
  reached, each process limits on its own (ADR 0035).
- ``TRAINING_IDEMPOTENCY_TTL`` (``86400``): seconds an ``Idempotency-Key`` and its stored
  response are kept; a retry after that acts as a new request. Expired records are never
  replayed and are purged in the background by ``serve`` and ``worker``.
- ``TRAINING_SCIM_GROUPS`` (``teams``): what SCIM Groups are, the tenant's teams or its
  cohorts (``cohorts``); any other value is refused at start.
- ``TRAINING_RENDER_PROCESSES`` (the number of CPU cores): how many reports a ``serve`` or
  ``worker`` process renders at once, each in a child process of its own (1 to 64).
- ``TRAINING_API_PROCESSES`` (``1``): how many processes ``serve`` answers the API with, on
  one port (1 to 64). The first also runs the projections and the report worker, unless
  ``--no-projections``; the others answer requests only. One Python process answers on one
  core at a time, so a machine with more cores serves more with more processes.
- ``TRAINING_TEST_RENDER_DELAY`` (unset): tests only. Seconds the report render process waits
  before each render, so a test can stop or kill a worker while a render is in progress.
- ``TRAINING_FAULT_KILL_AFTER_COMMIT`` (unset): tests only. ``1`` makes the process kill
  itself (SIGKILL) when a request with an ``Idempotency-Key`` has committed a command and is
  about to answer, to prove that a retry after such a crash acts once.
- ``TRAINING_RATE_LIMIT_ANONYMOUS`` (``60/60``): requests per seconds from one client
  address without valid credentials: calendar feeds, single sign-on, discovery documents,
  and every failed authentication (ADR 0018).
- ``TRAINING_RATE_LIMIT_TOKEN`` (``30/60``): requests per seconds from one client address
  to the token endpoint.
- ``TRAINING_TRUSTED_PROXIES`` (empty): comma-separated addresses or networks (CIDR) of the
  reverse proxies in front of the service; only a request from one of them has its
  ``X-Forwarded-For`` believed when the client address is needed for a rate limit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

AUDIENCE = "training-api"


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    read_database_url: str | None = None
    data_dir: Path = Path(".data")
    app_db_password: str | None = None
    worker_db_password: str | None = None
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    environment: str = "development"
    token_ttl: int = 900
    read_wait: float = 2.0
    command_retry_budget: float = 2.5
    log_level: str = "info"
    audience: str = AUDIENCE
    db_pool_size: int = 8
    idempotency_ttl: int = 86400
    fault_kill_after_commit: bool = False
    rate_limit: str = "1200/60"
    rate_limit_anonymous: str = "60/60"
    test_render_delay: float = 0.0
    render_processes: int = 1
    api_processes: int = 1
    scim_groups: str = "teams"
    rate_limit_token: str = "30/60"  # noqa: S105 (a rate, not a secret)
    trusted_proxies: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        host = env.get("TRAINING_HOST", "127.0.0.1")
        port = int(env.get("TRAINING_PORT", "8000"))
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            read_database_url=env.get("TRAINING_READ_DATABASE_URL") or None,
            data_dir=Path(env.get("TRAINING_DATA_DIR", ".data")).resolve(),
            app_db_password=env.get("TRAINING_DB_APP_PASSWORD") or None,
            worker_db_password=env.get("TRAINING_DB_WORKER_PASSWORD") or None,
            secret_key=env.get("TRAINING_SECRET_KEY") or None,
            host=host,
            port=port,
            public_url=env.get("TRAINING_PUBLIC_URL", "").rstrip("/"),
            environment=env.get("TRAINING_ENV", "development"),
            token_ttl=int(env.get("TRAINING_TOKEN_TTL", "900")),
            read_wait=float(env.get("TRAINING_READ_WAIT", "2.0")),
            command_retry_budget=float(env.get("TRAINING_COMMAND_RETRY_BUDGET", "2.5")),
            log_level=env.get("TRAINING_LOG_LEVEL", "info"),
            rate_limit=env.get("TRAINING_RATE_LIMIT", "1200/60"),
            idempotency_ttl=int(env.get("TRAINING_IDEMPOTENCY_TTL", "86400")),
            fault_kill_after_commit=env.get("TRAINING_FAULT_KILL_AFTER_COMMIT") == "1",
            rate_limit_anonymous=env.get("TRAINING_RATE_LIMIT_ANONYMOUS", "60/60"),
            test_render_delay=float(env.get("TRAINING_TEST_RENDER_DELAY") or 0.0),
            render_processes=_render_processes(env.get("TRAINING_RENDER_PROCESSES", "")),
            api_processes=_process_count(
                "TRAINING_API_PROCESSES", env.get("TRAINING_API_PROCESSES", ""), default=1
            ),
            scim_groups=_scim_groups(env.get("TRAINING_SCIM_GROUPS", "")),
            rate_limit_token=env.get("TRAINING_RATE_LIMIT_TOKEN", "30/60"),
            trusted_proxies=tuple(
                entry.strip()
                for entry in env.get("TRAINING_TRUSTED_PROXIES", "").split(",")
                if entry.strip()
            ),
        )


MAX_PROCESSES = 64


def _render_processes(value: str) -> int:
    """One render process per core by default: rendering is CPU-bound."""
    cores = max(1, min(os.cpu_count() or 1, MAX_PROCESSES))
    return _process_count("TRAINING_RENDER_PROCESSES", value, default=cores)


def _process_count(name: str, value: str, *, default: int) -> int:
    if not value.strip():
        return default
    try:
        count = int(value)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_PROCESSES:
        msg = f"{name} is a whole number from 1 to {MAX_PROCESSES}, not {value!r}"
        raise ValueError(msg)
    return count


def _scim_groups(value: str) -> str:
    groups = value.strip().lower() or "teams"
    if groups not in ("teams", "cohorts"):
        msg = f"TRAINING_SCIM_GROUPS is 'teams' or 'cohorts', not {value!r}"
        raise ValueError(msg)
    return groups


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment of a program the service starts (``training db``): the service's own,
    with ``overrides``."""
    return {**os.environ, **overrides}


def allow_plain_http_for_development(settings: Settings) -> None:
    """authlib refuses OAuth2 over http; a local development server has no TLS."""
    if settings.is_development and settings.issuer.startswith("http://"):
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
