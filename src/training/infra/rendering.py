"""Renders reports in a separate process.

A render keeps the Python interpreter busy for 0.3 to 0.6 s (WeasyPrint lays out the pages
in Python). In the process that serves the API, every request would wait behind it for the
interpreter lock: an engineer's next assessment item took hundreds of milliseconds while
the automatic reports of finished assessments rendered. A child process renders instead,
and the operating system shares the cores between it and the API.

The child starts on the first render (``spawn``: the parent has threads and open database
connections, which ``fork`` would copy), imports WeasyPrint once, and renders one document
at a time, sent and answered over a pipe. What the caller is told:

* the PDF, or ``RenderFailed`` with a reason people can read: the layout engine raised
  (the error itself goes to the log), the child died (killed, out of memory), or the render
  took longer than ``RENDER_TIMEOUT_SECONDS`` (the child is killed). The next render starts
  a new child.
* ``RenderInterrupted`` when ``close`` killed the child during the render: the worker is
  stopping, and the report is not at fault.

The child runs ``training.infra.render_child`` (kept light: a ``spawn`` child imports the
module it starts from) and renders with the function its owner names (``renders``, as
``module:function``: the reports context's renderer), imported once in the child. It
ignores SIGINT: a Ctrl-C in a terminal reaches the whole process group, and the parent, not
the signal, decides when a render is abandoned (it kills the child when it stops).

``delay`` (``TRAINING_TEST_RENDER_DELAY`` in the settings; seconds, tests only) makes the
child wait that long before each render, so a test can stop or kill a worker while a render
is in progress.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import structlog

from training.infra.render_child import serve

log = structlog.get_logger(__name__)

# Far above a render's second: a render that takes this long is stuck.
RENDER_TIMEOUT_SECONDS = 120.0
REAP_SECONDS = 5.0

# Reasons a render fails, as the people who asked for the report read them.
LAYOUT_ERROR = "the layout engine stopped with an error"
DIED = "the rendering process stopped abruptly"


class RenderFailed(Exception):
    """The PDF could not be rendered; ``reason`` says why, in words for the people waiting."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RenderInterrupted(Exception):
    """The render was stopped from outside (the worker is stopping): the report is not at
    fault and is rendered again later."""


@dataclass(eq=False)
class _Child:
    process: BaseProcess
    conn: Connection
    busy: bool = False
    interrupted: bool = False  # killed by ``close`` while it rendered


class RenderingProcess:
    def __init__(
        self, renders: str, timeout: float = RENDER_TIMEOUT_SECONDS, *, delay: float = 0.0
    ) -> None:
        self.renders = renders
        self.timeout = timeout
        self.delay = delay
        self._lock = threading.Lock()
        self._child: _Child | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (for operators and tests)."""
        with self._lock:
            return self._child.process.pid if self._child is not None else None

    def __call__(self, document: Any) -> bytes:
        child = self._take()
        try:
            return self._render(child, document)
        finally:
            self._give_back(child)

    def close(self) -> None:
        """Stops the child at once; a render in progress raises ``RenderInterrupted``. The
        next render starts a new child."""
        with self._lock:
            child, self._child = self._child, None
            if child is None:
                return
            child.interrupted = True
            child.process.kill()
            idle = not child.busy
        if idle:  # else the rendering thread ends it when it sees the child gone
            _end(child)

    def _render(self, child: _Child, document: Any) -> bytes:
        try:
            child.conn.send(document)
        except OSError:
            raise self._lost(child) from None
        ready = wait([child.conn, child.process.sentinel], timeout=self.timeout)
        if child.conn in ready:  # an answer, or the end of the pipe
            try:
                ok, value = child.conn.recv()
            except (EOFError, OSError):
                raise self._lost(child) from None
            if ok:
                return bytes(value)
            log.warning("report.render_error", error=str(value))
            raise RenderFailed(LAYOUT_ERROR)
        if ready:
            raise self._lost(child)
        self._discard(child)
        log.warning("report.render_timeout", timeout_s=self.timeout)
        raise RenderFailed(f"rendering took longer than {self.timeout:g} seconds")

    def _lost(self, child: _Child) -> Exception:
        """The child ended during a render: stopped by ``close``, or it died."""
        if child.interrupted:
            return RenderInterrupted()
        self._discard(child)
        log.warning("report.renderer_died", exit_code=child.process.exitcode)
        return RenderFailed(DIED)

    def _take(self) -> _Child:
        with self._lock:
            if self._child is None or not self._child.process.is_alive():
                if self._child is not None:
                    _end(self._child)
                self._child = _start(self.renders, self.delay)
            self._child.busy = True
            return self._child

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            child.busy = False
            current = child is self._child
        if not current:
            _end(child)

    def _discard(self, child: _Child) -> None:
        with self._lock:
            if self._child is child:
                self._child = None
        child.process.kill()


def _start(renders: str, delay: float) -> _Child:
    context = get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=serve, args=(theirs, renders, delay), name="report-renderer", daemon=True
    )
    process.start()
    theirs.close()  # the child's end: ours reads end-of-file when the child dies
    return _Child(process, ours)


def _end(child: _Child) -> None:
    child.conn.close()
    child.process.join(REAP_SECONDS)
    if child.process.is_alive():
        child.process.kill()
        child.process.join(REAP_SECONDS)
