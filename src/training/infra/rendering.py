"""Renders reports in a separate process.

A render keeps the Python interpreter busy for 0.3 to 0.6 s (WeasyPrint lays out the pages
in Python). In the process that serves the API, every request would wait behind it for the
interpreter lock: an engineer's next assessment item took hundreds of milliseconds while
the automatic reports of finished assessments rendered. A child process renders instead,
and the operating system shares the cores between it and the API.

The child starts on the first render (``spawn``: the parent has threads and open database
connections, which ``fork`` would copy) and imports WeasyPrint once; a child that dies is
replaced on the next render.
"""

from __future__ import annotations

import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

# Far above a render's second: a render that takes this long is stuck.
RENDER_TIMEOUT_SECONDS = 120.0


def _render(document: Any) -> bytes:
    # Imported when the child renders first, not when the service starts.
    from training.reports import render_document

    return render_document(document)


class RenderingProcess:
    def __init__(self, timeout: float = RENDER_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def __call__(self, document: Any) -> bytes:
        pool = self._started()
        try:
            return pool.submit(_render, document).result(timeout=self.timeout)
        except (BrokenProcessPool, TimeoutError):
            self._discard(pool)
            raise

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)
