"""The process that renders reports (see ``training.infra.rendering``, which starts it).

It imports only what a render needs: the module a ``spawn`` child is started from is imported
again in the child, so this one stays free of the service's layers (its start is part of the
first report's wait).
"""

from __future__ import annotations

import importlib
import signal
import time
from multiprocessing.connection import Connection
from typing import Any


def serve(conn: Connection, renders: str, delay: float) -> None:
    """Renders each document it receives with ``renders`` (``module:function``) until the pipe
    closes; answers ``(True, pdf)`` or ``(False, the error)``."""
    # A Ctrl-C in a terminal reaches the whole process group; the parent, not the signal,
    # decides when a render is abandoned (it kills this process when it stops).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    module, _, name = renders.partition(":")
    render_document = getattr(importlib.import_module(module), name)  # imported once per child

    while True:
        try:
            document = conn.recv()
        except (EOFError, OSError):
            return  # the parent closed the pipe, or is gone
        if delay:
            time.sleep(delay)
        answer: tuple[bool, Any]
        try:
            answer = (True, render_document(document))
        except Exception as error:
            answer = (False, f"{type(error).__name__}: {error}")
        try:
            conn.send(answer)
        except OSError:
            return
