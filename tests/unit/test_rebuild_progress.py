"""What `training projections rebuild` shows while it replays: a bar, the rate, the time left."""

from __future__ import annotations

from training.cli.projections import progress_line


def test_the_progress_line_shows_the_rate_and_the_time_left() -> None:
    line = progress_line("members", 3_000, 12_000, 2.0)
    assert line.startswith("members: [#######.......................] 3000/12000 events")
    assert "1,500 events/s, 6 s left" in line


def test_before_the_first_event_there_is_no_rate_to_show() -> None:
    line = progress_line("audit", 0, 500, 0.0).rstrip()
    assert line == "audit: [..............................] 0/500 events"


def test_an_empty_view_is_complete() -> None:
    assert progress_line("tenancy", 0, 0, 0.1).rstrip().endswith("[" + "#" * 30 + "] 0/0 events")
