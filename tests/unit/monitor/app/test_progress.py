"""Progress bars are for people: drawn on a terminal's stderr, absent anywhere else, and log
lines written while one is up stay whole."""

from __future__ import annotations

import io
import logging
import os
import pty
import time
from collections.abc import Iterator

import pytest

from monitor.app import progress


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[io.TextIOWrapper, int]]:
    """A pseudo-terminal: a text stream on its follower side, and the leader's fd. (The test
    puts it on sys.stderr itself: pytest sets its own capture there after fixtures run.)"""
    leader, follower = pty.openpty()
    stream = io.TextIOWrapper(os.fdopen(follower, "wb", buffering=0), write_through=True)
    monkeypatch.setenv("TERM", "xterm")
    try:
        yield stream, leader
    finally:
        stream.close()
        os.close(leader)


def _read(leader: int) -> str:
    os.set_blocking(leader, False)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_off_a_terminal_track_yields_every_item_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert list(progress.track(range(5), "counting")) == [0, 1, 2, 3, 4]
    assert list(progress.track_time(iter("abc"), "budget", seconds=60)) == ["a", "b", "c"]
    with progress.progress("scanning", total=10.0, unit="s") as advance:
        advance(to=5.0)
    assert capsys.readouterr() == ("", "")


def test_on_a_terminal_a_bar_is_drawn_and_a_log_line_passes_above_it_whole(
    terminal: tuple[io.TextIOWrapper, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream, leader = terminal
    monkeypatch.setattr("sys.stderr", stream)
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    drawn = ""
    try:
        for i in progress.track(range(3), "training epochs"):
            if i == 1:
                logging.getLogger("vqm.test").warning("epoch one done")
            deadline = time.monotonic() + 10
            while f"{i}/3" not in drawn:  # the bar redraws ten times a second, in its thread
                assert time.monotonic() < deadline, drawn
                drawn += _read(leader)
        assert handler.stream is stream  # handed back once the bar is gone
    finally:
        root.removeHandler(handler)
    drawn += _read(leader)
    assert "training epochs" in drawn
    assert "epoch one done" in drawn
