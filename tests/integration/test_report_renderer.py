"""The child process that renders reports: what its caller is told when a render fails, when
the child dies, when the worker stops it, and when a Ctrl-C reaches it."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from training.infra.rendering import (
    DIED,
    LAYOUT_ERROR,
    RenderFailed,
    RenderingProcess,
    RenderInterrupted,
)
from training.reports.rendering.samples import effectiveness_report
from training.reports.supervisor import RENDERS


def render_in_background(renderer: RenderingProcess) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["pdf"] = renderer(effectiveness_report())
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def rendering_child(renderer: RenderingProcess) -> int:
    """The child's pid once it has started (the render is then under way)."""
    event = threading.Event()
    while (pid := renderer.pid) is None:
        event.wait(0.05)
    return pid


@pytest.fixture
def slow() -> Iterator[RenderingProcess]:
    renderer = RenderingProcess(RENDERS, delay=3.0)
    try:
        yield renderer
    finally:
        renderer.close()


def test_an_error_of_the_layout_engine_is_a_failed_render_with_a_reason() -> None:
    renderer = RenderingProcess(RENDERS)
    try:
        with pytest.raises(RenderFailed) as failed:
            renderer(object())  # not a report: the layout engine raises
        assert failed.value.reason == LAYOUT_ERROR
        pid = renderer.pid
        assert renderer(effectiveness_report()).startswith(b"%PDF")
        assert renderer.pid == pid  # the same child renders on
    finally:
        renderer.close()


def test_a_child_that_dies_mid_render_fails_the_render_and_is_replaced(
    slow: RenderingProcess,
) -> None:
    thread, outcome = render_in_background(slow)
    pid = rendering_child(slow)
    os.kill(pid, signal.SIGKILL)
    thread.join(30)
    assert isinstance(outcome.get("error"), RenderFailed)
    assert outcome["error"].reason == DIED
    slow.delay = 0.0
    assert slow(effectiveness_report()).startswith(b"%PDF")  # a new child
    assert slow.pid not in {None, pid}


def test_closing_the_renderer_mid_render_interrupts_it(slow: RenderingProcess) -> None:
    thread, outcome = render_in_background(slow)
    pid = rendering_child(slow)
    slow.close()
    thread.join(30)
    assert isinstance(outcome.get("error"), RenderInterrupted)
    assert slow.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # ended and reaped


def test_a_ctrl_c_that_reaches_the_child_does_not_cut_the_render_short(
    slow: RenderingProcess,
) -> None:
    slow(effectiveness_report())  # the child is up, past its start
    pid = rendering_child(slow)
    thread, outcome = render_in_background(slow)
    os.kill(pid, signal.SIGINT)  # what a terminal sends the whole process group
    thread.join(60)
    assert "error" not in outcome
    assert outcome["pdf"].startswith(b"%PDF")
    assert slow.pid == pid


def test_a_render_that_takes_too_long_fails_and_its_child_is_ended() -> None:
    renderer = RenderingProcess(RENDERS, timeout=1.5, delay=30.0)
    try:
        with pytest.raises(RenderFailed) as failed:
            renderer(effectiveness_report())
        assert failed.value.reason == "rendering took longer than 1.5 seconds"
        assert renderer.pid is None
    finally:
        renderer.close()
